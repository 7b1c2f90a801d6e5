"""Each event of the catalogue, recorded by the real action that causes it, once, in its transaction, with
its documented data (amounts in minor units, no customer's name or contact values): payments (succeeded,
failed, refunded), the customer's choices (disputes, promises, deferrals, plans, messages), contact
details, reminders (the creditor's own reported through the API, the portal's run, one not delivered),
and debt collection (handed off, recalled, closed). A rolled-back action leaves no event."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from app.debt_collection.models import Case
from app.debt_collection.services import recall
from app.debt_collection.worker import run
from app.events.catalogue import DATA, TYPES
from app.events.models import CreditorEvent
from app.extensions import db
from app.models import utcnow
from app.outbox.dispatcher import run_once
from app.payments.gateways.base import GatewayStatus
from app.payments.models import PaymentStatus
from app.payments.refunds import refund_payment
from app.payments.services import apply_status, new_attempt, settle
from app.resolutions import daily, deferrals, disputes, plans, promises
from app.support import services as support
from tests.factories import invoice_payload, make_creditor, make_invoice
from tests.functional.collection_helpers import creditor_with_policy, overdue, partner_for, today_for
from tests.functional.test_api import API, api_creditor, create
from tests.functional.test_self_service_fixes import one_line_bill
from tests.support.bankfiles import camt053, credit
from tests.support.twilio_server import TwilioServer
from tests.unit.dunning.conftest import TODAY, bill, creditor_with_plan
from tests.unit.dunning.conftest import run as dunning_run

DOCUMENTED = {"invoice", "customer"}


def events_of(creditor_id: int) -> list[CreditorEvent]:
    return list(db.session.scalars(select(CreditorEvent).where(CreditorEvent.creditor_id == creditor_id)
                                   .order_by(CreditorEvent.id)))


def types_of(creditor_id: int) -> list[str]:
    return [e.type for e in events_of(creditor_id)]


def one(creditor_id: int, event_type: str) -> dict:
    (found,) = [e for e in events_of(creditor_id) if e.type == event_type]
    data = found.payload
    (own,) = DATA[event_type]
    assert set(data) <= DOCUMENTED | {own} and set(data[own]) == set(DATA[event_type][own]), data
    return data


@pytest.fixture
def ctx(app, session):
    with app.test_request_context():
        yield


def test_payments_succeeded_failed_and_refunded(ctx):
    creditor = make_creditor("NO")
    invoice = one_line_bill(creditor, 50000)
    attempt = new_attempt(invoice, "simulator", 50000)
    apply_status(attempt, GatewayStatus(provider_ref="sim_1", status=PaymentStatus.FAILED,
                                        failure_reason="card_declined"), actor="test")
    failed = one(creditor.id, "payment.failed")
    assert failed["payment"] == {"amount": 50000, "currency": "NOK", "provider": "simulator",
                                 "failure_reason": "card_declined"}
    payment = settle(invoice.id, provider="simulator", payment_id="pay_1", amount=52000, currency="NOK",
                     method="card", received_at=utcnow(), actor="test")
    paid = one(creditor.id, "payment.succeeded")
    assert paid["payment"]["amount"] == 52000 and paid["payment"]["reference"] == "pay_1"
    assert paid["invoice"]["status"] == "paid" and paid["invoice"]["balance"] == -2000
    assert paid["invoice"]["number"] == invoice.number and paid["customer"]["external_ref"]
    refund_payment(payment, 2000, channel="bank_transfer", key="r1", actor="agent:1")
    refunded = one(creditor.id, "payment.refunded")
    assert refunded["refund"]["amount"] == 2000 and refunded["refund"]["payment_reference"] == "pay_1"
    assert types_of(creditor.id) == ["payment.failed", "payment.succeeded", "payment.refunded"]
    assert invoice.customer.name not in str([e.payload for e in events_of(creditor.id)])


def test_payments_booked_from_a_bank_file(app, session, tmp_path):
    creditor = make_creditor("NO", bank_account_no="15032080127", slug="fjordbank")
    paid = make_invoice(creditor)
    part = make_invoice(creditor)
    db.session.commit()
    path = tmp_path / "statement.xml"
    path.write_bytes(camt053("15032080127", [credit(paid.balance, paid.payment_reference, ref="T1"),
                                             credit(1000, part.payment_reference, ref="T2")]))
    result = app.test_cli_runner().invoke(args=["bank", "import", str(path)])
    assert result.exit_code == 0, result.output
    booked = {e.payload["invoice"]["number"]: e.payload for e in events_of(creditor.id)}
    assert set(booked) == {paid.number, part.number}
    assert all(e.type == "payment.succeeded" for e in events_of(creditor.id))
    assert booked[paid.number]["invoice"]["status"] == "paid" and booked[paid.number]["invoice"]["balance"] == 0
    assert booked[part.number]["payment"]["amount"] == 1000
    assert booked[part.number]["invoice"]["status"] == "partially_paid"
    for invoice in (paid, part):  # the settlement's own state of each invoice: what a read of it would say
        db.session.refresh(invoice)
        assert booked[invoice.number]["invoice"] == {
            "number": invoice.number, "currency": invoice.currency, "total": invoice.total,
            "amount_paid": invoice.amount_paid, "balance": invoice.balance, "status": invoice.status,
            "due_date": invoice.due_date.isoformat()}
        assert booked[invoice.number]["customer"] == {"external_ref": invoice.customer.external_ref}


def test_a_dispute_opened_and_resolved(ctx, tmp_path):
    creditor = make_creditor("NO")
    invoice = one_line_bill(creditor, 50000)
    today = today_for("NO")
    dispute, _ = disputes.open_dispute(invoice, reason="wrong_amount", message="Too high, says Kari", line_ids=None,
                                       upload=None, attachment_dir=str(tmp_path), locale="nb", submission_key="d",
                                       today=today)
    opened = one(creditor.id, "dispute.opened")
    assert opened["dispute"] == {"reference": dispute.reference, "amount": 50000}
    assert opened["invoice"]["status"] == "disputed" and "Kari" not in str(opened)
    disputes.answer_dispute(dispute, "rejected", "The reading is right.", actor="agent:1")
    assert one(creditor.id, "dispute.resolved")["dispute"] == {"reference": dispute.reference, "outcome": "rejected"}


def test_a_promise_created_and_broken(ctx):
    creditor = make_creditor("NO")
    invoice = one_line_bill(creditor, 50000, due_in=-3)
    today = today_for("NO")
    promise, _ = promises.make_promise(invoice, today + timedelta(days=3), locale="nb", submission_key="p",
                                       today=today)
    created = one(creditor.id, "promise.created")
    assert created["promise"]["reference"] == promise.reference
    assert created["promise"]["date"] == (today + timedelta(days=3)).isoformat()
    later = today + timedelta(days=3 + creditor.grace_days + 1)
    daily.run_due(lambda _country: later, creditor_id=creditor.id)
    assert one(creditor.id, "promise.broken")["promise"] == {"reference": promise.reference}


def test_a_deferral_granted_within_the_rules(ctx):
    creditor = make_creditor("NO")
    invoice = one_line_bill(creditor, 50000, due_in=2)
    today = today_for("NO")
    new_date = invoice.due_date + timedelta(days=7)
    deferral, _ = deferrals.defer(invoice, new_date, locale="nb", submission_key="d", today=today)
    granted = one(creditor.id, "deferral.granted")
    assert granted["deferral"]["reference"] == deferral.reference
    assert granted["deferral"]["new_due_date"] == new_date.isoformat()


def test_a_plan_created_and_broken(ctx):
    creditor = make_creditor("NO")
    invoice = one_line_bill(creditor, 300000, due_in=-9)
    today = today_for("NO")
    plan, _ = plans.accept_plan(invoice, 3, locale="en", submission_key="k", today=today)
    created = one(creditor.id, "plan.created")
    assert created["plan"]["reference"] == plan.reference and created["plan"]["months"] == 3
    assert isinstance(created["plan"]["total"], int)
    first = plan.instalments[0].due_date
    later = first + timedelta(days=creditor.grace_days + 30)
    daily.run_due(lambda _country: later, creditor_id=creditor.id)
    assert one(creditor.id, "plan.broken")["plan"] == {"reference": plan.reference}


def test_a_message_received_new_and_in_a_thread(ctx, tmp_path):
    creditor = make_creditor("NO")
    invoice = one_line_bill(creditor, 50000)
    request, _ = support.open_request(
        invoice, topic="bill_question", message="Why so much?", contact_method="email",
        contact_email="kari@example.test", contact_phone=None, callback_date=None, callback_window=None, upload=None,
        locale="nb", submission_key="s", attachment_dir=str(tmp_path), today=today_for("NO"))
    data = one(creditor.id, "message.received")
    assert data["message"] == {"reference": request.reference, "topic": "bill_question", "new_request": True}
    assert "kari@" not in str(data) and "Why" not in str(data)


def test_contact_details_changed_names_the_fields_not_their_values(client, session):
    creditor, headers = api_creditor("NO")
    assert create(client, headers, _payload("C-77")).status_code == 201
    answer = client.put(f"{API}/customers/C-77/contact", json={"email": "new@example.test"}, headers=headers)
    assert answer.status_code == 200, answer.json
    data = one(creditor.id, "contact_details.changed")
    assert data == {"customer": {"external_ref": "C-77"}, "contact": {"fields": ["email"]}}


def test_a_reminder_the_creditor_sent_reported_through_the_api(client, session):
    creditor, headers = api_creditor("NO")
    assert create(client, headers, _payload("C-78", number="R-1", due_days_ago=5)).status_code == 201
    answer = client.post(f"{API}/invoices/R-1/reminders", json={"channel": "letter", "final": False},
                         headers=headers)
    assert answer.status_code == 201, answer.json
    sent = one(creditor.id, "reminder.sent")
    assert sent["reminder"]["channel"] == "letter" and sent["reminder"]["final"] is False
    assert sent["invoice"]["number"] == "R-1"
    # refused (a bad channel): nothing recorded, nothing invented
    assert client.post(f"{API}/invoices/R-1/reminders", json={"channel": "fax"}, headers=headers).status_code == 422
    assert types_of(creditor.id) == ["reminder.sent"]


BASE = "https://pay.example.test"


@pytest.fixture
def twilio(app, client, monkeypatch):
    """The local SMS server; its status callbacks reach the app through the test client."""
    with TwilioServer() as server:
        for key, value in server.config(sender="+15005550006").items():
            monkeypatch.setitem(app.config, key, value)

        def through_the_app(url: str, params: dict, headers: dict) -> int:
            return client.post(url.removeprefix(BASE), data=params, headers=headers, base_url=BASE).status_code

        server.transport = through_the_app
        yield server


def test_the_portals_reminder_sent_then_not_delivered(ctx, twilio, smtp):
    creditor, plan = creditor_with_plan("NO", "NO")
    invoice = bill(creditor, plan, due=TODAY - timedelta(days=14))
    dunning_run(creditor, TODAY)
    sent = one(creditor.id, "reminder.sent")
    assert sent["reminder"]["channel"] == "sms" and sent["invoice"]["number"] == invoice.number
    twilio.undelivered.add("+4791234567")
    assert run_once().delivered == 1
    assert twilio.send_callbacks() == [204, 204]  # "sent", then "undelivered"
    failed = one(creditor.id, "reminder.failed")
    assert failed["reminder"] == {"channel": "sms", "reason": "not_delivered"}
    assert "+4791234567" not in str([e.payload for e in events_of(creditor.id)])


def test_collection_handed_off_recalled_and_closed(app, session):
    made = partner_for(app, "http://127.0.0.1:9/cases")
    creditor = creditor_with_policy(app, made.partner)
    invoice = overdue(app, creditor)
    with app.app_context():
        run(today_for)
    handed = one(creditor.id, "collection.handed_off")
    case = db.session.scalar(select(Case).where(Case.invoice_id == invoice.id))
    assert handed["case"]["id"] == case.public_id and handed["case"]["partner"] == "Nord Collect AS"
    assert handed["invoice"]["status"] == "in_collection" and handed["case"]["currency"] == "NOK"
    with app.test_request_context():
        recall(case, actor="agent:1", reason="paid to us")
        db.session.commit()
    assert one(creditor.id, "collection.recalled")["case"]["id"] == case.public_id

    second = overdue(app, creditor)
    with app.app_context():
        run(today_for)
    case2 = db.session.scalar(select(Case).where(Case.invoice_id == second.id))
    answer = app.test_client().post(f"/api/partner/v1/cases/{case2.public_id}/events",
                                    json={"id": "c1", "type": "closed_uncollectable"},
                                    headers={"Authorization": f"Bearer {made.api_key}"})
    assert answer.status_code == 201, answer.json
    closed = one(creditor.id, "collection.closed")
    assert closed["case"] == {"id": case2.public_id, "outcome": "closed_uncollectable"}


def test_a_rolled_back_action_leaves_no_event(ctx, tmp_path):
    creditor = make_creditor("NO")
    invoice = one_line_bill(creditor, 50000)
    db.session.commit()
    savepoint = db.session.begin_nested()
    disputes.open_dispute(invoice, reason="wrong_amount", message="x", line_ids=None, upload=None,
                          attachment_dir=str(tmp_path), locale="nb", submission_key="d", today=today_for("NO"))
    assert types_of(creditor.id) == ["dispute.opened"]
    savepoint.rollback()
    assert types_of(creditor.id) == []


def test_the_catalogue_is_the_issues_list():
    assert set(TYPES) == {
        "invoice.opened", "payment.succeeded", "payment.failed", "payment.refunded", "dispute.opened",
        "dispute.resolved", "promise.created", "promise.broken", "deferral.granted", "plan.created", "plan.broken",
        "message.received", "contact_details.changed", "reminder.sent", "reminder.failed", "collection.handed_off",
        "collection.recalled", "collection.closed", "lead.created"}


def _payload(ref: str, number: str = "E-1", due_days_ago: int = 0) -> dict:
    payload = invoice_payload("NOK", number=number)
    if due_days_ago:
        today = today_for("NO")
        payload.update(issue_date=(today - timedelta(days=due_days_ago + 14)).isoformat(),
                       due_date=(today - timedelta(days=due_days_ago)).isoformat())
    payload["customer"] = dict(payload["customer"], external_ref=ref)
    return payload
