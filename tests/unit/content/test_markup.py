"""A block's body: the Markdown subset, cleaned by nh3; markup refused in plain fields."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from app.content.markup import TAGS, body_problem, clean, plain_problem, render


class Elements(HTMLParser):
    """Every element and attribute the HTML really has (escaped text is text)."""

    def __init__(self):
        super().__init__()
        self.found: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag, attrs):
        self.found.append((tag, attrs))


def elements(html: str):
    parser = Elements()
    parser.feed(html)
    return parser.found


def test_the_subset_renders():
    html = render("Get **fibre** *now*.\n\n- one\n- two\n\n[our site](https://example.test/a?b=1)")
    assert "<strong>fibre</strong>" in html and "<em>now</em>" in html and "<li>one</li>" in html
    assert '<a href="https://example.test/a?b=1" rel="noopener noreferrer nofollow">our site</a>' in html


@pytest.mark.parametrize("body", [
    "<script>alert(1)</script>", "<img src=x onerror=alert(1)>", '<a href="javascript:alert(1)">x</a>',
    "[x](javascript:alert(1))", "[x](data:text/html,<script>alert(1)</script>)", "<iframe src=//evil>",
    "<svg onload=alert(1)>", "# heading\n\n![img](https://evil.example.test/t.png)",
])
def test_script_and_html_never_come_out(body):
    for tag, attrs in elements(render(body)):
        assert tag in TAGS
        for name, value in attrs:
            assert name in ("href", "rel")
            assert name != "href" or (value or "").startswith(("https:", "mailto:"))


@pytest.mark.parametrize("body", ["<b>x</b>", "[x](http://plain.example.test)", "[x](javascript:alert(1))",
                                  "<script>", "x <!-- y -->"])
def test_a_body_with_html_or_another_link_is_refused(body):
    assert body_problem(body)


def test_a_plain_body_passes():
    assert not body_problem("Price: 3 < 5 and **bold** [site](https://a.example.test)")


@pytest.mark.parametrize("text", ["<b>Hi</b>", "<script>alert(1)</script>", "javascript:alert(1)", "< img"])
def test_markup_in_a_title_is_refused(text):
    assert plain_problem(text)


def test_clean_keeps_only_the_subset():
    assert clean('<p onclick="x()">a<style>p{}</style><a href="https://a.test" target="_blank">b</a></p>') == \
        '<p>a<a href="https://a.test" rel="noopener noreferrer nofollow">b</a></p>'
