"""Downloading the invoice PDF from the bill page: only with a grant, in the page's language."""

import io
import re

import pytest
from pypdf import PdfReader
from sqlalchemy import select

from app.billing.services import cancel_invoice, record_payment
from app.money import format_money
from tests.factories import make_creditor, make_invoice
from tests.functional.helpers import open_bill


def pdf_text(data: bytes) -> tuple[PdfReader, str]:
    reader = PdfReader(io.BytesIO(data))
    return reader, re.sub(r"[ \n]+", " ", " ".join(page.extract_text() for page in reader.pages))


def test_pdf_download_after_opening_the_link(client, app, session):
    creditor = make_creditor("NO")
    invoice = make_invoice(creditor, lines=3)
    bill_url = open_bill(client, app, invoice)
    response = client.get(f"{bill_url}/invoice.pdf")
    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    assert response.headers["Content-Disposition"] == f'attachment; filename="invoice-{invoice.number}.pdf"'
    assert "no-store" in response.headers["Cache-Control"]
    assert response.data.startswith(b"%PDF-")
    reader, text = pdf_text(response.data)
    # No Accept-Language and no customer language: the creditor's default (nb) decides.
    assert reader.trailer["/Root"]["/Lang"] == "nb"
    assert invoice.number in text and invoice.payment_reference in text
    assert format_money(invoice.total, "NOK", "nb_NO") in text


def test_pdf_follows_the_language_switch(client, app, session):
    invoice = make_invoice(make_creditor("DE"), lines=2)
    bill_url = open_bill(client, app, invoice)
    assert client.get(f"{bill_url}?lang=en").status_code == 200
    reader, text = pdf_text(client.get(f"{bill_url}/invoice.pdf").data)
    assert reader.trailer["/Root"]["/Lang"] == "en"
    assert format_money(invoice.total, "EUR", "en_GB") in text
    assert reader.metadata.title == f"Invoice {invoice.number} – {invoice.creditor.name}"


def test_pdf_without_grant_is_the_neutral_page(client, session):
    invoice = make_invoice(make_creditor("NO"))
    response = client.get(f"/b/{invoice.public_id}/invoice.pdf")
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    assert invoice.number not in response.text and "Kari" not in response.text


def test_pdf_of_a_cancelled_invoice_is_not_served(client, app, session):
    invoice = make_invoice(make_creditor("NO"))
    bill_url = open_bill(client, app, invoice)
    cancel_invoice(invoice, actor="test")
    session.commit()
    response = client.get(f"{bill_url}/invoice.pdf")
    assert response.status_code == 404 and response.mimetype == "text/html"


def test_pdf_waits_for_the_step_up(client, app, session):
    invoice = make_invoice(make_creditor("NO", step_up_mode="postcode"))
    bill_url = open_bill(client, app, invoice)
    response = client.get(f"{bill_url}/invoice.pdf")
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/b/{invoice.public_id}/verify")


# --- rendered once per version and language, bounded, rate-limited -------------------------------------------


@pytest.fixture
def renders(monkeypatch):
    """Count the PDFs actually rendered (WeasyPrint's work), whatever serves them."""
    import app.billing.pdf as pdf_module

    counted = []
    real = pdf_module.html_to_pdf

    def counting(html):
        counted.append(1)
        return real(html)

    monkeypatch.setattr(pdf_module, "html_to_pdf", counting)
    return counted


def test_the_pdf_is_rendered_once_per_version_and_language(client, app, session, renders):
    invoice = make_invoice(make_creditor("DE"), lines=2)
    bill_url = open_bill(client, app, invoice)
    first = client.get(f"{bill_url}/invoice.pdf").data
    assert client.get(f"{bill_url}/invoice.pdf").data == first and len(renders) == 1  # served from the cache
    client.get(f"{bill_url}?lang=en")
    english = client.get(f"{bill_url}/invoice.pdf").data
    assert english != first and len(renders) == 2  # another language, another PDF
    assert client.get(f"{bill_url}/invoice.pdf").data == english and len(renders) == 2

    record_payment(invoice, 1000, actor="test", paid_on=invoice.issue_date, method="bank_transfer")
    session.commit()  # a new version of the bill: rendered again, with the payment on it
    paid = client.get(f"{bill_url}/invoice.pdf").data
    assert len(renders) == 3 and paid != english
    assert format_money(1000, "EUR", "en_GB") in pdf_text(paid)[1]


