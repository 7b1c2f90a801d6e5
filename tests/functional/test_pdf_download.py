"""Downloading the invoice PDF from the bill page: only with a grant, in the page's language."""

import io
import re

from pypdf import PdfReader

from app.billing.services import cancel_invoice
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
