"""The reminder dialogue in the back office: a bill's panel names its plan and jurisdiction ("No rules"
as such) and its next step; the customer's timeline shows each message as sent (channel, the words as
rendered, status) and each step; agents postpone the next step, supervisors skip it, each with a reason
and audited; a plain agent cannot skip."""

from __future__ import annotations

from datetime import time, timedelta

import pytest
from sqlalchemy import select

from app.backoffice.services import grant_role
from app.dunning import services, worker
from app.dunning.models import Message, Notice, NoticeStatus
from app.dunning.settings import save_settings
from app.extensions import db
from app.outbox.base import render
from app.outbox.models import OutboxMessage
from tests.factories import creditor_today, make_creditor
from tests.functional.agents import EN, actions, enrol, make_agent, post
from tests.functional.test_dunning_bill_page import owed, words
from tests.unit.dunning.conftest import TODAY


@pytest.fixture
def norway(app, session):
    creditor = make_creditor("NO", default_locale="en")
    save_settings(creditor, languages=["en", "nb", "de"])
    plan = services.save_plan(creditor, services.shipped_plan("NO"), actor="test", today=creditor_today("NO"))
    db.session.commit()
    return creditor, plan


def signed_in(app, client, creditor, role):
    agent = make_agent(app, creditor, f"{role}@example.test", role)
    enrol(client, f"{role}@example.test")
    return agent


def test_the_panel_names_the_plan_its_jurisdiction_and_the_next_step(app, client, norway):
    creditor, plan = norway
    today = creditor_today("NO")
    invoice = owed(creditor, plan, due=today + timedelta(days=3))
    irish = make_creditor("IE")
    save_settings(irish, languages=["en", "nb", "de"])
    services.save_plan(irish, services.shipped_plan("none"), actor="test", today=today)
    unplanned = owed(irish, due=today + timedelta(days=3))
    db.session.commit()
    admin = signed_in(app, client, creditor, "admin")
    grant_role(admin, irish, "admin")
    db.session.commit()
    page = words(client.get(f"/backoffice/invoices/{invoice.id}", headers=EN).text)
    assert "Plan: standard, version 1 · Norway" in page
    assert "Next: step 1, Payment nudge before the due date" in page and "by SMS" in page
    other = words(client.get(f"/backoffice/invoices/{unplanned.id}", headers=EN).text)
    assert "No plan yet: the next run gives it standard, version 1. · No rules" in other


def test_the_timeline_shows_each_message_as_sent_and_each_step(app, client, norway):
    creditor, plan = norway
    invoice = owed(creditor, plan, due=TODAY - timedelta(days=20), phone=None)
    services.reschedule(invoice, TODAY)
    db.session.commit()
    worker.run(on=TODAY, slug=creditor.slug)  # the nudge's day passed: the reminder is next
    worker.run(on=TODAY, at=time(12, 0), slug=creditor.slug)
    db.session.expire_all()
    message = db.session.scalar(select(Message).where(Message.customer_id == invoice.customer_id))
    assert message.channel == "email" and message.body is None  # its words are written when it goes out
    signed_in(app, client, creditor, "agent")
    page = words(client.get(f"/backoffice/customers/{invoice.customer_id}", headers=EN).text)
    assert "Payment reminder by e-mail" in page and "status: queued" in page
    assert "The text is written when the message goes out." in page
    with app.test_request_context():
        render(db.session.get(OutboxMessage, message.outbox_message_id))
        db.session.commit()
    page = words(client.get(f"/backoffice/customers/{invoice.customer_id}", headers=EN).text)
    assert "Payment reminder sent (step 2 of plan standard v1)" in page and "to pay by 22 December 2026" in page
    assert "Payment reminder by e-mail" in page and "status: sent" in page and "c-1@example.test" in page
    assert f"Reminder: invoice {invoice.number}" in page  # the words as sent
    assert "[link]" in page and "/l/" not in page  # never the link's token


def test_an_agent_postpones_with_a_reason_and_cannot_skip(app, client, norway):
    creditor, plan = norway
    today = creditor_today("NO")
    invoice = owed(creditor, plan, due=today + timedelta(days=10))
    db.session.commit()
    agent = signed_in(app, client, creditor, "agent")
    page = f"/backoffice/invoices/{invoice.id}"
    assert "Skip the next step" not in client.get(page, headers=EN).text
    assert post(client, f"{page}/dunning/skip", {"reason": "x"}, page=page).status_code == 403

    was = invoice.dunning_next_on
    too_early = post(client, f"{page}/dunning/postpone", {"until": was.isoformat(), "reason": "abroad"}, page=page)
    assert too_early.status_code == 422 and "Please check the number or date." in too_early.text
    no_reason = post(client, f"{page}/dunning/postpone", {"until": (was + timedelta(days=5)).isoformat()}, page=page)
    assert no_reason.status_code == 422 and invoice.dunning_next_on == was
    done = post(client, f"{page}/dunning/postpone", {"until": (was + timedelta(days=5)).isoformat(),
                                                     "reason": "Abroad until then"}, page=page)
    assert done.status_code == 303 and invoice.dunning_next_on == was + timedelta(days=5)
    assert "dunning_step_postponed" in actions(agent)



def test_a_supervisor_skips_the_next_step(app, client, norway):
    creditor, plan = norway
    today = creditor_today("NO")
    invoice = owed(creditor, plan, due=today + timedelta(days=10))
    db.session.commit()
    supervisor = signed_in(app, client, creditor, "supervisor")
    page = f"/backoffice/invoices/{invoice.id}"
    assert "Skip step 1" in client.get(page, headers=EN).text
    assert post(client, f"{page}/dunning/skip", {"reason": ""}, page=page).status_code == 422
    done = post(client, f"{page}/dunning/skip", {"reason": "Asked us not to text her"}, page=page)
    assert done.status_code == 303
    notice = db.session.scalar(select(Notice).where(Notice.invoice_id == invoice.id))
    assert (notice.position, notice.status, notice.fee, notice.message_id) == (1, NoticeStatus.SKIPPED, 0, None)
    assert invoice.dunning_next_position == 2 and "dunning_step_skipped" in actions(supervisor)
    shown = words(client.get(page, headers=EN).text)
    assert "1. Payment nudge before the due date" in shown and "skipped" in shown
    timeline = words(client.get(f"/backoffice/customers/{invoice.customer_id}", headers=EN).text)
    assert "Step 1 skipped: Payment nudge before the due date" in timeline and "Asked us not to text her" in timeline
