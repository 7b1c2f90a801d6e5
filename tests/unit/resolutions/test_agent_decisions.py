"""What an agent decides: disputes upheld, partly upheld or rejected (with the bill made right in the
same step), and instalment plans asked for beyond the rules."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from app.billing.corrections import LineCorrection, LineCredit, credit_notes
from app.billing.models import InvoiceStatus
from app.errors import IllegalTransition, InvalidData
from app.extensions import db
from app.models import utcnow
from app.outbox.models import OutboxMessage
from app.payments.services import settle
from app.resolutions import disputes, plans, services
from app.resolutions.models import Kind, Status
from tests.unit.resolutions.conftest import TODAY, TOTAL


def dispute(invoice, tmp_path, lines=None, key="d"):
    found, _created = disputes.open_dispute(invoice, reason="wrong_amount", message="Too much", line_ids=lines,
                                            upload=None, attachment_dir=str(tmp_path), locale="nb",
                                            submission_key=key, today=TODAY)
    return found


def mail_kinds() -> list[str]:
    return list(db.session.scalars(select(OutboxMessage.kind).order_by(OutboxMessage.id)))


def test_upholding_a_line_dispute_credits_the_line_and_the_process_resumes(invoice, tmp_path):
    line = invoice.lines[1]
    found = dispute(invoice, tmp_path, [line.id])
    disputes.answer_dispute(found, Status.UPHELD, "You are right.", actor="agent:7")
    assert found.status == Status.UPHELD and invoice.status == InvoiceStatus.OPEN
    assert invoice.total == TOTAL - line.gross and invoice.credited == line.gross
    note_event = next(e for e in invoice.events if e.kind == "credit_note_issued")
    assert note_event.data["reference"] == found.reference and "R-" in note_event.data["reason"]
    assert services.dunning_for(invoice, TODAY).may_remind
    assert mail_kinds()[-1] == "resolution.dispute_answered"


def test_partly_upholding_needs_a_credit_or_a_correction_and_makes_them(invoice, tmp_path):
    first = invoice.lines[0]
    found = dispute(invoice, tmp_path)
    with pytest.raises(InvalidData) as none:
        disputes.answer_dispute(found, Status.PARTIAL, "Partly.", actor="agent:7")
    assert none.value.errors == {"credits": "none"} and found.status == Status.OPEN
    with pytest.raises(InvalidData):  # a bad credit: nothing changes
        disputes.answer_dispute(found, Status.PARTIAL, "Partly.", actor="agent:7",
                                credits=[LineCredit(first.id, first.gross + 1)])
    assert found.status == Status.OPEN and invoice.total == TOTAL
    disputes.answer_dispute(found, Status.PARTIAL, "The first reading was estimated too high.", actor="agent:7",
                            corrections=[LineCorrection(first.id, Decimal("0.5"), first.unit_price)],
                            credits=[LineCredit(invoice.lines[2].id, 1000)])
    assert found.status == Status.PARTIAL and invoice.status == InvoiceStatus.OPEN
    # 0.5 × 100.01 = 50.01 net + 12.50 VAT = 62.51, was 125.01: a credit note of 62.50; and another of
    # 10.00 off the third line. The lines stay as issued.
    assert first.gross == 12501 and invoice.total == TOTAL - 12501 + 6251 - 1000
    assert invoice.total == sum(line.gross for line in invoice.lines) - invoice.credited
    assert [note.total for note in credit_notes(invoice.id)] == [12501 - 6251, 1000]
    assert {note.reference for note in credit_notes(invoice.id)} == {found.reference}


def test_a_rejected_dispute_changes_nothing_on_the_bill(invoice, tmp_path):
    found = dispute(invoice, tmp_path)
    with pytest.raises(InvalidData):
        disputes.answer_dispute(found, Status.REJECTED, "No.", actor="agent:7",
                                credits=[LineCredit(invoice.lines[0].id, 100)])
    disputes.answer_dispute(found, Status.REJECTED, "The reading is right.", actor="agent:7")
    assert (invoice.status, invoice.total, invoice.credited) == (InvoiceStatus.OPEN, TOTAL, 0)


def test_upholding_a_whole_dispute_of_a_part_paid_bill_credits_everything_and_owes_the_payment_back(invoice,
                                                                                                  tmp_path):
    payment = settle(invoice.id, provider="manual", payment_id="m-1", amount=10000, currency="NOK", method="cash",
                     received_at=utcnow(), actor="test")
    found = dispute(invoice, tmp_path)
    disputes.answer_dispute(found, Status.UPHELD, "Our mistake entirely.", actor="agent:7")
    assert invoice.total == 0 and invoice.status == InvoiceStatus.PAID
    assert payment.refund_due == 10000  # the inbox shows it until it is paid back


def test_a_paid_bill_disputed_and_upheld_in_part_owes_the_credit_back(invoice, tmp_path):
    payment = settle(invoice.id, provider="manual", payment_id="m-1", amount=TOTAL, currency="NOK", method="card",
                     received_at=utcnow(), actor="test")
    assert invoice.status == InvoiceStatus.PAID and services.self_service(invoice, TODAY).can["dispute"]
    first = invoice.lines[0]
    found, _created = disputes.open_dispute(
        invoice, reason="wrong_amount", message="The first line was billed twice.", line_ids=[first.id], upload=None,
        attachment_dir=str(tmp_path), locale="en", submission_key="paid-1", today=TODAY)
    assert invoice.status == InvoiceStatus.PAID and found.amount == first.gross  # nothing to hold back
    assert not services.self_service(invoice, TODAY).can["dispute"]  # one at a time
    disputes.answer_dispute(found, Status.UPHELD, "You are right.", actor="agent:7")
    (note,) = credit_notes(invoice.id)
    assert note.total == first.gross and note.reference == found.reference
    assert invoice.status == InvoiceStatus.PAID and payment.refund_due == first.gross
    assert invoice.total + invoice.credited == TOTAL  # the invoice as issued is still there


def test_a_plan_asked_for_beyond_the_rules_pauses_reminders_until_an_agent_grants_it(invoice):
    with pytest.raises(InvalidData) as problems:
        plans.request_plan(invoice, 30, "", locale="nb", submission_key="p", today=TODAY)
    assert problems.value.errors == {"months": "range", "message": "required"}
    request, created = plans.request_plan(invoice, 12, "I lost my job; 12 months would work.", locale="nb",
                                             submission_key="p", today=TODAY)
    again, created_again = plans.request_plan(invoice, 12, "twice", locale="nb", submission_key="p", today=TODAY)
    assert created and not created_again and again.id == request.id
    assert (request.kind, request.status, request.months) == (Kind.PLAN, Status.OPEN, 12)
    assert services.dunning_for(invoice, TODAY).reason == "plan_request"
    found = services.self_service(invoice, TODAY)
    assert found.plan_request is request and found.plan is None and not found.can["plan"]
    assert mail_kinds()[-2:] == ["resolution.plan_requested", "resolution.plan_request_notification"]

    plans.decide_plan(request, True, "Granted: 12 months.", actor="agent:7", today=TODAY)
    assert request.status == Status.ACTIVE and len(request.instalments) == 12
    assert sum(i.amount for i in request.instalments) == request.amount == invoice.balance
    assert services.dunning_for(invoice, TODAY).reason == "plan"
    assert services.self_service(invoice, TODAY).plan is request
    with pytest.raises(IllegalTransition):
        plans.decide_plan(request, False, "no", actor="agent:7", today=TODAY)


def test_a_declined_plan_request_lets_reminders_resume(invoice):
    request, _created = plans.request_plan(invoice, 24, "Please.", locale="nb", submission_key="p", today=TODAY)
    plans.decide_plan(request, False, "We can offer six months at most.", actor="agent:7", today=TODAY)
    assert request.status == Status.DECLINED and request.answer.startswith("We can offer")
    assert services.dunning_for(invoice, TODAY).may_remind
    assert services.self_service(invoice, TODAY).can["plan"]
    assert mail_kinds()[-1] == "resolution.plan_declined"
