"""The hand-off asks the dunning plan and the law: a bill the portal reminds goes to debt collection only
after its collection warning's deadline (Norway: the inkassovarsel's 14 days), never with a question of
the customer waiting for an answer, and the case file lists the notices sent; a creditor that reminds
its customers itself keeps the reported final reminder."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import jsonschema
import pytest
from sqlalchemy import select

from app.debt_collection.models import Case
from app.debt_collection.partners import policy_of
from app.debt_collection.services import check, reason_words
from app.debt_collection.worker import run as hand_off_run
from app.dunning import services, worker
from app.extensions import db
from app.support.services import open_request
from tests.functional.collection_helpers import creditor_with_policy, overdue, partner_for
from tests.unit.dunning.conftest import TODAY, bill

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "docs" / "case-file-v1.schema.json").read_text())
WARNING_ON, DEADLINE = date(2027, 1, 12), date(2027, 1, 26)  # the inkassovarsel of a bill due 11 December 2026


@pytest.fixture
def norway(app, session):
    partner = partner_for(app, "http://127.0.0.1:9/cases")
    creditor = creditor_with_policy(app, partner.partner)
    with app.test_request_context():
        services.save_plan(creditor, services.shipped_plan("NO"), actor="test", today=TODAY)
        invoice = bill(creditor, services.default_plan(creditor.id), due=date(2026, 12, 11))
        db.session.commit()
    return creditor, invoice


def walk(creditor, *days: date) -> None:
    for day in days:
        worker.run(on=day, slug=creditor.slug)
    db.session.expire_all()


def reasons(invoice, day: date, **options) -> tuple[str, ...]:
    return check(invoice, policy_of(invoice.creditor_id), day, **options).reasons


def test_the_hand_off_waits_for_the_warnings_deadline_then_lists_the_notices(app, norway):
    creditor, invoice = norway
    walk(creditor, TODAY, date(2026, 12, 28))  # the nudge, the reminder (final reminders: none)
    assert reasons(invoice, date(2027, 1, 11)) == ("no_collection_warning",)
    walk(creditor, WARNING_ON)  # the inkassovarsel, by letter, 14 days
    assert services.hand_off_not_before(invoice.id) == date(2027, 1, 27)
    assert reasons(invoice, DEADLINE) == ("warning_deadline:2027-01-27",)
    assert reasons(invoice, DEADLINE, manual=True) == ("warning_deadline:2027-01-27",)  # agents too
    with app.test_request_context("/", headers={"Accept-Language": "en"}):
        assert "not before 27 January 2027" in reason_words("warning_deadline:2027-01-27")
    # the policy's ten days after the final reminder do not apply: the warning's deadline replaces them
    assert reasons(invoice, date(2027, 1, 27)) == ()

    with app.app_context():
        early = hand_off_run(lambda _country: DEADLINE, on=DEADLINE)
        report = hand_off_run(lambda _country: date(2027, 1, 27), on=date(2027, 1, 27))
    assert early.skipped == {invoice.number: ("warning_deadline:2027-01-27",)} and not early.handed_off
    assert [number for number, _case in report.handed_off] == [invoice.number]
    case = db.session.scalar(select(Case).where(Case.invoice_id == invoice.id))
    jsonschema.validate(case.case_file, SCHEMA)
    notices = case.case_file["notices"]
    assert case.case_file["schema_version"] == "1.2"
    assert [(n["position"], n["kind"], n["channel"], n["fee"], n["deadline"]) for n in notices] == [
        (1, "pre_due", "sms", 0, None), (2, "reminder", "sms", 3500, "2027-01-11"),
        (3, "collection_warning", "letter", 3500, "2027-01-26")]
    assert notices[2]["plan"] == {"name": "standard", "version": 1, "jurisdiction": "NO"}


def test_never_with_a_question_of_the_customer_waiting_for_an_answer(app, norway):
    creditor, invoice = norway
    walk(creditor, TODAY, date(2026, 12, 28), WARNING_ON)
    with app.test_request_context():
        open_request(invoice, topic="bill_question", message="Why is it so much higher than last year?",
                     contact_method="email", contact_email=None, contact_phone=None, callback_date=None,
                     callback_window=None, upload=None, locale="nb", submission_key="q-1",
                     attachment_dir=app.config["ATTACHMENT_DIR"], today=date(2027, 1, 20))
        db.session.commit()
    assert reasons(invoice, date(2027, 2, 1)) == ("open_question",)
    assert reasons(invoice, date(2027, 2, 1), manual=True) == ("open_question",)
    with app.app_context():
        report = hand_off_run(lambda _country: date(2027, 2, 1), on=date(2027, 2, 1))
    assert not report.handed_off and db.session.scalar(select(Case).where(Case.invoice_id == invoice.id)) is None


def test_an_agent_in_norway_never_hands_off_before_the_inkassovarsel(app, norway):
    creditor, invoice = norway
    walk(creditor, TODAY, date(2026, 12, 28))
    assert reasons(invoice, date(2027, 1, 11), manual=True) == ("no_collection_warning",)


def test_a_creditor_that_reminds_its_customers_itself_keeps_the_final_reminder(app, session):
    partner = partner_for(app, "http://127.0.0.1:9/cases")
    creditor = creditor_with_policy(app, partner.partner)
    reported = overdue(app, creditor)  # a final reminder reported 20 days ago
    recent = overdue(app, creditor, final_days_ago=3)
    today = date.today()
    assert reasons(reported, today) == ()
    assert reasons(recent, today) == ("final_reminder_too_recent",)
    # excluded from the portal's run while the creditor has plans: its own reminders count
    with app.test_request_context():
        services.save_plan(creditor, services.shipped_plan("NO"), actor="test", today=TODAY)
        services.exclude_invoice(reported, True, actor="test", today=today)
        db.session.commit()
    assert reasons(reported, today) == ()
