"""`billing.texts`: which text a page shows (the page's language, else the creditor's, else the portal's
languages in order) and when it carries `lang`; and a guard: no template shows a creditor text (a line's
description or note, an invoice's summary) except through the helpers, so a new template cannot mix
languages silently."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from flask_babel import force_locale

from app.billing.texts import check_texts, choose, creditor_text, line_text, line_words

TEMPLATES = Path(__file__).resolve().parents[3] / "templates"
#: `{{ ... x.description ... }}`, `x.summary`, `line.note` read in an expression of a template; the helpers
#: take the record and the field's name, so they never match
RAW = re.compile(r"\{[{%][^}]*?\b(?:line|invoice|i|l|item\.invoice)\.(?:description|summary|note)\b[^}]*\}")
#: the same read by attribute name (`map(attribute="description")`)
BY_NAME = re.compile(r"attribute=[\"'](?:description|summary|note)[\"']")
#: `{% if invoice.summary %}`: a test whether there is one shows nothing
ONLY_A_TEST = re.compile(r"^\{%-? if [\w.]+\.(?:description|summary|note) -?%\}$")
#: a credit note's lines are a copy made when the note was issued, printed as issued (a legal document)
EXCEPT = {"billing/credit_note_pdf.html"}


def test_no_template_shows_a_creditor_text_but_through_the_helpers():
    found = []
    for path in sorted(TEMPLATES.rglob("*.html")):
        name = path.relative_to(TEMPLATES).as_posix()
        if name in EXCEPT:
            continue
        source = path.read_text()
        found += [f"{name}: {m.group(0)}" for m in RAW.finditer(source) if not ONLY_A_TEST.match(m.group(0))]
        found += [f"{name}: {m.group(0)}" for m in BY_NAME.finditer(source)]
    assert found == [], "show creditor texts with creditor_text()/line_text() (app/billing/texts.py):\n" + \
        "\n".join(found)


def test_the_guard_sees_a_raw_text():
    assert RAW.search('<td>{{ line.description }}</td>') and RAW.search('{{ invoice.summary|truncate(60) }}')
    assert not RAW.search('{{ line_text(line, invoice.creditor.default_locale) }}')
    assert ONLY_A_TEST.match('{% if invoice.summary %}') and not ONLY_A_TEST.match('{{ invoice.summary }}')
    assert BY_NAME.search('{{ lines|map(attribute="description")|join(", ") }}')


@pytest.mark.parametrize(("texts", "plain", "page", "chosen"), [
    (None, "Strøm", "nb", ("Strøm", "nb")),  # a plain string is in the creditor's language
    (None, "Strøm", "en", ("Strøm", "nb")),
    ({"en": "Power", "nb": "Strøm"}, "Strøm", "en", ("Power", "en")),
    ({"en": "Power", "nb": "Strøm"}, "Strøm", "de", ("Strøm", "nb")),  # the creditor's language next
    ({"en": "Power", "de": "Strom"}, "Power", "nb", ("Power", "en")),  # then the portal's order: en first
    ({"de": "Strom"}, "Strom", "nb", ("Strom", "de")),  # then any
])
def test_choose_follows_the_fallback_order(texts, plain, page, chosen):
    assert choose(plain, texts, "nb", page) == chosen


def test_lang_is_carried_exactly_where_the_text_is_not_in_the_pages_language(app):
    line = SimpleNamespace(description="Strøm <b>", texts={"description": {"nb": "Strøm <b>", "en": "Power"}},
                           note=None, text_key=None)
    with app.test_request_context(), force_locale("de"):
        assert str(creditor_text(line, "description", "nb")) == '<span lang="nb">Strøm &lt;b&gt;</span>'
        assert line_words(line, "nb") == "Strøm <b>"  # plain text: no markup
    with app.test_request_context(), force_locale("en"):
        assert str(line_text(line, "nb")) == "Power"
    fee = SimpleNamespace(description="Mahngebühr", texts=None, note=None, text_key="reminder_fee")
    for language, words in (("en", "Reminder fee"), ("nb", "Purregebyr"), ("de", "Mahngebühr")):
        with app.test_request_context(), force_locale(language):
            assert str(line_text(fee, "de")) == words


def test_check_texts_keeps_the_portals_order_and_strips():
    assert list(check_texts({"de": " Strom ", "en": "Power"}, most=10)) == ["en", "de"]
    assert check_texts({"de": " Strom "}, most=10) == {"de": "Strom"}
