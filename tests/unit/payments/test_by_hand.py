"""What agents do with money by hand: a payment received elsewhere, a refund of what is owed back
(through the provider, or by the creditor's bank), and a kept bank credit matched or sent back."""

from __future__ import annotations

import secrets
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from app.billing.models import InvoiceStatus
from app.errors import IllegalTransition, InvalidData
from app.extensions import db
from app.models import utcnow
from app.outbox.models import OutboxMessage
from app.payments.bank.models import BankEntry, BankImport, EntryStatus
from app.payments.bank.services import match_entry, return_entry
from app.payments.gateways.base import CheckoutRequest, GatewayError, Party
from app.payments.models import Payment, Refund
from app.payments.providers import simulator_for
from app.payments.refunds import refund_payment
from app.payments.services import record_manual_payment, settle
from tests.factories import make_creditor, make_invoice


@pytest.fixture
def ctx(app, session):
    with app.test_request_context():
        yield


@pytest.fixture
def invoice(ctx):
    return make_invoice(make_creditor("NO"), lines=2)


def receipts(invoice) -> int:
    return db.session.scalar(select(func.count()).select_from(OutboxMessage).where(
        OutboxMessage.kind == "payment_receipt", OutboxMessage.creditor_id == invoice.creditor_id))


def test_a_manual_payment_settles_once_per_key_with_a_receipt(invoice):
    yesterday = utcnow().date() - timedelta(days=1)
    payment = record_manual_payment(invoice, 10000, received_on=yesterday, method="cash", key="k1", actor="agent:1",
                                    note="Paid at the office")
    again = record_manual_payment(invoice, 10000, received_on=yesterday, method="cash", key="k1", actor="agent:1")
    assert again.id == payment.id and invoice.amount_paid == 10000 and invoice.status == InvoiceStatus.PARTIALLY_PAID
    assert (payment.provider, payment.method, payment.received_at.date()) == ("manual", "cash", yesterday)
    assert receipts(invoice) == 1
    assert [e.kind for e in invoice.events][-1] == "payment_note"


def test_a_manual_payment_refuses_bad_input_and_changes_nothing(invoice):
    with pytest.raises(InvalidData) as problems:
        record_manual_payment(invoice, 0, received_on=utcnow().date() + timedelta(days=5), method="gold", key="",
                              actor="agent:1")
    assert set(problems.value.errors) == {"amount", "method", "received_on", "key"}
    assert invoice.amount_paid == 0 and receipts(invoice) == 0


def test_an_overpayment_is_refunded_through_the_provider_once_per_key(invoice):
    gateway = simulator_for(invoice.creditor)
    checkout = gateway.create_checkout(CheckoutRequest(
        attempt_ref="a1", amount=invoice.total + 5000, currency="NOK", invoice_number=invoice.number,
        payment_reference=invoice.payment_reference, description="x", payer=Party(name="Kari"), methods=("card",),
        locale="nb", return_url="https://pay.example.test/r", cancel_url="https://pay.example.test/c",
        idempotency_key="attempt-a1"))
    gateway.choose(checkout.provider_ref, "succeed")
    payment = settle(invoice.id, provider="simulator", payment_id=checkout.provider_ref, amount=invoice.total + 5000,
                     currency="NOK", method="card", received_at=utcnow(), actor="test")
    assert payment.refund_due == 5000 and invoice.balance == -5000
    with pytest.raises(InvalidData) as too_much:
        refund_payment(payment, 5001, channel="provider", key="r1", actor="agent:1", gateway=gateway)
    assert too_much.value.errors == {"amount": "more_than_due"}
    refund = refund_payment(payment, 5000, channel="provider", key="r1", actor="agent:1", gateway=gateway)
    again = refund_payment(payment, 5000, channel="provider", key="r1", actor="agent:1", gateway=gateway)
    assert again.id == refund.id and refund.status == "succeeded" and refund.provider_refund_id
    assert (payment.refund_due, payment.refunded) == (0, 5000)
    assert invoice.balance == 0 and invoice.status == InvoiceStatus.PAID  # the bill keeps what it was owed
    assert gateway.store.get(checkout.provider_ref).refunded == 5000
    assert db.session.scalar(select(func.count()).select_from(Refund)) == 1