def test_the_partners_copy_is_the_customers_cached_pdf(client, app, session, renders):
    from app.debt_collection.models import Case
    from app.debt_collection.worker import run
    from tests.functional.collection_helpers import creditor_with_policy, overdue, partner_for, today_for

    partner = partner_for(app, "http://127.0.0.1:9/collect")
    creditor = creditor_with_policy(app, partner.partner)
    invoice = overdue(app, creditor)
    with app.app_context():
        run(today_for)
    case = session.scalar(select(Case).where(Case.invoice_id == invoice.id))
    customer = app.test_client()
    from_bill = customer.get(f"{open_bill(customer, app, invoice)}/invoice.pdf")
    assert from_bill.status_code == 200 and len(renders) == 1
    headers = {"Authorization": f"Bearer {partner.api_key}"}
    for _ in range(2):
        copy = client.get(f"/api/partner/v1/cases/{case.public_id}/invoice.pdf", headers=headers)
        assert copy.status_code == 200 and copy.data == from_bill.data
    signed = case.case_file["documents"]["invoice_pdf"]["url"].split("://", 1)[1].split("/", 1)[1]
    assert client.get(f"/{signed}").data == from_bill.data
    assert len(renders) == 1  # the customer's language, the same version: one render for all four


@pytest.mark.parametrize("where", ["bill page", "partner API", "signed address"])
def test_pdf_downloads_are_rate_limited_per_client(client, app, session, monkeypatch, where):
    monkeypatch.setitem(app.config, "PDF_RATE_LIMIT", "5 per minute; 2 per hour")
    from app.debt_collection.models import Case
    from app.debt_collection.worker import run
    from tests.functional.collection_helpers import creditor_with_policy, overdue, partner_for, today_for

    partner = partner_for(app, "http://127.0.0.1:9/collect")
    invoice = overdue(app, creditor_with_policy(app, partner.partner, keep_payments=True))
    with app.app_context():
        run(today_for)
    case = session.scalar(select(Case).where(Case.invoice_id == invoice.id))
    headers = {}
    if where == "bill page":
        url = f"{open_bill(client, app, invoice)}/invoice.pdf"
    elif where == "partner API":
        url = f"/api/partner/v1/cases/{case.public_id}/invoice.pdf"
        headers = {"Authorization": f"Bearer {partner.api_key}"}
    else:
        url = "/" + case.case_file["documents"]["invoice_pdf"]["url"].split("://", 1)[1].split("/", 1)[1]
    answers = [client.get(url, headers=headers) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]  # the hourly window counts too
    assert int(answers[2].headers["Retry-After"]) > 60
    other = client.get(url, headers=headers, environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert other.status_code == 200  # per client address


def test_a_thread_keeps_one_font_configuration_for_its_documents(client, app, session, monkeypatch):
    """WeasyPrint's default is a new font configuration per document, whose native memory a worker never
    gets back: a thread makes one for its first PDF and keeps it; another thread makes its own."""
    import threading

    from weasyprint.text import fonts

    import app.billing.pdf as pdf_module

    made = []

    class Counted(fonts.FontConfiguration):
        def __init__(self):
            super().__init__()
            made.append(threading.get_ident())

    monkeypatch.setattr(fonts, "FontConfiguration", Counted)
    monkeypatch.setattr(pdf_module, "_fonts", threading.local())
    first, second = make_invoice(make_creditor("NO"), lines=2), make_invoice(make_creditor("DE"), lines=3)
    texts = []
    for invoice in (first, second):
        bill_url = open_bill(client, app, invoice)
        texts.append(pdf_text(client.get(f"{bill_url}/invoice.pdf").data)[1])
    assert len(made) == 1  # the second document used the first's configuration
    assert first.number in texts[0] and second.number in texts[1]  # and each shows its own text
    with app.test_request_context():
        other = threading.Thread(target=lambda: made.append(("config", pdf_module.font_config())))
        other.start()
        other.join()
        assert len(made) == 3 and made[1] != made[0] and made[2][1] is not pdf_module.font_config()
