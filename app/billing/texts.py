"""Texts on a bill in the reader's language (docs/texts.md).

Two kinds of text appear on a bill besides the portal's own sentences:

- **Creditor texts**: a line's description and note, the invoice's summary. Through the API each is a
  plain string, in the creditor's default language (`Creditor.default_locale`), or an object of
  language -> text (`{"en": "...", "nb": "..."}`). The plain column keeps one text (the creditor's
  language's, else the first given), so every reader of the column keeps working; the object is kept
  whole in the row's `texts` (JSON: `{"description": {...}, "note": {...}}`, `{"summary": {...}}`).
- **Portal texts on a line**: the fee and interest lines the portal adds itself (the dunning run's
  reminder fee, flat fee and default interest; a plan's fee and interest; a deferral's fee). Their
  `text_key` names the words, which are translated when the bill is shown, in the page's language:
  the stored description is only the words in the customer's language when the line was added (for
  the API and search). Before `text_key`, the description was all there was, so an English page on a
  German customer's bill said "Mahngebühr" (issue 18, item 6).

`creditor_text` and `line_text` choose a text for the page's language, else the fallback order: the
creditor's default language (the plain string's), then the portal's languages in their order, then any.
Where the chosen text's language is not the page's, it comes wrapped in `<span lang="xx">`, so screen
readers and translation tools know. Every template shows these texts through them
(`tests/unit/billing/test_texts.py` reads the templates).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from markupsafe import Markup, escape

from app.i18n import SUPPORTED_LOCALES

#: The languages a creditor text may be given in (the portal's own).
TEXT_LANGUAGES = SUPPORTED_LOCALES
#: The fields of a line and of an invoice that may come in several languages, and their longest text.
LINE_TEXT_FIELDS = {"description": 300, "note": 500}
INVOICE_TEXT_FIELDS = {"summary": 300}

#: The words of each portal-written line (`InvoiceLine.text_key`), translated when shown.
PORTAL_LINE_TEXTS = {
    "reminder_fee": _l("Reminder fee"),
    "flat_fee_late_payment": _l("Flat fee for late payment (§ 288(5) BGB)"),
    "default_interest": _l("Default interest"),
    "plan_fee": _l("Instalment plan fee"),
    "plan_interest": _l("Interest for the instalment plan"),
    "deferral_fee": _l("Fee for a later due date"),
}


def check_texts(value: Any, *, most: int) -> str | dict[str, str]:
    """A creditor text as the API takes it: a non-empty string of at most `most` characters, or an object
    of known language codes (en, nb, de) to such strings, at least one; spaces around each text are
    dropped. ValueError says what is wrong."""
    if isinstance(value, str):
        value = value.strip()
        if not value:
            raise ValueError("must not be empty")
        if len(value) > most:
            raise ValueError(f"at most {most} characters")
        return value
    if isinstance(value, dict):
        if not value:
            raise ValueError(f"an object of at least one language ({', '.join(TEXT_LANGUAGES)}) to its text")
        unknown = sorted(str(k) for k in value if k not in TEXT_LANGUAGES)
        if unknown:
            raise ValueError(f"unknown language {', '.join(unknown)} (known: {', '.join(TEXT_LANGUAGES)})")
        for language, text in value.items():
            if not isinstance(text, str) or not text.strip():
                raise ValueError(f"the {language} text must be a non-empty string")
            if len(text) > most:
                raise ValueError(f"the {language} text has more than {most} characters")
        return {language: value[language].strip() for language in TEXT_LANGUAGES if language in value}
    raise ValueError(f"a text, or an object of language ({', '.join(TEXT_LANGUAGES)}) to text")


def text_schema(most: int) -> dict[str, Any]:
    """The JSON schema of a creditor text (OpenAPI): a string, or an object of language to string."""
    text = {"type": "string", "minLength": 1, "maxLength": most}
    return {"oneOf": [text, {"type": "object", "minProperties": 1, "additionalProperties": False,
                             "properties": dict.fromkeys(TEXT_LANGUAGES, text)}],
            "description": "A text in the creditor's default language, or an object of language (en, nb, de) to "
                           "text: the bill shows the customer's language, else the creditor's, else any "
                           "(docs/texts.md)"}


def split(value: str | dict[str, str] | None, base: str) -> tuple[str | None, dict[str, str] | None]:
    """(the plain column's text, the languages object or None) of a text as the API gave it. The plain
    text of an object is its `base` language's (the creditor's), else its first."""
    if value is None or isinstance(value, str):
        return value, None
    return value.get(base) or next(iter(value.values())), dict(value)


def given(plain: str | None, texts: Mapping[str, Any] | None, field: str) -> str | dict[str, str] | None:
    """A text in the shape the API was given it: the object where there is one, else the plain string."""
    found = (texts or {}).get(field)
    return dict(found) if found else plain


def page_language() -> str:
    locale = get_locale()
    return locale.language if locale is not None else "en"


def choose(plain: str | None, texts: Mapping[str, str] | None, base: str | None, page: str
           ) -> tuple[str | None, str | None]:
    """(text, its language) for a page in `page`: the page's language, else the creditor's (`base`, the
    plain string's), else the portal's languages in order, else any. A plain string alone is in `base`."""
    found: dict[str, str] = dict(texts or {})
    if plain and base and base not in found and not texts:
        found[base] = plain
    for language in (page, base, *TEXT_LANGUAGES, *sorted(found)):
        if language and found.get(language):
            return found[language], language
    return plain, base


def _marked(text: str | None, language: str | None, page: str) -> Markup:
    if not text:
        return Markup("")
    if language and language != page:
        return Markup('<span lang="%s">%s</span>') % (language, text)
    return escape(text)


def creditor_text(record: Any, field: str, base: str | None) -> Markup:
    """A creditor text of `record` (an invoice's summary, a line's description or note) for the page,
    escaped, carrying `lang` where its language is not the page's. `base`: the creditor's language."""
    page = page_language()
    text, language = choose(getattr(record, field), (record.texts or {}).get(field), base, page)
    return _marked(text, language, page)


def line_text(line: Any, base: str | None) -> Markup:
    """A line's description for the page: a portal-written line's words in the page's language, a
    creditor's as `creditor_text` chooses."""
    words = PORTAL_LINE_TEXTS.get(line.text_key or "")
    if words is not None:
        return escape(str(words))
    return creditor_text(line, "description", base)


def line_words(line: Any, base: str | None) -> str:
    """`line_text` as plain text (a label, a text e-mail): no markup, so no `lang` either."""
    words = PORTAL_LINE_TEXTS.get(line.text_key or "")
    if words is not None:
        return str(words)
    return choose(line.description, (line.texts or {}).get("description"), base, page_language())[0] or ""