def test_a_provider_that_refuses_a_refund_leaves_it_owed(invoice):
    payment = settle(invoice.id, provider="simulator", payment_id="sim_unknown", amount=invoice.total + 100,
                     currency="NOK", method="card", received_at=utcnow(), actor="test")
    with pytest.raises(GatewayError):
        refund_payment(payment, 100, channel="provider", key="r1", actor="agent:1",
                       gateway=simulator_for(invoice.creditor))
    assert payment.refund_due == 100 and not db.session.scalars(select(Refund)).all()


def test_a_manual_payment_is_paid_back_by_bank_not_by_a_provider(invoice):
    payment = record_manual_payment(invoice, invoice.total + 2500, received_on=utcnow().date(), method="bank_transfer",
                                    key="k1", actor="agent:1")
    with pytest.raises(InvalidData):
        refund_payment(payment, 2500, channel="provider", key="r1", actor="agent:1",
                       gateway=simulator_for(invoice.creditor))
    refund = refund_payment(payment, 2500, channel="bank_transfer", key="r2", actor="agent:1",
                            note="Sent from DNB on 1 Dec")
    assert refund.channel == "bank_transfer" and payment.refund_due == 0 and invoice.balance == 0


def kept_entry(invoice, *, amount=None, currency="NOK", creditor_id=None, bank_ref="REF-1") -> BankEntry:
    bank_import = BankImport(filename="x.xml", file_format="camt.054", sha256=secrets.token_hex(32))
    db.session.add(bank_import)
    db.session.flush()
    entry = BankEntry(import_id=bank_import.id, creditor_id=creditor_id or invoice.creditor_id,
                      account="15032080119", bank_ref=bank_ref, booked_on=date(2026, 11, 30),
                      amount=amount or invoice.total, currency=currency, payer_name="K. Nordmann",
                      status=EntryStatus.UNMATCHED, reason="no_match", details={})
    db.session.add(entry)
    db.session.flush()
    return entry


def test_a_kept_credit_matched_by_an_agent_settles_like_the_import_would(invoice):
    entry = kept_entry(invoice)
    payment = match_entry(entry, invoice, actor="agent:1", note="Paid by her husband")
    assert invoice.status == InvoiceStatus.PAID
    assert entry.status == EntryStatus.RESOLVED and entry.resolution == "matched"
    assert payment.provider_payment_id == "15032080119:REF-1" and entry.payment_id == payment.id
    assert payment.received_at.date() == date(2026, 11, 30)
    with pytest.raises(IllegalTransition):
        match_entry(entry, invoice, actor="agent:1")
    assert db.session.scalar(select(func.count()).select_from(Payment).where(Payment.invoice_id == invoice.id)) == 1


def test_a_kept_credit_cannot_go_to_another_creditors_bill_or_currency(invoice):
    entry = kept_entry(invoice)
    theirs = make_invoice(make_creditor("NO"))
    with pytest.raises(InvalidData) as other:
        match_entry(entry, theirs, actor="agent:1")
    assert other.value.errors == {"invoice": "other_creditor"}
    euros = kept_entry(invoice, currency="EUR", bank_ref="REF-2")
    with pytest.raises(InvalidData) as currency:
        match_entry(euros, invoice, actor="agent:1")
    assert currency.value.errors == {"invoice": "currency"} and entry.status == EntryStatus.UNMATCHED


def test_a_kept_credit_sent_back_needs_a_note(invoice):
    entry = kept_entry(invoice)
    with pytest.raises(InvalidData):
        return_entry(entry, actor="agent:1", note=" ")
    return_entry(entry, actor="agent:1", note="Not ours: returned to the payer")
    assert (entry.status, entry.resolution, entry.resolved_by) == (EntryStatus.RESOLVED, "returned", "agent:1")
