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
    assert note.number == "CN-000001" and note.reason == "Wrong meter"
    assert creditable(invoice) == {first.id: 0, second.id: second.gross}
    assert invoice.events[-1].kind == "credit_note_issued"


def test_a_part_credit_splits_vat_by_the_lines_rate_and_a_second_note_gets_the_next_number(invoice):
    line = invoice.lines[0]
    note = issue_credit_note(invoice, [LineCredit(line.id, 5000)], reason="Goodwill", actor="agent:1")
    assert (note.subtotal, note.vat_total) == (4000, 1000)  # 25 %
    rest = issue_credit_note(invoice, [LineCredit(line.id, line.gross - 5000)], reason="All of it", actor="agent:1")
    assert (note.number, rest.number) == ("CN-000001", "CN-000002")
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


def test_a_correction_is_a_credit_note_and_the_issued_lines_never_change(invoice):
    first, second = invoice.lines
    first.quantity = Decimal("3")  # as if issued with 3 units: 375.03 gross
    first.net, first.vat, first.gross = 30003, 7501, 37504
    invoice.subtotal, invoice.vat_total = first.net + second.net, first.vat + second.vat
    invoice.total = first.gross + second.gross
    issued = [(line.quantity, line.unit_price, line.net, line.vat, line.gross) for line in invoice.lines]
    total = invoice.total
    note = correct_lines(invoice, [LineCorrection(first.id, Decimal("2"), first.unit_price)], reason="Two units",
                         actor="agent:1")
    # 2 units are 200.02 net and 50.01 VAT (on the rounded net, half up): the note takes off the rest exactly
    assert (note.subtotal, note.vat_total, note.total) == (30003 - 20002, 7501 - 5001, 37504 - 25003)
    assert [(line.quantity, line.unit_price, line.net, line.vat, line.gross) for line in invoice.lines] == issued
    assert invoice.total == total - note.total and invoice.credited == note.total
    kinds = [event.kind for event in invoice.events]
    assert kinds[-2:] == ["line_corrected", "credit_note_issued"]
    assert invoice.events[-2].data["before"]["quantity"] == "3" and invoice.events[-2].data["after"]["quantity"] == "2"
    # a second correction of the same line counts from what is left of it after the first
    again = correct_lines(invoice, [LineCorrection(first.id, Decimal("1"), first.unit_price)], reason="One unit",
                          actor="agent:1")
    assert again.total == 25003 - 12501 and creditable(invoice)[first.id] == 12501
    assert (note.number, again.number) == ("CN-000001", "CN-000002")


def test_a_correction_upwards_or_a_bad_one_changes_nothing(invoice):
    first, second = invoice.lines
    before = (invoice.total, invoice.credited)
    with pytest.raises(InvalidData) as problems:
        correct_lines(invoice, [LineCorrection(first.id, Decimal("2"), first.unit_price),
                                LineCorrection(second.id, Decimal("-1"), 1)], reason="x", actor="agent:1")
    assert problems.value.errors == {f"line-{first.id}": "higher", f"line-{second.id}": "quantity"}
    assert (invoice.total, invoice.credited) == before and not credit_notes(invoice.id)
    other = make_invoice(invoice.creditor)
    other.status = InvoiceStatus.CANCELLED
    with pytest.raises(IllegalTransition):
        issue_credit_note(other, [LineCredit(other.lines[0].id, 100)], reason="x", actor="agent:1")


def test_a_paid_bill_corrected_downwards_stays_paid_and_owes_the_difference_back(invoice):
    payment = pay(invoice, invoice.total, "p-1")
    assert invoice.status == InvoiceStatus.PAID
    line = invoice.lines[0]
    note = correct_lines(invoice, [LineCorrection(line.id, Decimal("1"), line.unit_price - 1000)], reason="Price",
                         actor="agent:1")
    assert note.total == 1250 and invoice.status == InvoiceStatus.PAID  # 10.00 net and 2.50 VAT
    assert payment.refund_due == 1250 and invoice.balance == -1250


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
