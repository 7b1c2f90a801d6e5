"""A block's body: a small, safe subset of Markdown (paragraphs, line breaks, **bold**, *italic*, lists
and https links), rendered by markdown-it with every other rule off, then cleaned by nh3 (ammonia)
down to the tags that subset makes. Raw HTML in the text is never HTML: markdown-it escapes it (its
`html` option is off) and nh3 would drop it anyway; a link goes only to https (or mailto:), opens no
window and carries `rel="noopener noreferrer nofollow"`.

Titles and button words are plain text: Jinja escapes them; `plain_problem` refuses markup there so the
creditor sees at once that it would show as typed."""

from __future__ import annotations

import re
from functools import cache

import nh3

#: The tags the subset renders, and the only ones kept.
TAGS = {"p", "br", "strong", "em", "ul", "ol", "li", "a"}
ATTRIBUTES = {"a": {"href"}}
URL_SCHEMES = {"https", "mailto"}
BODY_MAX = 2000
TITLE_MAX = 120
CTA_MAX = 40


@cache
def _parser():
    from markdown_it import MarkdownIt  # when a body is first rendered

    parser = MarkdownIt("zero", {"html": False, "linkify": False, "typographer": False, "breaks": True})
    return parser.enable(["emphasis", "link", "list", "newline"])


def render(body: str) -> str:
    """The body's HTML: the Markdown subset, sanitised."""
    html = _parser().render(body or "")
    return clean(html)


def clean(html: str) -> str:
    """Only the subset's tags and https or mailto links survive."""
    return nh3.clean(html, tags=TAGS, attributes=ATTRIBUTES, url_schemes=URL_SCHEMES,
                     link_rel="noopener noreferrer nofollow", strip_comments=True).strip()


_MARKUP = re.compile(r"<\s*/?\s*[a-zA-Z!?]|javascript:", re.IGNORECASE)


def plain_problem(text: str) -> bool:
    """Whether a plain-text field (a title, a button's words) holds markup or a script URL."""
    return bool(_MARKUP.search(text or ""))


def body_problem(body: str) -> bool:
    """Whether a body holds raw HTML or a link that is not https or mailto: refused, so that what the
    creditor typed is what customers see (the renderer would drop it silently)."""
    if _MARKUP.search(body or ""):
        return True
    for target in re.findall(r"\]\(\s*<?([^)\s>]*)", body or ""):
        if not (target.lower().startswith("https://") or target.lower().startswith("mailto:")):
            return True
    return False
