"""Credit notes, line corrections, what is owed back after them, and an agent's hold of reminders."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from app.billing.corrections import (
    LineCorrection,
    LineCredit,
    correct_lines,
    credit_notes,
    creditable,
    issue_credit_note,
)
from app.billing.models import InvoiceStatus
from app.billing.services import hold, resume
from app.errors import IllegalTransition, InvalidData
from app.extensions import db
from app.models import utcnow
from app.payments.models import Payment
from app.payments.services import settle
from app.resolutions import daily, services
from tests.factories import make_creditor, make_invoice


@pytest.fixture
def invoice(app, session):
    with app.test_request_context():
        yield make_invoice(make_creditor("NO"), lines=2)  # 125.01 and 125.03, 25 % VAT


def pay(invoice, amount, ref):
    return settle(invoice.id, provider="manual", payment_id=ref, amount=amount, currency=invoice.currency,
                  method="cash", received_at=utcnow(), actor="test")


def test_a_full_line_credit_takes_exactly_its_net_and_vat_off(invoice):
    first, second = invoice.lines
    total = invoice.total
    note = issue_credit_note(invoice, [LineCredit(first.id, first.gross)], reason="Wrong meter", actor="agent:1")
    assert (note.total, note.subtotal, note.vat_total) == (first.gross, first.net, first.vat)
    assert (invoice.total, invoice.subtotal, invoice.vat_total) == (second.gross, second.net, second.vat)
    assert invoice.credited == total - invoice.total
    assert note.number == f"{invoice.number}-CN1" and note.reason == "Wrong meter"
    assert creditable(invoice) == {first.id: 0, second.id: second.gross}
    assert invoice.events[-1].kind == "credit_note_issued"


def test_a_part_credit_splits_vat_by_the_lines_rate_and_a_second_note_gets_the_next_number(invoice):
    line = invoice.lines[0]
    note = issue_credit_note(invoice, [LineCredit(line.id, 5000)], reason="Goodwill", actor="agent:1")
    assert (note.subtotal, note.vat_total) == (4000, 1000)  # 25 %
    rest = issue_credit_note(invoice, [LineCredit(line.id, line.gross - 5000)], reason="All of it", actor="agent:1")
    assert rest.number.endswith("-CN2")
    assert note.subtotal + rest.subtotal == line.net and note.vat_total + rest.vat_total == line.vat
    assert [n.number for n in credit_notes(invoice.id)] == [note.number, rest.number]


def test_bad_credits_change_nothing_and_every_problem_is_named(invoice):
    first, second = invoice.lines
    before = (invoice.total, invoice.credited)
    with pytest.raises(InvalidData) as problems:
        issue_credit_note(invoice, [LineCredit(first.id, first.gross + 1), LineCredit(second.id, 0),
                                    LineCredit(999999, 100)], reason="x", actor="agent:1")
    assert problems.value.errors == {f"credit-{first.id}": "more_than_line", f"credit-{second.id}": "not_positive",
                                     "credit-999999": "unknown_line"}
    with pytest.raises(InvalidData) as empty:
        issue_credit_note(invoice, [], reason="", actor="agent:1")
    assert empty.value.errors == {"reason": "required"}
    assert (invoice.total, invoice.credited) == before and not credit_notes(invoice.id)


def test_crediting_below_what_was_paid_owes_the_difference_back_newest_payment_first(invoice):
    first, second = invoice.lines
    older = pay(invoice, 10000, "p-1")
    newer = pay(invoice, 10000, "p-2")
    issue_credit_note(invoice, [LineCredit(first.id, first.gross)], reason="Wrong", actor="agent:1")
    # total is now second.gross (125.03); 200.00 was paid: 74.97 is owed back, all of it from the newer payment
    assert invoice.status == InvoiceStatus.PAID
    assert (newer.refund_due, older.refund_due) == (20000 - second.gross, 0)
    issue_credit_note(invoice, [LineCredit(second.id, second.gross)], reason="Both", actor="agent:1")
    assert (newer.refund_due, older.refund_due) == (10000, 10000)  # everything paid comes back
    assert sum(p.refund_due for p in db.session.query(Payment).filter_by(invoice_id=invoice.id)) == 20000


def test_a_corrected_line_recomputes_the_bill_both_ways(invoice):
    first, second = invoice.lines
    correct_lines(invoice, [LineCorrection(first.id, Decimal("2"), first.unit_price)], reason="Two units",
                  actor="agent:1")
    assert (first.net, first.vat, first.gross) == (20002, 5001, 25003)  # VAT on the rounded net, half up
    assert invoice.total == first.gross + second.gross
    assert invoice.events[-1].kind == "line_corrected" and invoice.events[-1].data["before"]["quantity"] == "1"
    correct_lines(invoice, [LineCorrection(second.id, Decimal("1"), 0)], reason="Free", actor="agent:1")
    assert invoice.total == first.gross and invoice.subtotal == first.net


def test_a_credited_line_is_not_corrected_and_a_cancelled_bill_not_at_all(invoice):
    first, second = invoice.lines
    issue_credit_note(invoice, [LineCredit(first.id, 100)], reason="x", actor="agent:1")
    with pytest.raises(InvalidData) as problems:
        correct_lines(invoice, [LineCorrection(first.id, Decimal("1"), 1),
                                LineCorrection(second.id, Decimal("-1"), 1)], reason="x", actor="agent:1")
    assert problems.value.errors == {f"line-{first.id}": "credited", f"line-{second.id}": "quantity"}
    other = make_invoice(invoice.creditor)
    other.status = InvoiceStatus.CANCELLED
    with pytest.raises(IllegalTransition):
        issue_credit_note(other, [LineCredit(other.lines[0].id, 100)], reason="x", actor="agent:1")


def test_a_paid_bill_corrected_upwards_is_owed_again(invoice):
    pay(invoice, invoice.total, "p-1")
    assert invoice.status == InvoiceStatus.PAID
    line = invoice.lines[0]
    correct_lines(invoice, [LineCorrection(line.id, Decimal("3"), line.unit_price)], reason="3 units",
                  actor="agent:1")
    assert invoice.status == InvoiceStatus.PARTIALLY_PAID and invoice.balance > 0


def test_a_hold_pauses_reminders_until_its_day_and_the_daily_run_ends_it(invoice):
    today = utcnow().date()
    hold(invoice, until=today + timedelta(days=3), actor="agent:1", reason="In hospital")
    assert invoice.status == InvoiceStatus.ON_HOLD
    paused = services.dunning_for(invoice, today)
    assert (paused.may_remind, paused.reason, paused.until) == (False, InvoiceStatus.ON_HOLD, today + timedelta(days=3))
    assert services.dunning_for(invoice, today + timedelta(days=4)).may_remind  # ends by itself
    assert daily.run_due(lambda country: today + timedelta(days=3)).resumed == 0
    assert daily.run_due(lambda country: today + timedelta(days=4)).resumed == 1
    assert invoice.status == InvoiceStatus.OPEN and invoice.hold_until is None
    assert [e.kind for e in invoice.events][-2:] == ["status_changed", "reminders_resumed"]


def test_a_hold_without_a_day_lasts_until_resumed_and_only_open_bills_are_held(invoice):
    hold(invoice, until=None, actor="agent:1", reason="Waiting for the meter reader")
    assert services.dunning_for(invoice, utcnow().date() + timedelta(days=365)).reason == InvoiceStatus.ON_HOLD
    with pytest.raises(IllegalTransition):
        hold(invoice, until=None, actor="agent:1", reason="again")
    resume(invoice, actor="agent:1", reason="Read")
    assert invoice.status == InvoiceStatus.OPEN
    with pytest.raises(IllegalTransition):
        resume(invoice, actor="agent:1", reason="again")
    pay(invoice, invoice.total, "p-1")
    with pytest.raises(IllegalTransition):
        hold(invoice, until=None, actor="agent:1", reason="paid")
