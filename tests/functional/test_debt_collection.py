"""The hand-off to debt collection end to end, against a real receiver on 127.0.0.1 that verifies
the Standard Webhooks signature: which bills go (and which the pause rule keeps), the case file,
delivery through the outbox with its failures (down, 500, 429 Retry-After, 410, the deadline),
the partner API (acknowledge, payments that settle the bill, closing, recall), the bill page at
each stage, and the CLI."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import jsonschema
import pytest
from sqlalchemy import func, select

from app.billing.models import InvoiceStatus
from app.debt_collection.models import Case, CaseStatus
from app.debt_collection.partners import finish_rotation, policy_of, rotate_secret, set_enabled
from app.debt_collection.services import NotEligible, check, hand_off, recall
from app.debt_collection.worker import run
from app.extensions import db
from app.models import utcnow
from app.outbox.models import OutboxMessage, OutboxStatus
from app.outbox.services import replay
from app.payments.models import Payment
from app.resolutions import disputes, promises
from tests.functional.collection_helpers import creditor_with_policy, deliver, overdue, partner_for, today_for
from tests.functional.helpers import open_bill
from tests.support.partner_receiver import PartnerReceiver

SCHEMA = json.loads((Path(__file__).parents[2] / "docs" / "case-file-v1.schema.json").read_text())
EN = {"Accept-Language": "en"}


@pytest.fixture
def receiver():
    with PartnerReceiver(secrets=[]) as server:
        yield server


@pytest.fixture
def partner(app, session, receiver):
    made = partner_for(app, receiver.url)
    receiver.secrets.append(made.signing_secret)
    return made


@pytest.fixture
def creditor(app, partner):
    return creditor_with_policy(app, partner.partner)


def api(client, partner, method, path, body=None):
    return client.open(f"/api/partner/v1{path}", method=method, json=body,
                       headers={"Authorization": f"Bearer {partner.api_key}"})


def webhooks() -> list[OutboxMessage]:
    return list(db.session.scalars(select(OutboxMessage).where(OutboxMessage.channel == "webhook")
                                   .order_by(OutboxMessage.id)))


# --- which bills go ------------------------------------------------------------------------------------


def test_the_policy_decides_which_bills_go_and_the_pause_rule_keeps_the_others(app, creditor, tmp_path):
    ready = overdue(app, creditor)
    too_recent = overdue(app, creditor, final_days_ago=3)
    no_final = overdue(app, creditor, final_days_ago=None)
    small = overdue(app, creditor, lines=1)
    small.total = small.amount_paid + 5000  # below the 100.00 minimum
    not_late = overdue(app, creditor, days_overdue=7, final_days_ago=3)
    promised = overdue(app, creditor)
    with app.test_request_context():
        promises.make_promise(promised, today_for("NO") + timedelta(days=5), locale="nb", submission_key="p",
                                 today=today_for("NO"))
        db.session.commit()
    rules = policy_of(creditor.id)
    decide = lambda invoice: check(invoice, rules, today_for("NO")).reasons  # noqa: E731
    assert decide(ready) == ()
    assert decide(too_recent) == ("final_reminder_too_recent",)
    assert decide(no_final) == ("no_final_reminder",)
    assert decide(small) == ("below_minimum",)
    assert set(decide(not_late)) == {"not_overdue_enough", "final_reminder_too_recent"}
    assert decide(promised) == ("paused:promise",)
    with app.app_context():
        report = run(today_for, dry_run=True)
    assert report.eligible == [ready.number] and ready.status == InvoiceStatus.OPEN and not webhooks()


def test_a_run_hands_off_once_and_a_second_run_changes_nothing(app, creditor):
    invoice = overdue(app, creditor)
    with app.app_context():
        first = run(today_for)
        second = run(today_for)
    assert [number for number, _case in first.handed_off] == [invoice.number] and not second.handed_off
    case = db.session.scalar(select(Case).where(Case.invoice_id == invoice.id))
    assert invoice.status == InvoiceStatus.IN_COLLECTION and case.status == CaseStatus.SENT
    assert case.principal + case.fees + case.interest == invoice.balance
    (message,) = webhooks()
    assert (message.kind, message.recipient) == ("collection.case_created", "nordcollect")
    assert [e.kind for e in invoice.events][-2:] == ["status_changed", "handed_off"]


def test_a_dispute_opened_after_the_bill_became_eligible_stops_the_hand_off(app, creditor, tmp_path):
    invoice = overdue(app, creditor)
    with app.app_context():
        assert run(today_for, dry_run=True).eligible == [invoice.number]
    with app.test_request_context():  # the customer disputes between the listing and the hand-off
        disputes.open_dispute(invoice, reason="wrong_amount", message="No!",
                                 line_ids=None, upload=None, attachment_dir=str(tmp_path), locale="nb",
                                 submission_key="d", today=today_for("NO"))
        db.session.commit()
    with pytest.raises(NotEligible) as kept, app.app_context():
        hand_off(invoice.id, actor="scheduler", today_for=today_for)
    assert "status:disputed" in kept.value.reasons
    assert invoice.status == InvoiceStatus.DISPUTED and not db.session.scalars(select(Case)).all() and not webhooks()


# --- the case file and its delivery ------------------------------------------------------------------------


def test_the_case_file_is_complete_minimal_and_valid(app, client, creditor, receiver, tmp_path):
    invoice = overdue(app, creditor)
    with app.test_request_context():  # a broken promise and a rejected dispute belong in the story
        promise, _ = promises.make_promise(invoice, today_for("NO") + timedelta(days=3), locale="nb",
                                              submission_key="p", today=today_for("NO"))
        promise.status = "broken"
        dispute, _ = disputes.open_dispute(invoice, reason="wrong_amount", message="Too high", line_ids=None,
                                              upload=None, attachment_dir=str(tmp_path), locale="nb",
                                              submission_key="d", today=today_for("NO"))
        disputes.answer_dispute(dispute, "rejected", "The reading is right.", actor="agent:1")
        db.session.commit()
    with app.app_context():
        run(today_for)
    deliver(app)
    (delivery,) = receiver.deliveries
    assert delivery.body["type"] == "case.created"
    case_file = delivery.body["data"]
    jsonschema.validate(case_file, SCHEMA, format_checker=jsonschema.FormatChecker())
    case = db.session.scalar(select(Case))
    assert case_file == case.case_file and delivery.idempotency_key == case.public_id
    assert case_file["amounts"]["outstanding"]["total"] == invoice.balance
    assert [r["final"] for r in case_file["reminders"]] == [False, True]
    assert case_file["interactions"]["disputes"][0]["answer"] == "The reading is right."
    assert case_file["interactions"]["promises"][0]["status"] == "broken"
    assert set(case_file["debtor"]) == {"kind", "customer_number", "name", "address", "email", "phone",
                                        "date_of_birth", "language", "org_number"}
    assert case_file["schema_version"] == "1.2" and case_file["debtor"]["org_number"] is None  # a consumer
    assert case_file["interest"] is None and case_file["partner_reports"] == []  # Norway: no interest computed
    assert "Called" not in json.dumps(case_file)  # no agents' notes, no internal data
    pdf = client.get(case_file["documents"]["invoice_pdf"]["url"].replace("https://pay.example.test", ""))
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    forged = case_file["documents"]["invoice_pdf"]["url"].replace("https://pay.example.test", "")[:-20] + "x" * 8
    assert client.get(forged + "/invoice.pdf").status_code == 404


def test_a_delivery_survives_the_receiver_down_a_500_and_a_429_with_its_retry_after(app, creditor, receiver):
    overdue(app, creditor)
    with app.app_context():
        run(today_for)
    (message,) = webhooks()
    receiver.stop()
    assert deliver(app).retried == 1 and message.status == OutboxStatus.PENDING
    receiver.start()
    receiver.answers[:] = [(500, {}), (429, {"Retry-After": "7200"})]
    later = utcnow() + timedelta(hours=1)
    assert deliver(app, now=later).retried == 1 and "500" in message.last_error
    assert deliver(app, now=later + timedelta(hours=1)).retried == 1 and "429" in message.last_error
    asked = later + timedelta(hours=1) + timedelta(seconds=7200)
    assert message.next_attempt_at >= asked - timedelta(seconds=1)  # no sooner than the receiver asked
    assert deliver(app, now=asked).delivered == 1
    (delivery,) = receiver.deliveries
    assert message.status == OutboxStatus.DELIVERED and not receiver.refused
    assert delivery.webhook_id.startswith("msg_") and delivery.body["type"] == "case.created"


def test_410_gone_disables_the_partner_until_enabled_and_replayed(app, creditor, partner, receiver):
    overdue(app, creditor)
    with app.app_context():
        run(today_for)
    receiver.answers[:] = [(410, {})]
    assert deliver(app).dead == 1
    (message,) = webhooks()
    assert message.status == OutboxStatus.DEAD and not partner.partner.enabled
    assert "410" in message.last_error and "410" in partner.partner.disabled_reason
    fresh = overdue(app, creditor)  # a disabled partner gets no new cases
    assert "partner_disabled" in check(fresh, policy_of(creditor.id), today_for("NO")).reasons
    set_enabled(partner.partner, True)
    replay(message.id)
    db.session.commit()
    assert deliver(app).delivered == 1 and len(receiver.deliveries) == 1


def test_a_delivery_is_dead_after_about_three_days_of_failures(app, creditor, receiver):
    overdue(app, creditor)
    with app.app_context():
        run(today_for)
    (message,) = webhooks()
    receiver.stop()
    moment, outcomes = utcnow(), []
    while message.status == OutboxStatus.PENDING and len(outcomes) < 100:
        moment = max(moment, message.next_attempt_at) + timedelta(seconds=1)
        report = deliver(app, now=moment)
        outcomes.append("dead" if report.dead else "retried")
    receiver.start()
    waited = moment - message.created_at
    assert outcomes[-1] == "dead" and timedelta(hours=72) <= waited < timedelta(hours=80)
    assert 10 <= len(outcomes) <= 40  # backoff with a cap, not a try a minute


def test_two_live_secrets_sign_during_a_rotation(app, creditor, partner, receiver):
    with app.app_context():
        new = rotate_secret(partner.partner)
        db.session.commit()
    receiver.secrets[:] = [new]  # the partner already verifies with the new secret only
    overdue(app, creditor)
    with app.app_context():
        run(today_for)
    deliver(app)
    (delivery,) = receiver.deliveries
    assert len(delivery.signature.split(" ")) == 2
    with app.app_context():
        finish_rotation(partner.partner)
        db.session.commit()
    assert len(partner.partner.secrets) == 2 and sum(s.retired_at is None for s in partner.partner.secrets) == 1


# --- the partner API ---------------------------------------------------------------------------------------


def test_the_partner_acknowledges_reports_a_payment_and_the_bill_settles_with_each_stage_on_the_bill_page(
        app, client, creditor, partner, receiver):
    invoice = overdue(app, creditor)
    customer = app.test_client()
    bill = open_bill(customer, app, invoice)
    assert "Nord Collect" not in customer.get(bill, headers=EN).text
    with app.app_context():
        run(today_for)
    deliver(app)
    case_id = receiver.deliveries[0].body["data"]["case_id"]
    page = customer.get(bill, headers=EN).text
    assert "Nord Collect AS now handles this bill" in page and "+47 22 00 00 00" in page
    assert f'action="{bill}/pay"' not in page and "Pay by bank transfer" not in page  # no payment offered
    assert "https://nordcollect.example/sak/" + case_id in page

    listed = api(client, partner, "GET", "/cases")
    assert [c["case_id"] for c in listed.json["cases"]] == [case_id]
    acknowledged = api(client, partner, "POST", f"/cases/{case_id}/ack", {"reference": "NC-77"})
    assert acknowledged.json["status"] == "acknowledged"
    assert api(client, partner, "GET", "/cases").json["cases"] == []  # not new any more
    assert "NC-77" in customer.get(bill, headers=EN).text

    half = invoice.balance // 2
    paid = api(client, partner, "POST", f"/cases/{case_id}/events",
               {"id": "ev-1", "type": "payment_received", "amount": half, "occurred_on": today_for("NO").isoformat()})
    again = api(client, partner, "POST", f"/cases/{case_id}/events",
                {"id": "ev-1", "type": "payment_received", "amount": half, "occurred_on": today_for("NO").isoformat()})
    assert (paid.status_code, again.status_code) == (201, 200) and invoice.amount_paid == half
    assert api(client, partner, "POST", f"/cases/{case_id}/events",
               {"id": "ev-1", "type": "payment_received", "amount": 1}).status_code == 409
    early = api(client, partner, "POST", f"/cases/{case_id}/events", {"id": "ev-2", "type": "closed_paid"})
    assert early.status_code == 422  # a balance is left
    rest = invoice.balance
    closed = api(client, partner, "POST", f"/cases/{case_id}/events",
                 {"id": "ev-3", "type": "closed_paid", "amount": rest})
    assert closed.status_code == 201 and closed.json["case"]["status"] == "closed_paid"
    assert invoice.status == InvoiceStatus.PAID and invoice.balance == 0
    payments = db.session.scalars(select(Payment).where(Payment.invoice_id == invoice.id)).all()
    assert {p.provider for p in payments} == {"collection"} and len(payments) == 2
    deliver(app)
    assert [d.body["type"] for d in receiver.deliveries] == ["case.created"]  # its own payments are not echoed
    assert "Paid. Thank you!" in customer.get(bill, headers=EN).text
    pdf = api(client, partner, "GET", f"/cases/{case_id}/invoice.pdf")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"


def test_another_partners_case_is_not_found_and_a_bad_key_is_refused(app, client, creditor, partner, receiver):
    overdue(app, creditor)
    with app.app_context():
        run(today_for)
    case_id = db.session.scalar(select(Case.public_id))
    other = partner_for(app, receiver.url, slug="other-collect")
    for method, path, body in (("GET", f"/cases/{case_id}", None), ("POST", f"/cases/{case_id}/ack", {}),
                               ("POST", f"/cases/{case_id}/events", {"id": "x", "type": "closed_uncollectable"}),
                               ("GET", f"/cases/{case_id}/invoice.pdf", None)):
        assert api(client, other, method, path, body).status_code == 404, path
    assert api(client, other, "GET", "/cases?status=all").json["cases"] == []
    refused = client.get("/api/partner/v1/cases", headers={"Authorization": "Bearer pk_partner_nope"})
    assert refused.status_code == 401 and refused.json["error"] == "unauthorized"
    assert db.session.scalar(select(Case.status)) == CaseStatus.SENT


def test_a_payment_on_the_bill_page_during_collection_is_reported_to_the_partner(app, partner, receiver):
    creditor = creditor_with_policy(app, partner.partner, keep_payments=True)
    invoice = overdue(app, creditor)
    with app.app_context():
        run(today_for)
    customer = app.test_client()
    bill = open_bill(customer, app, invoice)
    page = customer.get(bill, headers=EN).text
    assert "You can still pay the bill here" in page and 'name="provider"' in page
    from app.payments.services import settle

    settle(invoice.id, provider="bank_transfer", payment_id="acct:ref-1", amount=5000, currency=invoice.currency,
           method="bank_transfer", received_at=utcnow(), actor="bank_import")
    db.session.commit()
    deliver(app)
    kinds = [d.body["type"] for d in receiver.deliveries]
    assert kinds == ["case.created", "case.payment_received"]
    reported = receiver.deliveries[1].body["data"]
    assert reported["payment"]["amount"] == 5000 and reported["outstanding"] == invoice.balance


def test_a_recall_tells_the_partner_and_gives_the_bill_page_back(app, client, creditor, partner, receiver):
    invoice = overdue(app, creditor)
    with app.app_context():
        run(today_for)
    case = db.session.scalar(select(Case))
    with app.test_request_context():
        recall(case, actor="agent:1", reason="Paid to us directly")
        db.session.commit()
    assert invoice.status == InvoiceStatus.OPEN and case.status == CaseStatus.RECALL_REQUESTED
    customer = app.test_client()
    assert "now handles this bill" not in customer.get(open_bill(customer, app, invoice), headers=EN).text
    deliver(app)
    assert [d.body["type"] for d in receiver.deliveries] == ["case.created", "case.recalled"]
    done = api(client, partner, "POST", f"/cases/{case.public_id}/events", {"id": "r1", "type": "recall_acknowledged"})
    assert done.status_code == 201 and case.status == CaseStatus.RECALLED
    with app.app_context():  # recalled: a later run may hand it off again only by the rules; it is eligible again
        assert run(today_for, dry_run=True).eligible == [invoice.number]


def test_closed_uncollectable_writes_the_bill_off(app, client, creditor, partner):
    invoice = overdue(app, creditor)
    with app.app_context():
        run(today_for)
    case_id = db.session.scalar(select(Case.public_id))
    answer = api(client, partner, "POST", f"/cases/{case_id}/events",
                 {"id": "u1", "type": "closed_uncollectable", "note": "Debtor emigrated"})
    assert answer.status_code == 201 and invoice.status == InvoiceStatus.WRITTEN_OFF


# --- the CLI and the creditor API -----------------------------------------------------------------------


def cli(app, *args):
    return app.test_cli_runner().invoke(args=list(args))


def test_the_cli_adds_a_partner_sets_a_policy_and_runs(app, session, receiver):
    added = cli(app, "collection", "partners", "add", "inkasso-nord", "--name", "Inkasso Nord", "--endpoint",
                receiver.url)
    assert added.exit_code == 0, added.output
    secret = re.search(r"Signing secret \(Standard Webhooks\): (whsec_\S+)", added.output).group(1)
    assert re.search(r"API key: pk_partner_\S+", added.output)
    with app.test_request_context():
        from tests.factories import make_creditor

        creditor = make_creditor("NO")
        db.session.commit()
    policy = cli(app, "collection", "policy", creditor.slug, "--partner", "inkasso-nord", "--min-balance", "5000",
                 "--days-past-due", "14", "--days-after-final-reminder", "10")
    assert policy.exit_code == 0 and "14 days past due" in policy.output
    invoice = overdue(app, creditor)
    remind = cli(app, "invoices", "remind", invoice.number, "--creditor", creditor.slug, "--channel", "email")
    assert remind.exit_code == 0 and "Reminder of" in remind.output
    dry = cli(app, "collection", "run", "--dry-run")
    assert f"would hand off {invoice.number}" in dry.output and invoice.status == InvoiceStatus.OPEN
    done = cli(app, "collection", "run")
    assert done.exit_code == 0 and f"handed off {invoice.number} as case_" in done.output
    receiver.secrets.append(secret)
    deliver(app)
    assert receiver.deliveries and not receiver.refused
    listed = cli(app, "collection", "partners", "list")
    assert "inkasso-nord" in listed.output and creditor.slug in listed.output and "1 live secret" in listed.output
    bad = cli(app, "collection", "partners", "add", "x", "--name", "X", "--endpoint", "ftp://nope")
    assert bad.exit_code == 1 and "--endpoint" in bad.output


def test_the_creditor_api_records_reminders_once(app, client, session):
    from app.creditors.services import create_api_key
    from tests.factories import make_creditor, make_invoice

    with app.test_request_context():
        creditor = make_creditor("NO")
        invoice = make_invoice(creditor, issue_date="2026-10-01", due_date="2026-10-15")
        key = create_api_key(creditor)
        db.session.commit()
    headers = {"Authorization": f"Bearer {key}"}
    body = {"channel": "sms", "final": True, "id": "rem-1", "sent_at": "2026-11-20T08:00:00Z"}
    first = client.post(f"/api/v1/invoices/{invoice.number}/reminders", json=body, headers=headers)
    again = client.post(f"/api/v1/invoices/{invoice.number}/reminders", json=body, headers=headers)
    assert (first.status_code, again.status_code) == (201, 200) and first.json["final"] is True
    bad = client.post(f"/api/v1/invoices/{invoice.number}/reminders", json={"channel": "fax"}, headers=headers)
    assert bad.status_code == 422
    future = client.post(f"/api/v1/invoices/{invoice.number}/reminders",
                         json={"channel": "sms", "sent_at": "2099-01-01T00:00:00Z"}, headers=headers)
    assert future.status_code == 422
    events = client.get(f"/api/v1/invoices/{invoice.number}", headers=headers).json["events"]
    assert [e["kind"] for e in events].count("reminder_sent") == 1
    assert db.session.scalar(select(func.count()).select_from(Case)) == 0


# --- the back office ---------------------------------------------------------------------------------


def test_an_agent_hands_off_now_and_recalls_from_the_bill_page(app, client, creditor, receiver):
    from tests.functional.agents import enrol, make_agent, post

    make_agent(app, creditor)
    enrol(client)
    early = overdue(app, creditor, days_overdue=3, final_days_ago=None)  # not yet by the policy's days
    page = f"/backoffice/invoices/{early.id}"
    shown = client.get(page, headers=EN).text
    assert "No final reminder has been sent." in shown and "Hand off to Nord Collect AS now" in shown
    done = post(client, f"{page}/hand-off", page=page)
    assert done.status_code == 303 and early.status == InvoiceStatus.IN_COLLECTION
    case = db.session.scalar(select(Case).where(Case.invoice_id == early.id))
    assert case.handed_off_by.startswith("agent:")
    again = post(client, f"{page}/hand-off", page=page)
    assert again.status_code == 422 and "with a collection partner already" in again.text
    assert post(client, f"{page}/recall", {"reason": ""}, page=page).status_code == 422
    post(client, f"{page}/recall", {"reason": "The customer called: paid last week"}, page=page)
    assert case.status == CaseStatus.RECALL_REQUESTED and early.status == InvoiceStatus.OPEN
    timeline = client.get(f"/backoffice/customers/{early.customer_id}", headers=EN).text
    assert "Handed to debt collection" in timeline and "Recalled from debt collection" in timeline
    assert "Final reminder sent" not in timeline and "Reminder sent" in timeline
