from datetime import date

import pytest

from app.billing.models import InvoiceEvent, InvoiceStatus
from app.billing.services import (
    TRANSITIONS,
    cancel_invoice,
    record_payment,
    release,
    timeline,
    transition,
)
from app.errors import IllegalTransition, InvalidData
from tests.factories import make_creditor, make_invoice


@pytest.fixture
def invoice(session):
    return make_invoice(make_creditor("NO"), lines=2)


def test_every_status_has_rules_and_closed_ones_are_terminal():
    assert set(TRANSITIONS) == set(InvoiceStatus)
    assert TRANSITIONS[InvoiceStatus.CANCELLED] == frozenset() and TRANSITIONS[InvoiceStatus.WRITTEN_OFF] == frozenset()


@pytest.mark.parametrize("target", [InvoiceStatus.DISPUTED, InvoiceStatus.ON_HOLD, InvoiceStatus.IN_COLLECTION,
                                    InvoiceStatus.CANCELLED, InvoiceStatus.WRITTEN_OFF])
def test_allowed_transition_records_an_event(invoice, target):
    transition(invoice, target, actor="test", reason="why")
    assert invoice.status == target
    event = timeline(invoice)[-1]
    assert (event.kind, event.data["from"], event.data["to"], event.data["reason"]) == (
        "status_changed", InvoiceStatus.OPEN, target, "why")


@pytest.mark.parametrize(
    ("start", "target"),
    [(InvoiceStatus.CANCELLED, InvoiceStatus.OPEN), (InvoiceStatus.WRITTEN_OFF, InvoiceStatus.PAID),
     (InvoiceStatus.IN_COLLECTION, InvoiceStatus.DISPUTED), (InvoiceStatus.IN_COLLECTION, InvoiceStatus.CANCELLED)],
)
def test_illegal_transition_raises_and_records_nothing(invoice, start, target):
    transition(invoice, start, actor="test")
    before = len(timeline(invoice))
    with pytest.raises(IllegalTransition):
        transition(invoice, target, actor="test")
    assert invoice.status == start
    assert len(timeline(invoice)) == before


def test_unknown_status_raises(invoice):
    with pytest.raises(IllegalTransition):
        transition(invoice, "lost", actor="test")


def test_payments_move_open_to_partially_paid_to_paid(invoice):
    record_payment(invoice, 1000, actor="test", paid_on=date(2026, 11, 1), method="bank_transfer")
    assert invoice.status == InvoiceStatus.PARTIALLY_PAID and invoice.balance == invoice.total - 1000
    record_payment(invoice, invoice.balance, actor="test", paid_on=date(2026, 11, 2), method="bank_transfer")
    assert invoice.status == InvoiceStatus.PAID and invoice.balance == 0
    kinds = [e.kind for e in timeline(invoice)]
    assert kinds.count("payment_recorded") == 2 and kinds.count("status_changed") == 2


def test_partial_payment_keeps_a_dispute_but_full_payment_ends_it(invoice):
    transition(invoice, InvoiceStatus.DISPUTED, actor="test")
    record_payment(invoice, 100, actor="test", paid_on=date(2026, 11, 1), method="card")
    assert invoice.status == InvoiceStatus.DISPUTED
    record_payment(invoice, invoice.balance, actor="test", paid_on=date(2026, 11, 1), method="card")
    assert invoice.status == InvoiceStatus.PAID


def test_release_goes_back_to_what_the_amounts_say(invoice):
    record_payment(invoice, 100, actor="test", paid_on=date(2026, 11, 1), method="card")
    transition(invoice, InvoiceStatus.ON_HOLD, actor="test")
    release(invoice, actor="test")
    assert invoice.status == InvoiceStatus.PARTIALLY_PAID


@pytest.mark.parametrize("amount", [0, -5, 1.5])
def test_bad_payment_amounts(invoice, amount):
    with pytest.raises(InvalidData):
        record_payment(invoice, amount, actor="test", paid_on=date(2026, 11, 1), method="card")
    assert invoice.amount_paid == 0


def test_closed_invoice_takes_no_payment(invoice):
    cancel_invoice(invoice, actor="test")
    with pytest.raises(IllegalTransition):
        record_payment(invoice, 100, actor="test", paid_on=date(2026, 11, 1), method="card")


def test_cannot_cancel_with_payments(invoice):
    record_payment(invoice, 100, actor="test", paid_on=date(2026, 11, 1), method="card")
    with pytest.raises(IllegalTransition):
        cancel_invoice(invoice, actor="test")


def test_events_are_stored(session, invoice):
    transition(invoice, InvoiceStatus.ON_HOLD, actor="agent:1")
    session.flush()
    stored = session.query(InvoiceEvent).filter_by(invoice_id=invoice.id, kind="status_changed").one()
    assert stored.actor == "agent:1" and stored.created_at.tzinfo is not None
