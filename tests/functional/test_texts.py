"""Creditor texts in the customer's language (issue 18, item 6): through the API a line's description and
note and the invoice's summary are a string (in the creditor's default language) or an object of language
to text, answered back in the shape they came; refused with a 422 naming the field when the object is not
right; shown on the bill page in the page's language, else the creditor's, with `lang` exactly where the
text's language is not the page's; and the fee lines the portal writes itself follow the page's language
(an English page on a German bill says "Reminder fee", not "Mahngebühr")."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from app.billing.models import InvoiceLine
from app.extensions import db
from tests.factories import invoice_payload
from tests.functional.helpers import open_bill
from tests.functional.test_api import API, api_creditor, create, stored
from tests.unit.dunning.conftest import TODAY, bill, creditor_with_plan, run

LINES = [{"description": {"en": "Electricity", "nb": "Strøm"}, "note": {"en": "Spot price", "nb": "Spotpris"}},
         {"description": "Nettleie"}]  # a plain string: in the creditor's default language (nb)
SUMMARY = {"en": "Power, October", "de": "Strom, Oktober"}


def payload(**overrides):
    body = invoice_payload("NOK", lines=2, **{"summary": SUMMARY, **overrides})
    for line, texts in zip(body["lines"], LINES, strict=True):
        line.update(texts)
    return body


def test_texts_come_back_in_the_shape_they_were_sent(client, session):
    creditor, headers = api_creditor("NO")
    sent = payload(number="T-1")
    answer = create(client, headers, sent)
    assert answer.status_code == 201, answer.text
    for body in (answer.json, client.get(f"{API}/invoices/T-1", headers=headers).json):
        assert body["summary"] == SUMMARY
        assert [line["description"] for line in body["lines"]] == [LINES[0]["description"], "Nettleie"]
        assert [line["note"] for line in body["lines"]] == [LINES[0]["note"], None]
    invoice = stored(creditor, "T-1")
    # the plain columns keep one text each, the creditor's language's (else the first given)
    assert [line.description for line in invoice.lines] == ["Strøm", "Nettleie"] and invoice.summary == "Power, October"
    assert create(client, headers, sent).status_code == 200  # the same again: a repeat, not a conflict


@pytest.mark.parametrize(("change", "field", "words"), [
    ({"description": {"fr": "Électricité"}}, "lines.0.description", "unknown language fr"),
    ({"description": {}}, "lines.0.description", "at least one language"),
    ({"description": {"en": "  "}}, "lines.0.description", "the en text must be a non-empty string"),
    ({"description": {"en": "x" * 301}}, "lines.0.description", "more than 300 characters"),
    ({"description": {"en": 5}}, "lines.0.description", "non-empty string"),
    ({"description": ["Electricity"]}, "lines.0.description", "a text, or an object"),
    ({"note": {"nb": "x" * 501}}, "lines.0.note", "more than 500 characters"),
    ({"description": ""}, "lines.0.description", "must not be empty"),
])
def test_a_text_that_is_not_right_is_refused_naming_its_field(client, session, change, field, words):
    creditor, headers = api_creditor("NO")
    body = payload(number="T-2")
    body["lines"][0].update(change)
    answer = create(client, headers, body)
    assert answer.status_code == 422, answer.text
    assert field in answer.text and words in answer.text
    assert stored(creditor, "T-2") is None


def test_a_summary_in_an_unknown_language_is_refused(client, session):
    _creditor, headers = api_creditor("NO")
    answer = create(client, headers, payload(number="T-3", summary={"sv": "Ström"}))
    assert answer.status_code == 422 and "summary" in answer.text and "unknown language sv" in answer.text


def row(page: str, words: str) -> str:
    """The lines table's cell that holds `words`, as written."""
    found = re.search(r'<th scope="row">(.*?)(?:<span class="sub|</th>)', page[page.index(words) - 200:], re.S)
    return found.group(1) if found else ""


@pytest.mark.parametrize(("lang", "several", "plain", "summary"), [
    ("en", "Electricity", '<span lang="nb">Nettleie</span>', "Power, October"),
    ("nb", "Strøm", "Nettleie", '<span lang="en">Power, October</span>'),
    ("de", '<span lang="nb">Strøm</span>', '<span lang="nb">Nettleie</span>', "Strom, Oktober"),
])
def test_the_bill_page_shows_each_text_in_the_pages_language_else_marks_its_own(client, app, session, lang,
                                                                              several, plain, summary):
    creditor, headers = api_creditor("NO")
    assert create(client, headers, payload(number="T-4")).status_code == 201
    url = open_bill(client, app, stored(creditor, "T-4"))
    for _ in range(2):  # rendered, then from the page cache (keyed by language)
        page = client.get(f"{url}?lang={lang}").text
        assert f'<th scope="row">{several}' in page and f'<th scope="row">{plain}' in page
        assert f'<p class="summary">{summary}</p>' in page
    spans = re.findall(r'<span lang="(\w+)">', page)
    assert lang not in spans  # never a lang that is the page's own


def test_an_english_page_on_a_german_bill_has_no_german_fee_text(client, app, session):
    with app.test_request_context():
        creditor, plan = creditor_with_plan("DE", "DE")
        address = {"line1": "Hauptstraße 5", "postcode": "10115", "city": "Berlin", "country": "DE"}
        invoice = bill(creditor, plan, due=TODAY - timedelta(days=30), address=address, preferred_locale="de")
        run(creditor, TODAY)
        run(creditor, TODAY + timedelta(days=16))  # the final reminder: a reminder fee and default interest
        fees = db.session.scalars(select(InvoiceLine).where(InvoiceLine.invoice_id == invoice.id,
                                                            InvoiceLine.text_key.is_not(None))).all()
        assert {(f.text_key, f.description) for f in fees} == {("reminder_fee", "Mahngebühr"),
                                                              ("default_interest", "Verzugszinsen")}
        db.session.commit()
    url = open_bill(client, app, invoice)
    english = client.get(f"{url}?lang=en").text
    assert "Reminder fee" in english and "Default interest" in english
    for german in ("Mahngebühr", "Verzugszinsen", "Mahnkosten", "Verzugspauschale"):
        for found in re.finditer(german, english):  # only ever inside an element marked German
            assert 'lang="de"' in english[max(0, found.start() - 300):found.start()], german
    assert "Mahngebühr" not in english
    assert "Mahngebühr" in client.get(f"{url}?lang=de").text and "Purregebyr" in client.get(f"{url}?lang=nb").text


def test_the_pdf_shows_the_pages_language_and_marks_the_others(client, app, session, monkeypatch):
    import app.billing.pdf as pdf_module
    from tests.functional.test_pdf_download import pdf_text

    written: list[str] = []
    real = pdf_module.html_to_pdf
    monkeypatch.setattr(pdf_module, "html_to_pdf", lambda html: written.append(html) or real(html))
    creditor, headers = api_creditor("NO")
    assert create(client, headers, payload(number="T-5")).status_code == 201
    url = open_bill(client, app, stored(creditor, "T-5"))
    client.get(f"{url}?lang=en")
    _reader, english = pdf_text(client.get(f"{url}/invoice.pdf").data)
    assert "Electricity" in english and "Strøm" not in english and "Nettleie" in english
    assert '<span lang="nb">Nettleie</span>' in written[-1] and '<span lang="nb">Strøm' not in written[-1]
    client.get(f"{url}?lang=nb")
    _reader, norwegian = pdf_text(client.get(f"{url}/invoice.pdf").data)
    assert "Strøm" in norwegian and "Electricity" not in norwegian
    assert '<span lang="en">Power, October</span>' in written[-1]
