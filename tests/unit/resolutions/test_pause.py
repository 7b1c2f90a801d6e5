"""The one rule: may the invoice be reminded or handed off today?"""

from __future__ import annotations

from datetime import timedelta

from app.billing.models import InvoiceStatus
from app.billing.services import cancel_invoice, record_payment, transition
from app.resolutions.models import Kind, Resolution, Status
from app.resolutions.pause import GO, dunning
from app.resolutions.services import dunning_for
from tests.factories import make_invoice
from tests.unit.resolutions.conftest import TODAY


def live(kind, status, **fields):
    return Resolution(kind=kind, status=status, **fields)


def test_an_open_invoice_with_nothing_arranged_may_be_reminded_and_handed_off(invoice):
    assert dunning(invoice, TODAY, []) == GO
    assert dunning_for(invoice, TODAY) == GO


def test_an_open_dispute_pauses_both_until_someone_answers(invoice):
    answer = dunning(invoice, TODAY, [live(Kind.DISPUTE, Status.OPEN)])
    assert (answer.may_remind, answer.may_hand_off, answer.reason, answer.until) == (False, False, "dispute", None)


def test_a_promise_pauses_until_its_date_plus_grace_then_the_process_resumes(invoice):
    promise = live(Kind.PROMISE, Status.ACTIVE, new_date=TODAY + timedelta(days=7))
    last_day = TODAY + timedelta(days=10)  # three grace days
    assert dunning(invoice, TODAY, [promise]).until == last_day
    assert dunning(invoice, last_day, [promise]).paused
    assert dunning(invoice, last_day + timedelta(days=1), [promise]) == GO


def test_a_granted_deferral_pauses_until_the_new_due_date_and_a_request_until_decided(invoice):
    granted = live(Kind.DEFERRAL, Status.ACTIVE, new_date=TODAY + timedelta(days=10))
    assert dunning(invoice, TODAY, [granted]).until == TODAY + timedelta(days=10)
    assert dunning(invoice, TODAY + timedelta(days=11), [granted]) == GO
    assert dunning(invoice, TODAY, [live(Kind.DEFERRAL, Status.OPEN, new_date=TODAY)]).reason == "deferral_request"


def test_a_running_plan_pauses_without_end_and_a_broken_one_does_not(invoice):
    assert dunning(invoice, TODAY, [live(Kind.PLAN, Status.ACTIVE)]).reason == "plan"
    assert dunning(invoice, TODAY, [live(Kind.PLAN, Status.BROKEN)]) == GO


def test_the_longest_pause_wins_and_an_open_ended_one_beats_any_date(invoice):
    promise = live(Kind.PROMISE, Status.ACTIVE, new_date=TODAY + timedelta(days=3))
    deferral = live(Kind.DEFERRAL, Status.ACTIVE, new_date=TODAY + timedelta(days=20))
    assert dunning(invoice, TODAY, [promise, deferral]).reason == "deferral"
    assert dunning(invoice, TODAY, [promise, deferral, live(Kind.DISPUTE, Status.OPEN)]).reason == "dispute"


def test_an_agents_hold_pauses_and_collection_stops_reminders_and_a_second_hand_off(invoice):
    transition(invoice, InvoiceStatus.ON_HOLD, actor="agent")
    assert dunning(invoice, TODAY, []).reason == InvoiceStatus.ON_HOLD
    transition(invoice, InvoiceStatus.OPEN, actor="agent")
    transition(invoice, InvoiceStatus.IN_COLLECTION, actor="collector")
    answer = dunning(invoice, TODAY, [])
    assert (answer.may_remind, answer.may_hand_off, answer.reason) == (False, False, "in_collection")


def test_paid_and_closed_invoices_are_never_reminded(invoice, creditor):
    record_payment(invoice, invoice.total, actor="test", paid_on=TODAY, method="card")
    assert dunning(invoice, TODAY, []).reason == "paid"
    cancelled = make_invoice(creditor)
    cancel_invoice(cancelled, actor="test")
    assert dunning(cancelled, TODAY, []).reason == "closed"
