"""Entities read in one statement stay held by the one returned (`core.loading.linked`), and a locked
re-read of an invoice keeps the creditor and customer the session had: reading them again would cost a
statement each (the session's identity map holds what it loads weakly)."""

from __future__ import annotations

import re

from sqlalchemy import update

from app.access.services import load_bill
from app.billing.models import Invoice
from app.creditors.services import api_key_for, create_api_key
from app.extensions import db
from app.links.services import issue_link, record_open, resolve_token
from app.links.signer import LinkSigner
from app.payments.models import PaymentAttempt
from app.payments.services import attempt_with_bill, lock_invoice, new_attempt
from tests.factories import make_creditor, make_invoice
from tests.support.database import recorded_statements


def engine():
    return db.session.get_bind().engine


def reads_of(statements: list[str], table: str) -> list[str]:
    return [s for s in statements if re.match(rf"\s*SELECT\b.*\bFROM {table}\b", s, re.S | re.I)]


def test_an_attempt_holds_the_bill_and_creditor_read_with_it(session):
    invoice = make_invoice(make_creditor("NO"))
    ref = new_attempt(invoice, "simulator", invoice.balance).public_ref
    name = invoice.creditor.name
    db.session.flush()
    db.session.expunge_all()  # nothing held by the test: what the session keeps is what the call kept
    with recorded_statements(engine()) as statements:
        attempt = attempt_with_bill(PaymentAttempt.public_ref == ref)
        assert attempt.invoice.creditor.name == name
    assert len(statements) == 1


def test_an_api_key_holds_its_creditor(session):
    creditor = make_creditor("NO")
    key, name = create_api_key(creditor), creditor.name
    db.session.flush()
    db.session.expunge_all()
    with recorded_statements(engine()) as statements:
        assert api_key_for(key).creditor.name == name
    assert not reads_of(statements, "creditors")  # read with the key, in its one statement


def test_a_links_first_opening_reads_link_bill_and_customer_at_once(session):
    invoice = make_invoice(make_creditor("NO"))
    signer = LinkSigner(["key-" + "a" * 40], max_age_seconds=86400)
    issued = issue_link(invoice, signer=signer, base_url="https://pay.example.test", actor="test", channel="sms",
                        ttl_days=30)
    db.session.flush()
    resolution = resolve_token(issued.token, signer=signer)
    db.session.expunge_all()
    with recorded_statements(engine()) as statements:
        assert record_open(resolution, interval_minutes=30)
    assert len(reads_of(statements, "access_links")) == 1
    assert not reads_of(statements, "invoices") and not reads_of(statements, "customers")


def test_locking_an_invoice_reads_it_again_and_keeps_its_creditor_and_customer(session):
    made = make_invoice(make_creditor("NO"))
    invoice_id, public_id, name = made.id, made.public_id, made.customer.name
    db.session.flush()
    db.session.expunge_all()
    invoice = load_bill(public_id)  # as the pay form reads it: its creditor and customer held by it alone
    db.session.execute(update(Invoice).where(Invoice.id == invoice_id).values(amount_paid=1234))  # behind its back
    with recorded_statements(engine()) as statements:
        locked = lock_invoice(invoice_id)
        assert locked is invoice and locked.amount_paid == 1234  # re-read from the database
        assert locked.customer.name == name and locked.creditor.id == locked.creditor_id
    assert len(statements) == 1


def test_locking_an_invoice_the_session_does_not_hold_reads_its_relations_when_asked(session):
    invoice = make_invoice(make_creditor("NO"))
    invoice_id, name = invoice.id, invoice.creditor.name
    db.session.flush()
    db.session.expunge_all()
    locked = lock_invoice(invoice_id)
    assert locked.creditor.name == name


def test_locking_an_invoice_the_session_does_not_hold_reads_its_customer_with_it(session):
    """What a bill's event says of its customer (settling a payment records several) costs no statement
    of its own: the customer is read in the lock's statement, and only the invoice is locked."""
    invoice = make_invoice(make_creditor("NO"))
    invoice_id, ref = invoice.id, invoice.customer.external_ref
    db.session.flush()
    db.session.expunge_all()
    with recorded_statements(engine()) as statements:
        locked = lock_invoice(invoice_id)
        assert locked.customer.external_ref == ref
    assert len(statements) == 1
    if db.session.get_bind().dialect.name == "postgresql":
        assert re.search(r"FOR UPDATE OF invoices\s*$", statements[0])
