"""Every rule and limit of disputes, promises, deferrals and plans, on the real services."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from app.billing.models import InvoiceStatus
from app.billing.services import record_payment
from app.errors import IllegalTransition, InvalidData
from app.extensions import db
from app.outbox.models import OutboxMessage
from app.resolutions import daily, deferrals, disputes, instalments, plans, promises, services
from app.resolutions.models import Kind, Status
from app.resolutions.pause import GO
from app.support.attachments import Upload
from tests.factories import make_invoice
from tests.unit.resolutions.conftest import TODAY, TOTAL

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def mails(kind: str | None = None) -> list[OutboxMessage]:
    query = select(OutboxMessage).order_by(OutboxMessage.id)
    if kind:
        query = query.where(OutboxMessage.kind == f"resolution.{kind}")
    return list(db.session.scalars(query))


def events(invoice) -> list[str]:
    return [event.kind for event in invoice.events]


def days(n: int) -> date:
    return TODAY + timedelta(days=n)


# --- instalment plans -------------------------------------------------------------------------------


@pytest.mark.parametrize(("start", "months", "expected"), [
    (date(2027, 1, 31), 1, date(2027, 2, 28)), (date(2028, 1, 31), 1, date(2028, 2, 29)),
    (date(2026, 12, 7), 1, date(2027, 1, 7)), (date(2026, 8, 31), 3, date(2026, 11, 30)),
])
def test_add_months_keeps_the_day_or_takes_the_months_last(start, months, expected):
    assert instalments.add_months(start, months) == expected


def test_plan_interest_is_on_the_declining_balance_rounded_half_up():
    assert instalments.plan_interest(37503, 1200, 2) == 563  # 562.545
    assert instalments.plan_interest(120000, 1200, 12) == 7800  # 1 % a month on an average of 6.5/12 of it
    assert instalments.plan_interest(50000, 0, 6) == 0


def test_offers_follow_the_rules_and_stop_at_the_smallest_instalment(invoice):
    offers = instalments.plan_offers(invoice, TODAY)
    assert [o.months for o in offers] == [2, 3, 4]  # five instalments would be below 100.00
    for offer in offers:
        assert sum(amount for _day, amount in offer.schedule) == offer.total == TOTAL + 9900 + offer.interest
        assert all(amount >= 10000 for _day, amount in offer.schedule)
        assert offer.schedule[0][0] == days(14)  # two weeks from today (later than the due date)
        assert [d for d, _a in offer.schedule][1:] == [instalments.add_months(days(14), k)
                                                       for k in range(1, offer.months)]
    three = offers[1]
    assert [a for _d, a in three.schedule] == [16054, 16052, 16052]  # the first carries the remainder


def test_no_offers_when_the_creditor_offers_no_plans(invoice, creditor):
    creditor.plan_max_months = 1
    assert instalments.plan_offers(invoice, TODAY) == []
    assert services.self_service(invoice, TODAY).can["plan"] is False
    with pytest.raises(InvalidData) as error:
        plans.accept_plan(invoice, 2, locale="en", submission_key="k", today=TODAY)
    assert error.value.errors == {"invoice": "unavailable"}


def test_accepting_a_plan_adds_fee_and_interest_to_the_bill_once(invoice):
    plan, created = plans.accept_plan(invoice, 3, locale="nb", submission_key="once", today=TODAY)
    again, created_again = plans.accept_plan(invoice, 3, locale="nb", submission_key="once", today=TODAY)
    assert (created, created_again, again.id) == (True, False, plan.id)
    assert (plan.kind, plan.status, plan.fee, plan.interest, plan.paid_before) == (
        Kind.PLAN, Status.ACTIVE, 9900, 750, 0)
    assert [(i.seq, i.amount) for i in plan.instalments] == [(1, 16054), (2, 16052), (3, 16052)]
    assert invoice.total == TOTAL + 9900 + 750 == plan.amount
    fee, interest = invoice.lines[-2:]
    assert (fee.kind, fee.gross, fee.description) == ("other_fee", 9900, "Gebyr for nedbetalingsplan")
    assert (interest.kind, interest.gross) == ("interest", 750)
    assert events(invoice).count("plan_accepted") == 1
    assert [m.recipient for m in mails("plan_accepted")] == ["kari@example.test"]
    assert services.dunning_for(invoice, TODAY).reason == "plan"


def test_a_months_count_not_offered_is_refused(invoice):
    with pytest.raises(InvalidData) as error:
        plans.accept_plan(invoice, 5, locale="en", submission_key="k", today=TODAY)
    assert error.value.errors == {"months": "choose"}
    assert invoice.total == TOTAL


def test_each_instalment_is_what_the_pay_buttons_take_until_the_plan_is_paid(invoice):
    plan, _ = plans.accept_plan(invoice, 2, locale="en", submission_key="k", today=TODAY)
    first, second = plan.instalments
    found = services.self_service(invoice, TODAY)
    assert (found.payable_now, found.pay_reason) == (first.amount, "instalment")
    record_payment(invoice, first.amount, actor="test", paid_on=TODAY, method="card")
    found = services.self_service(invoice, TODAY)
    assert [s.state for s in found.progress] == ["paid", "due"]
    assert found.payable_now == second.amount  # the last one is the balance: no "instalment" wording needed
    record_payment(invoice, 1000, actor="test", paid_on=TODAY, method="card")
    assert services.self_service(invoice, TODAY).progress[1].left == second.amount - 1000


def test_a_missed_instalment_breaks_the_plan_after_grace_and_the_process_resumes(invoice):
    plan, _ = plans.accept_plan(invoice, 2, locale="en", submission_key="k", today=TODAY)
    due = plan.instalments[0].due_date
    report = daily.run_due(lambda _country: due + timedelta(days=3))  # the last day of grace
    assert plan.status == Status.ACTIVE and report.broken == 0
    report = daily.run_due(lambda _country: due + timedelta(days=4))
    assert (plan.status, report.broken) == (Status.BROKEN, 1)
    assert "plan_broken" in events(invoice)
    assert len(mails("plan_broken")) == 1
    assert services.dunning_for(invoice, due + timedelta(days=4)) == GO


def test_the_day_before_an_instalment_the_customer_gets_one_reminder(invoice):
    plan, _ = plans.accept_plan(invoice, 2, locale="en", submission_key="k", today=TODAY)
    eve = plan.instalments[0].due_date - timedelta(days=1)
    daily.run_due(lambda _country: eve)
    daily.run_due(lambda _country: eve)
    reminders = mails("instalment_due")
    assert len(reminders) == 1 and reminders[0].payload == {"resolution_id": plan.id, "seq": 1, "left": 23986}


def test_a_paid_plan_is_kept(invoice):
    plan, _ = plans.accept_plan(invoice, 2, locale="en", submission_key="k", today=TODAY)
    record_payment(invoice, invoice.balance, actor="test", paid_on=TODAY, method="card")
    assert daily.run_due(lambda _country: TODAY).kept == 1
    assert plan.status == Status.KEPT


# --- promises --------------------------------------------------------------------------------------


@pytest.mark.parametrize("offset", [0, -1, 15, 400])
def test_a_promised_date_outside_the_creditors_limit_is_refused(invoice, offset):
    with pytest.raises(InvalidData) as error:
        promises.make_promise(invoice, days(offset), locale="en", submission_key="k", today=TODAY)
    assert error.value.errors == {"date": "range"}
    assert services.live_resolutions(invoice.id) == []


def test_a_promise_pauses_until_its_date_and_grace_is_reminded_once_and_breaks_if_unpaid(invoice):
    promise, created = promises.make_promise(invoice, days(14), locale="de", submission_key="k", today=TODAY)
    assert created and (promise.status, promise.amount, promise.new_date) == (Status.ACTIVE, TOTAL, days(14))
    assert services.dunning_for(invoice, TODAY).until == days(17)
    assert [m.locale for m in mails("promise_confirmed")] == ["de"]
    for _run in range(2):
        daily.run_due(lambda _country: days(13))
    assert len(mails("promise_due")) == 1
    daily.run_due(lambda _country: days(17))
    assert promise.status == Status.ACTIVE
    daily.run_due(lambda _country: days(18))
    assert promise.status == Status.BROKEN
    assert "promise_broken" in events(invoice) and len(mails("promise_broken")) == 1
    assert services.dunning_for(invoice, days(18)) == GO


def test_a_promise_paid_in_time_is_kept(invoice):
    promise, _ = promises.make_promise(invoice, days(3), locale="en", submission_key="k", today=TODAY)
    record_payment(invoice, invoice.balance, actor="test", paid_on=TODAY, method="card")
    daily.run_due(lambda _country: days(30))
    assert promise.status == Status.KEPT


def test_one_promise_at_a_time(invoice):
    promises.make_promise(invoice, days(3), locale="en", submission_key="a", today=TODAY)
    with pytest.raises(InvalidData):
        promises.make_promise(invoice, days(4), locale="en", submission_key="b", today=TODAY)


# --- deferrals -------------------------------------------------------------------------------------


def test_a_deferral_within_the_rules_moves_the_due_date_and_adds_the_fee_shown(invoice):
    terms = deferrals.deferral_terms(invoice, days(19), TODAY)  # due in 5 days + 14
    assert (terms.within_rules, terms.fee) == (True, 5000)
    deferral, _ = deferrals.defer(invoice, days(19), locale="en", submission_key="k", today=TODAY)
    assert (deferral.status, deferral.old_date, invoice.due_date) == (Status.ACTIVE, days(5), days(19))
    assert invoice.lines[-1].gross == 5000 and invoice.lines[-1].description == "Fee for a later due date"
    assert invoice.total == TOTAL + 5000
    assert {"due_date_changed", "charge_added", "deferral_granted"} <= set(events(invoice))
    assert len(mails("deferral_granted")) == 1
    assert services.dunning_for(invoice, days(19)).reason == "deferral"
    assert services.dunning_for(invoice, days(20)) == GO


def test_a_date_beyond_the_limit_becomes_a_request_for_an_agent(invoice):
    assert deferrals.deferral_terms(invoice, days(20), TODAY).why_not == "beyond_limit"
    request, _ = deferrals.defer(invoice, days(20), locale="en", submission_key="k", today=TODAY)
    assert (request.status, invoice.due_date, invoice.total) == (Status.OPEN, days(5), TOTAL)
    assert services.dunning_for(invoice, TODAY).reason == "deferral_request"
    assert [m.recipient for m in mails("deferral_request_notification")] == ["help@example.test"]
    deferrals.decide_deferral(request, True, "Granted, good luck.", actor="agent:ola")
    assert (request.status, invoice.due_date, invoice.total) == (Status.ACTIVE, days(20), TOTAL + 5000)


def test_a_second_deferral_over_the_limit_is_a_request_and_a_declined_one_changes_nothing(invoice):
    first, _ = deferrals.defer(invoice, days(10), locale="en", submission_key="a", today=TODAY)
    daily.run_due(lambda _country: days(11))  # the deferral's date passes unpaid
    assert first.status == Status.BROKEN
    terms = deferrals.deferral_terms(invoice, days(15), days(11))
    assert (terms.within_rules, terms.why_not) == (False, "too_many")
    second, _ = deferrals.defer(invoice, days(15), locale="en", submission_key="b", today=days(11))
    deferrals.decide_deferral(second, False, None, actor="agent:ola")
    assert (second.status, invoice.due_date) == (Status.DECLINED, days(10))
    assert len(mails("deferral_declined")) == 1
    with pytest.raises(IllegalTransition):
        deferrals.decide_deferral(second, True, None, actor="agent:ola")


@pytest.mark.parametrize("offset", [5, 4, 96])
def test_a_new_due_date_not_after_the_current_one_or_too_far_is_refused(invoice, offset):
    with pytest.raises(InvalidData) as error:
        deferrals.defer(invoice, days(offset), locale="en", submission_key="k", today=TODAY)
    assert error.value.errors == {"date": "range"}


# --- disputes ---------------------------------------------------------------------------------------


def test_disputing_the_whole_bill_holds_all_of_it(invoice, tmp_path):
    dispute, _ = disputes.open_dispute(
        invoice, reason="not_received", message="Never got it", line_ids=None, upload=None,
        attachment_dir=str(tmp_path), locale="en", submission_key="k", today=TODAY,
    )
    assert (invoice.status, dispute.amount, dispute.line_ids) == (InvoiceStatus.DISPUTED, TOTAL, None)
    assert services.self_service(invoice, TODAY).payable_now is None
    assert services.dunning_for(invoice, TODAY).reason == "dispute"
    assert [m.recipient for m in mails()] == ["kari@example.test", "help@example.test"]


def test_disputing_lines_always_leaves_the_rest_payable_the_creditor_decides_only_whether_it_is_suggested(
        invoice, creditor, tmp_path):
    line = invoice.lines[1]
    disputes.open_dispute(
        invoice, reason="wrong_amount", message="Line 2 is wrong", line_ids=[line.id], upload=None,
        attachment_dir=str(tmp_path), locale="en", submission_key="k", today=TODAY,
    )
    found = services.self_service(invoice, TODAY)
    assert (found.payable_now, found.pay_reason, found.held, found.pay_suggested) == (
        TOTAL - line.gross, "undisputed", line.gross, True)
    creditor.dispute_partial_payable = False
    held = services.self_service(invoice, TODAY)
    assert (held.payable_now, held.pay_reason, held.held, held.pay_suggested) == (
        TOTAL - line.gross, "undisputed", line.gross, False)


def test_a_dispute_of_the_whole_bill_holds_it_all(invoice, tmp_path):
    disputes.open_dispute(
        invoice, reason="other", message="All wrong", line_ids=None, upload=None,
        attachment_dir=str(tmp_path), locale="en", submission_key="k", today=TODAY,
    )
    found = services.self_service(invoice, TODAY)
    assert (found.payable_now, found.pay_reason, found.held) == (None, None, TOTAL)


def test_a_dispute_of_every_line_is_a_dispute_of_the_bill(invoice, tmp_path):
    dispute, _ = disputes.open_dispute(
        invoice, reason="other", message="All wrong", line_ids=[line.id for line in invoice.lines], upload=None,
        attachment_dir=str(tmp_path), locale="en", submission_key="k", today=TODAY,
    )
    assert dispute.line_ids is None and dispute.amount == TOTAL


@pytest.mark.parametrize(("fields", "errors"), [
    ({"reason": "bogus"}, {"reason": "choose"}),
    ({"message": "  "}, {"message": "required"}),
    ({"message": "x" * 4001}, {"message": "too_long"}),
    ({"line_ids": []}, {"lines": "choose"}),
    ({"line_ids": [999999]}, {"lines": "choose"}),
    ({"reason": "already_paid"}, {"attachment": "proof"}),
])
def test_a_dispute_with_bad_input_changes_nothing(invoice, tmp_path, fields, errors):
    arguments = {"reason": "other", "message": "Wrong", "line_ids": None, "upload": None,
                 "attachment_dir": str(tmp_path), "locale": "en", "submission_key": "k", "today": TODAY} | fields
    with pytest.raises(InvalidData) as error:
        disputes.open_dispute(invoice, **arguments)
    assert error.value.errors == errors
    assert invoice.status == InvoiceStatus.OPEN and services.resolutions_for(invoice.id) == [] and mails() == []


def test_already_paid_with_proof_stores_the_file_outside_static(invoice, tmp_path):
    upload = Upload(filename="kvittering.pdf", mime="application/pdf", content=PDF)
    dispute, _ = disputes.open_dispute(
        invoice, reason="already_paid", message="Paid on the 1st", line_ids=None, upload=upload,
        attachment_dir=str(tmp_path), locale="en", submission_key="k", today=TODAY,
    )
    assert dispute.attachment.mime == "application/pdf"
    assert (tmp_path / str(invoice.creditor_id) / dispute.attachment.storage_key).read_bytes() == PDF


def test_a_paid_invoice_can_be_disputed_but_a_cancelled_one_cannot(invoice, tmp_path):
    record_payment(invoice, invoice.total, actor="test", paid_on=TODAY, method="card")
    found, created = disputes.open_dispute(invoice, reason="other", message="?", line_ids=None, upload=None,
                                           attachment_dir=str(tmp_path), locale="en", submission_key="k", today=TODAY)
    assert created and invoice.status == InvoiceStatus.PAID and found.amount == invoice.total
    other = make_invoice(invoice.creditor)
    other.status = InvoiceStatus.CANCELLED
    with pytest.raises(InvalidData) as error:
        disputes.open_dispute(other, reason="other", message="?", line_ids=None, upload=None,
                              attachment_dir=str(tmp_path), locale="en", submission_key="k2", today=TODAY)
    assert error.value.errors == {"invoice": "unavailable"}


def test_a_rejected_dispute_makes_the_bill_payable_and_the_process_resumes(invoice, tmp_path):
    dispute, _ = disputes.open_dispute(invoice, reason="other", message="?", line_ids=None, upload=None,
                                       attachment_dir=str(tmp_path), locale="en", submission_key="k", today=TODAY)
    with pytest.raises(InvalidData):
        disputes.answer_dispute(dispute, Status.REJECTED, " ", actor="agent:ola")
    disputes.answer_dispute(dispute, Status.REJECTED, "The meter reading is right.", actor="agent:ola")
    assert (dispute.status, invoice.status, dispute.answer) == (
        Status.REJECTED, InvoiceStatus.OPEN, "The meter reading is right.")
    assert services.dunning_for(invoice, TODAY) == GO
    assert len(mails("dispute_answered")) == 1
    with pytest.raises(IllegalTransition):
        disputes.answer_dispute(dispute, Status.UPHELD, "again", actor="agent:ola")


def test_an_upheld_dispute_of_the_whole_unpaid_bill_cancels_it_and_of_lines_credits_them(invoice, creditor, tmp_path):
    dispute, _ = disputes.open_dispute(invoice, reason="other", message="?", line_ids=None, upload=None,
                                       attachment_dir=str(tmp_path), locale="en", submission_key="k", today=TODAY)
    disputes.answer_dispute(dispute, Status.UPHELD, "Sorry, our mistake.", actor="agent:ola")
    assert invoice.status == InvoiceStatus.CANCELLED
    from tests.factories import make_invoice

    other = make_invoice(creditor, lines=2)
    part, _ = disputes.open_dispute(other, reason="other", message="?", line_ids=[other.lines[0].id], upload=None,
                                    attachment_dir=str(tmp_path), locale="en", submission_key="k", today=TODAY)
    line_1, line_2 = other.lines
    disputes.answer_dispute(part, Status.UPHELD, "We have credited line 1.", actor="agent:ola")
    # the disputed line is credited in full, the rest stands, and the process resumes
    assert (other.status, other.total, other.credited) == (InvoiceStatus.OPEN, line_2.gross, line_1.gross)
    assert services.dunning_for(other, TODAY).may_remind


def test_what_the_bill_page_offers_follows_what_is_arranged(invoice, tmp_path):
    assert services.self_service(invoice, TODAY).can == {"dispute": True, "promise": True, "deferral": True,
                                                         "plan": True, "plan_request": True}
    promises.make_promise(invoice, days(3), locale="en", submission_key="k", today=TODAY)
    assert services.self_service(invoice, TODAY).can == {"dispute": True, "promise": False, "deferral": False,
                                                         "plan": False, "plan_request": False}
