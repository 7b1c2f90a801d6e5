"""A customer whose data lies in many tables: a paid bill with a conversation and an attachment, a link,
an agent's note, a pending contact change, an e-mail sent, a reminder message, a bank credit with the
payer's name and the provider's notification; and a second, open bill of another customer."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, timedelta

import pytest

from app.backoffice.models import Note
from app.billing.models import Customer, Invoice
from app.dunning.letters.models import LetterPrint
from app.dunning.models import ContactChange, Letter, Message
from app.extensions import db
from app.links.models import AccessLink
from app.models import utcnow
from app.outbox.models import OutboxMessage
from app.payments.bank.models import BankEntry, BankImport
from app.payments.models import WebhookEvent
from app.payments.services import settle
from app.support.attachments import Upload
from app.support.models import Attachment, SupportRequest
from app.support.services import open_request
from tests.factories import make_creditor, make_invoice

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@dataclass
class Story:
    customer: Customer
    paid: Invoice
    request: SupportRequest
    attachment: Attachment
    other_open: Invoice
    closed_on: date


@pytest.fixture
def ctx(app, session):
    with app.test_request_context():
        yield


def paid_story(creditor, tmp_path, *, external_ref: str = "C-1") -> Story:
    customer_data = {"external_ref": external_ref, "name": "Kari Nordmann", "email": "kari@example.test",
                     "phone": "+4791234567", "date_of_birth": "1980-12-31",
                     "address": {"line1": "Storgata 1", "postcode": "0150", "city": "Oslo", "country": "NO"}}
    invoice = make_invoice(creditor, customer=customer_data)
    customer = invoice.customer
    request, _ = open_request(
        invoice, topic="bill_question", message="My neighbour Per Hansen says the meter is wrong",
        contact_method="email", contact_email="kari.private@example.test", contact_phone=None, callback_date=None,
        callback_window=None, upload=Upload("meter.pdf", "application/pdf", PDF), locale="nb", submission_key="k1",
        attachment_dir=str(tmp_path))
    attachment = db.session.get(Attachment, request.messages[0].attachment_id)
    db.session.add_all([
        AccessLink(key_hash=secrets.token_hex(32), invoice_id=invoice.id, channel="sms",
                   expires_at=utcnow() + timedelta(days=30)),
        Note(creditor_id=creditor.id, customer_id=customer.id, invoice_id=invoice.id, body="Called her, she was upset"),
        ContactChange(creditor_id=creditor.id, customer_id=customer.id, kind="email", value="new.kari@example.test",
                      code_hash="0" * 64, expires_at=utcnow() + timedelta(days=1)),
        OutboxMessage(creditor_id=creditor.id, channel="email", kind="payment_receipt", recipient="kari@example.test",
                      payload={"invoice_id": invoice.id}, idempotency_key=secrets.token_hex(8), status="delivered",
                      sent_subject="Receipt", sent_text="Dear Kari Nordmann"),
        Message(creditor_id=creditor.id, customer_id=customer.id, channel="email", recipient="kari@example.test",
                locale="nb", status="delivered", subject="Påminnelse", body="Hei Kari"),
    ])
    by_letter = Message(creditor_id=creditor.id, customer_id=customer.id, channel="letter", locale="nb",
                        status="sent")
    db.session.add(by_letter)
    db.session.flush()
    letter = Letter(creditor_id=creditor.id, customer_id=customer.id, message_id=by_letter.id, status="printed",
                    address={"lines": ["Postboks 7"], "postcode": "0151", "city": "Oslo", "country": "NO"})
    db.session.add(letter)
    db.session.flush()
    db.session.add(LetterPrint(creditor_id=creditor.id, letter_id=letter.id, batch=utcnow().date(), part=1,
                               locale="nb", pages=1, sha256="0" * 64, file_name="x.pdf",
                               facts={"address": {"name": "Kari Nordmann", "lines": ["Postboks 7"]}}))
    payment = settle(invoice.id, provider="stripe", payment_id=f"pi_{secrets.token_hex(4)}", amount=invoice.total,
                     currency=invoice.currency, method="card", received_at=utcnow(), actor="test")
    assert payment is not None
    db.session.add(WebhookEvent(provider="stripe", event_id=f"evt_{secrets.token_hex(4)}", event_type="x",
                                provider_ref=payment.provider_payment_id, outcome="applied", creditor_id=creditor.id,
                                payload={"billing_details": {"name": "Kari Nordmann"}}))
    bank_import = BankImport(filename="x.xml", file_format="camt.054", sha256=secrets.token_hex(32))
    db.session.add(bank_import)
    db.session.flush()
    db.session.add(BankEntry(import_id=bank_import.id, creditor_id=creditor.id, account="15032080119",
                             bank_ref=secrets.token_hex(6), booked_on=utcnow().date(), amount=100, currency="NOK",
                             remittance="from Kari, flat 3", payer_name="KARI NORDMANN", status="resolved",
                             invoice_id=invoice.id))
    other = make_invoice(creditor, customer={**customer_data, "external_ref": external_ref + "-other",
                                             "email": "other@example.test"})
    db.session.flush()
    db.session.refresh(invoice)
    assert invoice.status == "paid"
    return Story(customer, invoice, request, attachment, other, utcnow().date())


@pytest.fixture
def creditor(ctx):
    return make_creditor("NO")


@pytest.fixture
def story(creditor, tmp_path):
    return paid_story(creditor, tmp_path)
