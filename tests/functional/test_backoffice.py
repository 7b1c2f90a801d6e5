"""The back office at work, through the test client with a real second factor: the inbox (every
kind, filters, assign, waiting, resolved), the isolation walk over every route, the case view, and
each action with its role: replies with saved answers, decisions with credits and corrections,
holds, new links by e-mail, SMS and letter, payments by hand, refunds, bank matching, replays,
the overview, saved answers, agents, CSV exports and the audit log."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import DBAPIError

from app.audit import AuditEntry
from app.backoffice.models import InboxMark, Note, ReplyTemplate
from app.billing.corrections import LineCredit, credit_notes, issue_credit_note
from app.billing.models import InvoiceStatus
from app.billing.schemas import line_amounts
from app.content import services as content
from app.creditors.models import ApiKey, Creditor
from app.creditors.services import create_api_key
from app.debt_collection.models import Case, CaseEvent
from app.debt_collection.partners import add_partner
from app.dunning.models import Letter
from app.events import services as events
from app.events.models import WebhookDelivery, WebhookEndpoint
from app.extensions import db
from app.links.models import AccessLink
from app.models import utcnow
from app.outbox.models import OutboxMessage, OutboxStatus
from app.payments.bank.models import EntryStatus
from app.payments.models import Payment, Refund
from app.resolutions.models import Status
from app.support.services import add_customer_message
from tests.factories import make_creditor, make_invoice
from tests.functional.agents import CSRF, EN, actions, enrol, make_agent, post, token
from tests.functional.backoffice_data import every_kind
from tests.functional.dunning.letters import letter_bills
from tests.functional.helpers import issue, open_bill
from tests.unit.dunning.conftest import creditor_with_plan


@pytest.fixture
def creditor(app, session):
    creditor = make_creditor("NO")
    db.session.commit()
    return creditor


@pytest.fixture
def mine(app, creditor, tmp_path):
    return every_kind(app, creditor, tmp_path, message="<script>alert(1)</script> Why so high?")


def sign_in(app, client, creditor, role="agent", email="ola@example.test"):
    agent = make_agent(app, creditor, email, role)
    enrol(client, email)
    return agent


@pytest.fixture
def agent(app, client, creditor):
    return sign_in(app, client, creditor)


@pytest.fixture
def supervisor(app, client, creditor):
    return sign_in(app, client, creditor, "supervisor")


# --- the inbox -----------------------------------------------------------------------------------------


def test_the_inbox_shows_every_kind_oldest_first_and_the_customers_words_as_text(client, mine, agent):
    page = client.get("/backoffice/", headers=EN)
    assert page.status_code == 200
    for reference in (mine.request.reference, mine.dispute.reference, mine.deferral.reference, mine.plan.reference):
        assert reference in page.text
    for path in (f"/backoffice/bank/{mine.entry.id}", f"/backoffice/payments/{mine.overpayment.id}",
                 f"/backoffice/outbox/{mine.dead.id}"):
        assert path in page.text
    assert "Open <span class=\"hint\">(7)</span>" in page.text
    assert "<script>alert(1)</script>" not in page.text
    kinds = client.get("/backoffice/?kind=bank", headers=EN).text
    assert f"/backoffice/bank/{mine.entry.id}" in kinds and mine.request.reference not in kinds
    found = client.get(f"/backoffice/?q={mine.invoice.number}", headers=EN).text
    assert mine.request.reference in found and mine.deferral.reference not in found
    assert actions(agent).count("inbox_viewed") >= 3


def test_assign_to_me_and_waiting_on_the_customer_until_they_write_again(app, client, mine, agent, tmp_path):
    post(client, f"/backoffice/inbox/request/{mine.request.id}/assign")
    post(client, f"/backoffice/inbox/dispute/{mine.dispute.id}/assign")
    mine_only = client.get("/backoffice/?assignee=me", headers=EN).text
    assert mine.request.reference in mine_only and mine.dispute.reference in mine_only
    assert mine.deferral.reference not in mine_only
    nobody = client.get("/backoffice/?assignee=nobody", headers=EN).text
    assert mine.deferral.reference in nobody and mine.request.reference not in nobody

    post(client, f"/backoffice/inbox/dispute/{mine.dispute.id}/waiting", {"waiting": "yes"})
    waiting = client.get("/backoffice/?view=waiting", headers=EN).text
    assert mine.dispute.reference in waiting and mine.request.reference not in waiting
    # an answer makes a conversation wait on the customer; their next message makes it new again
    post(client, f"/backoffice/requests/{mine.request.reference}/reply", {"message": "Look at line 2."},
         page=f"/backoffice/requests/{mine.request.reference}")
    assert mine.request.reference in client.get("/backoffice/?view=waiting", headers=EN).text
    with app.test_request_context():
        add_customer_message(mine.request, "Still wrong.", None, "again", str(tmp_path))
        db.session.commit()
    assert mine.request.reference in client.get("/backoffice/?view=new", headers=EN).text
    post(client, f"/backoffice/inbox/request/{mine.request.id}/assign", {"to": "nobody"})
    assert db.session.scalar(select(InboxMark.assignee_id).where(InboxMark.record_id == mine.request.id,
                                                                 InboxMark.kind == "request")) is None
    assert {"item_assigned", "item_unassigned", "item_waiting"} <= set(actions(agent))


def test_a_closed_conversation_is_resolved_and_can_be_opened_again(client, mine, agent):
    page = f"/backoffice/requests/{mine.request.reference}"
    post(client, f"{page}/status", {"status": "closed"}, page=page)
    assert mine.request.status == "closed"
    assert mine.request.reference in client.get("/backoffice/?view=resolved", headers=EN).text
    assert mine.request.reference not in client.get("/backoffice/", headers=EN).text
    post(client, f"{page}/status", {"status": "open"}, page=page)
    assert mine.request.status == "open"


# --- isolation -------------------------------------------------------------------------------------------


def test_the_isolation_walk_every_route_with_a_record_is_404_for_another_creditors_record(app, client, creditor,
                                                                                           tmp_path):
    """Every back-office route that names a record, as an admin of creditor A, with creditor B's
    records; and the forms that carry a record's id. Nothing of B's changes or shows."""
    sign_in(app, client, creditor, "admin")
    theirs = every_kind(app, make_creditor("DE"), tmp_path, name="Brigitte Bauer")
    with app.test_request_context():  # a letter of another creditor's customer too
        lettered, plan = creditor_with_plan("NO", "NO")
        letter_bills(lettered, plan)
        partner = add_partner("walk-partner", "Inkasso Walk", "https://walk.example/cases").partner
        case = Case(public_id="case_walkwalkwalkwalkwalk", creditor_id=theirs.invoice.creditor_id,
                    invoice=theirs.invoice, partner=partner, status="acknowledged", currency="EUR", principal=100,
                    fees=0, interest=0, case_file={}, handed_off_by="test")
        report = CaseEvent(case=case, partner_id=partner.id, event_id="m1", kind="message",
                           details={"message": "Bitte melden."}, payload_hash="0" * 64)
        db.session.add_all([case, report])
        create_api_key(db.session.get(Creditor, theirs.invoice.creditor_id), label="theirs")
        their_endpoint = events.add_endpoint(db.session.get(Creditor, theirs.invoice.creditor_id),
                                      "https://erp.example.com/hooks").endpoint
        their_event = events.record_for_invoice(theirs.invoice, "invoice.opened", {"channel": "sms"})
        their_block = content.create_block(db.session.get(Creditor, theirs.invoice.creditor_id), {
            "name": "Theirs", "kind": "information", "placements": ["bill"],
            "texts": {"de": {"title": "Hallo", "body": "", "cta": ""}}})
        db.session.commit()
        their_note = issue_credit_note(theirs.invoice, [LineCredit(theirs.invoice.lines[0].id, 100)], reason="x",
                                       actor="agent:1")
        db.session.commit()
    their_key = db.session.scalar(select(ApiKey).where(ApiKey.creditor_id == theirs.invoice.creditor_id))
    args = {
        "customer_id": theirs.customer.id, "invoice_id": theirs.invoice.id, "payment_id": theirs.overpayment.id,
        "entry_id": theirs.entry.id, "message_id": theirs.dead.id, "template_id": theirs.template.id,
        "agent_id": theirs.agent.id, "event_id": report.id, "note_id": their_note.id,
        "letter_id": db.session.scalar(select(Letter.id).where(Letter.creditor_id == lettered.id)),
        # the creditor console: another creditor's console, and its API key
        "creditor_id": theirs.invoice.creditor_id, "provider": "stripe", "key_id": their_key.id,
        # and its webhook endpoint with a delivery
        "endpoint_id": their_endpoint.public_id,
        "delivery_id": db.session.scalar(select(WebhookDelivery.id).where(
            WebhookDelivery.endpoint_id == their_endpoint.id, WebhookDelivery.event_id == their_event.id)),
        # and a reminder plan version (of another creditor still), its step and a variant key
        "plan_id": plan.id, "position": 1, "key": "a",
        # and its content block with its variant
        "public_id": their_block.public_id, "variant_id": their_block.variants[0].id,
    }
    references = {"backoffice.support_request": theirs.request.reference, "backoffice.reply": theirs.request.reference,
                  "backoffice.request_status": theirs.request.reference}
    items = {"request": theirs.request.id, "dispute": theirs.dispute.id, "deferral": theirs.deferral.id,
             "plan": theirs.plan.id, "bank": theirs.entry.id, "refund": theirs.overpayment.id, "outbox": theirs.dead.id,
             "partner": report.id}
    form = {"message": "x", "outcome": "upheld", "status": "closed", "reason": "x", "channel": "email",
            "to": "a@example.test", "submission": "s1", "amount": "10", "received_on": utcnow().date().isoformat(),
            "method": "cash", "invoice": theirs.invoice.number, "note": "x", "body": "x", "waiting": "yes",
            "creditor_id": str(theirs.template.creditor_id), "action": "disable", "label": "x",
            "methods": "card", "brand_primary": "#123456", "brand_accent": "#123456",
            "url": "https://evil.example/hooks", "scope": "all", "enabled": "0", "grace_hours": "0",
            "since": "2026-01-01T00:00",
            f"credit-{theirs.invoice.lines[0].id}": "1"}
    csrf = token(client, "/backoffice/")
    walked = set()
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("backoffice.") or not rule.arguments:
            continue
        if "kind" in rule.arguments:
            urls = [rule.build({"kind": kind, "record_id": record_id})[1] for kind, record_id in items.items()]
        elif "reference" in rule.arguments:
            reference = references.get(rule.endpoint, theirs.dispute.reference)
            urls = [rule.build({"reference": reference})[1]]
            if rule.endpoint in ("backoffice.resolution", "backoffice.decide"):
                urls += [rule.build({"reference": r.reference})[1] for r in (theirs.deferral, theirs.plan)]
        else:
            missing = [name for name in rule.arguments if name not in args]
            assert not missing, f"{rule.rule} is not in the isolation walk: add it"
            urls = [rule.build({name: args[name] for name in rule.arguments})[1]]
        method = "POST" if "POST" in rule.methods else "GET"
        for url in urls:
            answer = client.open(url, method=method, data={"csrf_token": csrf, **form}, headers=EN)
            assert answer.status_code == 404, f"{method} {url} answered {answer.status_code}"
        walked.add(rule.endpoint)
    assert len(walked) >= 25
    assert {"backoffice.privacy", "backoffice.privacy_export_json", "backoffice.privacy_export_pdf",
            "backoffice.privacy_erase"} <= walked  # a data subject's request: another creditor's customer is a 404
    assert theirs.customer.email == "kari@example.test"  # and was not erased
    assert {"backoffice.console_brand", "backoffice.console_revoke_api_key",
            "backoffice.console_check_keys"} <= walked
    assert db.session.scalar(select(ApiKey.revoked_at).where(ApiKey.id == their_key.id)) is None
    assert {"backoffice.console_webhook", "backoffice.console_webhook_rotate",
            "backoffice.console_webhook_replay"} <= walked
    assert {"backoffice.console_plan", "backoffice.console_plan_default", "backoffice.console_plan_preview",
            "backoffice.console_variant_stop"} <= walked
    db.session.refresh(plan)
    assert plan.is_default and plan.version == 1
    db.session.refresh(their_endpoint)
    assert their_endpoint.enabled and their_endpoint.previous_until is None
    assert {"backoffice.console_content", "backoffice.console_content_save", "backoffice.console_content_stop",
            "backoffice.console_content_variant_stop", "backoffice.console_content_leads"} <= walked
    db.session.refresh(their_block)
    assert their_block.stopped_at is None and their_block.name == "Theirs"
    assert db.session.scalar(select(func.count()).select_from(WebhookEndpoint)) == 1
    assert db.session.scalar(select(func.count()).select_from(WebhookDelivery)) == 1
    # forms that name a record of B's without it being in the URL
    assert post(client, "/backoffice/templates", {"id": theirs.template.id, "creditor_id": theirs.template.creditor_id,
                                                  "locale": "de", "title": "x", "body": "x"}).status_code == 404
    assert post(client, "/backoffice/templates", {"creditor_id": theirs.template.creditor_id, "locale": "de",
                                                  "title": "Neu", "body": "x"}).status_code == 404
    mine = make_invoice(creditor)
    db.session.commit()
    assert post(client, f"/backoffice/customers/{mine.customer_id}/notes",
                {"body": "x", "invoice_id": theirs.invoice.id}).status_code == 404
    # lists and searches show nothing of B's
    for path in ("/backoffice/", "/backoffice/?view=resolved", "/backoffice/search?q=Brigitte", "/backoffice/overview",
                 "/backoffice/templates", "/backoffice/agents", "/backoffice/audit", "/backoffice/inbox.csv",
                 f"/backoffice/templates?edit={theirs.template.id}"):
        answer = client.get(path, headers=EN)
        assert answer.status_code == 200, path
        assert "Bauer" not in answer.text and theirs.request.reference not in answer.text, path
        assert theirs.agent.email not in answer.text and "Takk" not in answer.text, path
        assert "case_walkwalk" not in answer.text and "Bitte melden." not in answer.text, path
    # and nothing of B's changed
    assert (theirs.request.status, theirs.dispute.status, theirs.plan.status) == ("open", "open", "open")
    assert theirs.entry.status == EntryStatus.UNMATCHED and theirs.dead.status == OutboxStatus.DEAD
    assert db.session.get(CaseEvent, report.id).handled_at is None
    assert theirs.overpayment.refund_due == 5000 and theirs.invoice.credited == their_note.total  # theirs only
    assert theirs.agent.disabled_at is None and theirs.template.title == "Takk"
    assert db.session.scalar(select(func.count()).select_from(Note).where(
        Note.creditor_id == theirs.customer.creditor_id)) == 1
    assert db.session.scalar(select(func.count()).select_from(InboxMark)) == 0


# --- a customer's case ----------------------------------------------------------------------------------


def test_the_case_view_tells_the_whole_story_newest_first_and_notes_stay_internal(app, client, mine, agent):
    bill = open_bill(app.test_client(), app, mine.invoice)
    assert bill
    post(client, f"/backoffice/customers/{mine.customer.id}/notes", {"body": "<b>Called her</b>, she pays Friday."},
         page=f"/backoffice/customers/{mine.customer.id}")
    page = client.get(f"/backoffice/customers/{mine.customer.id}", headers=EN)
    assert page.status_code == 200
    text = page.text
    for words in ("The customer opened the bill", "Link issued", "Dispute " + mine.dispute.reference,
                  "Payment received", "Money owed back", "Internal note", "&lt;b&gt;Called her&lt;/b&gt;",
                  "&lt;script&gt;alert(1)&lt;/script&gt; Why so high?", mine.paid.number):
        assert words in text, words
    assert text.index("&lt;b&gt;Called her") < text.index("The customer opened the bill")  # newest first
    assert actions(agent)[-1] == "customer_viewed"
    customer_view = app.test_client()
    assert "Called her" not in customer_view.get(open_bill(customer_view, app, mine.invoice), headers=EN).text


def test_search_finds_a_customer_by_invoice_number_email_and_name(client, mine, agent):
    for q in (mine.paid.number, "kari@example", "Kari Nord"):
        page = client.get(f"/backoffice/search?q={q}", headers=EN)
        assert f"/backoffice/customers/{mine.customer.id}" in page.text, q
    assert "customers_searched" in actions(agent)


# --- answers ---------------------------------------------------------------------------------------------


def test_a_reply_from_a_saved_answer_is_filled_in_the_customers_language(app, client, creditor, mine, supervisor):
    post(client, "/backoffice/templates", {"creditor_id": creditor.id, "locale": "nb", "title": "Avlesning",
                                           "body": "Hei {customer}! Du skylder {balance} på faktura {invoice}."},
         page="/backoffice/templates")
    template = db.session.scalar(select(ReplyTemplate).where(ReplyTemplate.title == "Avlesning"))
    page = client.get(f"/backoffice/requests/{mine.request.reference}?template={template.id}", headers=EN)
    assert "Hei Kari Nordmann! Du skylder" in page.text and f"faktura {mine.invoice.number}." in page.text
    assert "kr" in page.text  # the balance in Norwegian format
    sent = post(client, f"/backoffice/requests/{mine.request.reference}/reply",
                {"message": re.search(r'<textarea id="message"[^>]*>([^<]*)</textarea>', page.text).group(1)},
                page=f"/backoffice/requests/{mine.request.reference}")
    assert sent.status_code == 303 and mine.request.status == "answered"
    mail = db.session.scalar(select(OutboxMessage).where(OutboxMessage.kind == "support.reply"))
    assert mail.locale == "nb"
    bad = post(client, "/backoffice/templates", {"creditor_id": creditor.id, "locale": "nb", "title": "x",
                                                 "body": "Hei {name.__class__}"}, page="/backoffice/templates")
    assert bad.status_code == 422 and "placeholders" in bad.text


def test_a_plain_agent_cannot_manage_saved_answers_or_record_payments_or_refund(client, creditor, mine, agent):
    assert client.get("/backoffice/templates").status_code == 403
    assert post(client, "/backoffice/templates", {"creditor_id": creditor.id, "locale": "nb", "title": "x",
                                                  "body": "x"}).status_code == 403
    paid = post(client, f"/backoffice/invoices/{mine.invoice.id}/payments",
                {"amount": "10", "received_on": utcnow().date().isoformat(), "method": "cash", "submission": "k"})
    assert paid.status_code == 403 and mine.invoice.amount_paid == 0
    refund = post(client, f"/backoffice/payments/{mine.overpayment.id}/refund",
                  {"amount": "50", "channel": "bank_transfer", "submission": "k"})
    assert refund.status_code == 403 and mine.overpayment.refund_due == 5000
    assert post(client, f"/backoffice/invoices/{mine.invoice.id}/credit-note",
                {"reason": "x", f"credit-{mine.invoice.lines[0].id}": "1"}).status_code == 403
    assert client.get("/backoffice/inbox.csv").status_code == 403
    assert client.get("/backoffice/agents").status_code == 403
    assert client.get("/backoffice/audit").status_code == 404


def test_a_dispute_upheld_in_part_with_a_credit_and_a_correction(app, client, mine, agent):
    first, second = mine.invoice.lines
    page = f"/backoffice/resolutions/{mine.dispute.reference}"
    wrong = post(client, f"{page}/decide", {"outcome": "partial", "message": "Partly right.",
                                            f"credit-{first.id}": "99999"}, page=page)
    assert wrong.status_code == 422 and "more than is left of the line" in wrong.text
    assert mine.dispute.status == Status.OPEN and mine.invoice.credited == 0
    done = post(client, f"{page}/decide", {"outcome": "partial", "message": "The first reading was too high.",
                                           f"credit-{first.id}": "25,00", f"quantity-{second.id}": "0.5"}, page=page)
    assert done.status_code == 303
    assert mine.dispute.status == Status.PARTIAL and mine.invoice.status == InvoiceStatus.OPEN
    # the second line stays as issued; half of it is credited, on a note of its own
    half = line_amounts(Decimal("0.5") * second.quantity, second.unit_price, second.vat_rate)[2]
    assert mine.invoice.credited == 2500 + second.gross - half and second.quantity != Decimal("0.5")
    notes = credit_notes(mine.invoice.id)
    assert [note.number for note in notes] == ["CN-000001", "CN-000002"]
    customer = app.test_client()
    bill = customer.get(open_bill(customer, app, mine.invoice), headers=EN).text
    assert "The first reading was too high." in bill and "CN-000001" in bill and "CN-000002" in bill
    pdf = customer.get(f"/b/{mine.invoice.public_id}/credit-notes/CN-000002", headers=EN)
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf" and pdf.data.startswith(b"%PDF")
    assert customer.get(f"/b/{mine.invoice.public_id}/credit-notes/CN-000009", headers=EN).status_code == 404
    office = client.get(f"/backoffice/invoices/{mine.invoice.id}/credit-notes/{notes[0].id}.pdf")
    assert office.status_code == 200 and office.data.startswith(b"%PDF")


def test_a_plan_request_granted_by_an_agent(client, mine, agent):
    page = f"/backoffice/resolutions/{mine.plan.reference}"
    shown = client.get(page, headers=EN).text
    assert "The plan if granted" in shown and shown.count("<tr><td>") == 12
    post(client, f"{page}/decide", {"outcome": "grant", "message": "Twelve months it is."}, page=page)
    assert mine.plan.status == Status.ACTIVE and len(mine.plan.instalments) == 12


def test_a_deferral_request_declined(client, mine, agent):
    page = f"/backoffice/resolutions/{mine.deferral.reference}"
    post(client, f"{page}/decide", {"outcome": "decline", "message": "Not this time."}, page=page)
    assert mine.deferral.status == Status.DECLINED


# --- a bill's actions ----------------------------------------------------------------------------------


def test_pause_and_resume_reminders(app, client, mine, agent):
    page = f"/backoffice/invoices/{mine.paid.id}"
    refused = post(client, f"{page}/hold", {"reason": "Hospital"}, page=page)  # paid: nothing to pause
    assert refused.status_code == 409 and mine.paid.status == InvoiceStatus.PAID
    target = mine.deferral.invoice
    page = f"/backoffice/invoices/{target.id}"
    until = (utcnow().date() + timedelta(days=20)).isoformat()
    done = post(client, f"{page}/hold", {"reason": "In hospital", "until": until}, page=page)
    assert done.status_code == 303 and target.status == InvoiceStatus.ON_HOLD and target.hold_until.isoformat() == until
    assert "Reminders are paused." in client.get(page, headers=EN).text
    post(client, f"{page}/resume", {"reason": "Home again"}, page=page)
    assert target.status == InvoiceStatus.OPEN and target.hold_until is None
    assert {"reminders_paused", "reminders_resumed"} <= set(actions(agent))


def test_a_new_link_by_e_mail_revokes_the_old_ones_and_arrives_working(app, client, mine, agent, smtp):
    from app.outbox.dispatcher import run_once

    old = issue(app, mine.invoice)
    assert app.test_client().get(f"/l/{old.token}").status_code == 303
    page = f"/backoffice/invoices/{mine.invoice.id}"
    form = client.get(page, headers=EN).text
    submission = re.search(r'name="submission" value="([^"]+)"', form).group(1)
    for _twice in range(2):
        post(client, f"{page}/link", {"channel": "email", "to": "kari@example.test", "submission": submission},
             page=page)
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage).where(
        OutboxMessage.kind == "link.reissued")) == 1
    assert all(link.revoked_at for link in db.session.scalars(select(AccessLink).where(
        AccessLink.invoice_id == mine.invoice.id)))
    with app.app_context():
        run_once()
    mail = next(m for m in smtp.messages if "new link" in m["Subject"].lower() or "ny lenke" in m["Subject"].lower())
    text = mail.get_body(("plain",)).get_content()
    url = re.search(r"https://pay\.example\.test(/l/\S+)", text).group(1)
    assert app.test_client().get(url).status_code == 303
    assert app.test_client().get(f"/l/{old.token}").status_code == 404  # the old link no longer opens


def test_a_new_link_in_a_letter_is_shown_once_with_a_qr_code(app, client, mine, agent):
    page = f"/backoffice/invoices/{mine.invoice.id}"
    letter = post(client, f"{page}/link", {"channel": "letter", "submission": "l1"}, page=page)
    assert letter.status_code == 200 and "<svg" in letter.text and letter.headers["Cache-Control"] == "no-store"
    # Typed from paper: a short address (pay.example.test/k/XXXXX-XXXXX), and the bank details to pay without it.
    url = re.search(r'<p class="link-out" data-url="https://pay\.example\.test(/k/[^"]+)">pay\.example\.test/k/'
                    r'[0-9A-Z]{5}-[0-9A-Z]{5}</p>', letter.text).group(1)
    assert app.test_client().get(url).status_code == 303
    assert "Storgata 1" in letter.text and mine.invoice.number in letter.text
    assert "1503.20.80119" in letter.text and mine.invoice.payment_reference in letter.text


def test_a_new_link_by_sms_needs_a_mobile_number(client, mine, agent):
    page = f"/backoffice/invoices/{mine.invoice.id}"
    bad = post(client, f"{page}/link", {"channel": "sms", "to": "not a number", "submission": "s1"}, page=page)
    assert bad.status_code == 422 and "country code" in bad.text
    good = post(client, f"{page}/link", {"channel": "sms", "to": "+47 912 34 567", "submission": "s2"}, page=page)
    assert good.status_code == 303
    sms = db.session.scalar(select(OutboxMessage).where(OutboxMessage.channel == "sms"))
    assert (sms.recipient, sms.kind, sms.locale) == ("+4791234567", "link.reissued", "nb")


def test_a_new_link_is_audited_with_its_channel_and_a_masked_destination(client, mine, agent):
    page = f"/backoffice/invoices/{mine.invoice.id}"
    for form in ({"channel": "email", "to": "kari.nordmann@example.test", "submission": "a1"},
                 {"channel": "sms", "to": "+47 912 34 567", "submission": "a2"},
                 {"channel": "letter", "submission": "a3"}):
        assert post(client, f"{page}/link", form, page=page).status_code in (200, 303)
    entries = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "link_reissued")
                                 .order_by(AuditEntry.id)).all()
    assert [entry.detail for entry in entries] == [
        {"channel": "email", "destination": "ka***@example.test"},
        {"channel": "sms", "destination": "+47*****567"},
        {"channel": "letter", "destination": None},  # printed by the agent: sent nowhere
    ]
    assert all(entry.record_id == mine.invoice.number for entry in entries)


def test_a_supervisor_records_a_payment_once_and_the_customer_gets_a_receipt(client, mine, supervisor):
    page = f"/backoffice/invoices/{mine.invoice.id}"
    form = client.get(page, headers=EN).text
    submission = re.search(r'name="submission" value="([^"]+)"', form[form.index("/payments"):]).group(1)
    data = {"amount": "100,00", "received_on": utcnow().date().isoformat(), "method": "cash",
            "submission": submission, "note": "At the counter"}
    assert post(client, f"{page}/payments", data, page=page).status_code == 303
    assert post(client, f"{page}/payments", data, page=page).status_code == 303
    assert mine.invoice.amount_paid == 10000
    payments = select(func.count()).select_from(Payment).where(Payment.invoice_id == mine.invoice.id)
    assert db.session.scalar(payments) == 1
    bad = post(client, f"{page}/payments", {**data, "amount": "12,345", "submission": "other"}, page=page)
    assert bad.status_code == 422 and mine.invoice.amount_paid == 10000


def test_a_supervisor_pays_back_an_overpayment_by_bank_transfer(client, mine, supervisor):
    page = f"/backoffice/payments/{mine.overpayment.id}"
    shown = client.get(page, headers=EN).text
    assert 'value="50.00"' in shown
    submission = re.search(r'name="submission" value="([^"]+)"', shown).group(1)
    too_much = post(client, f"{page}/refund", {"amount": "60", "channel": "bank_transfer", "submission": submission},
                    page=page)
    assert too_much.status_code == 422 and mine.overpayment.refund_due == 5000
    done = post(client, f"{page}/refund", {"amount": "50.00", "channel": "bank_transfer", "submission": submission,
                                           "note": "Sent from the bank"}, page=page)
    assert done.status_code == 303 and mine.overpayment.refund_due == 0 and mine.overpayment.refunded == 5000
    assert db.session.scalar(select(func.count()).select_from(Refund)) == 1
    assert f"/backoffice/payments/{mine.overpayment.id}" in client.get("/backoffice/?view=resolved", headers=EN).text


def test_a_kept_bank_credit_matched_to_a_bill_by_its_number(client, mine, agent):
    page = f"/backoffice/bank/{mine.entry.id}"
    shown = client.get(page, headers=EN).text
    assert mine.invoice.number in shown  # a bill of this amount is suggested
    unknown = post(client, f"{page}/match", {"invoice": "NOPE"}, page=page)
    assert unknown.status_code == 422 and mine.entry.status == EntryStatus.UNMATCHED
    done = post(client, f"{page}/match", {"invoice": mine.invoice.number, "note": "Her husband paid"}, page=page)
    assert done.status_code == 303 and mine.entry.status == EntryStatus.RESOLVED
    assert mine.invoice.amount_paid == mine.entry.amount
    again = post(client, f"{page}/match", {"invoice": mine.invoice.number}, page=page)
    assert again.status_code == 409


def test_a_kept_bank_credit_sent_back(client, mine, agent):
    page = f"/backoffice/bank/{mine.entry.id}"
    assert post(client, f"{page}/return", {"note": ""}, page=page).status_code == 422
    post(client, f"{page}/return", {"note": "Not ours: returned"}, page=page)
    assert (mine.entry.status, mine.entry.resolution) == (EntryStatus.RESOLVED, "returned")


def test_a_dead_message_is_replayed_once(client, mine, agent):
    page = f"/backoffice/outbox/{mine.dead.id}"
    assert "550 5.1.1 No such user" in client.get(page, headers=EN).text
    post(client, f"{page}/replay", page=page)
    assert mine.dead.status == OutboxStatus.PENDING and mine.dead.attempts == 0 and mine.dead.replayed_at
    again = post(client, f"{page}/replay", page=page, follow_redirects=True)
    assert "not dead any more" in again.text
    assert "dead_letter_replayed" in actions(agent)


# --- the overview, agents, exports and the audit log -------------------------------------------------------


def test_the_overview_draws_each_creditors_last_30_days(app, client, mine, agent):
    open_bill(app.test_client(), app, mine.invoice)
    page = client.get("/backoffice/overview", headers=EN)
    assert page.status_code == 200 and page.text.count('role="img"') == 2  # a phone's drawing and a desktop's
    assert "Links opened" in page.text and "style=" not in page.text[page.text.index("<svg"):]
    assert actions(agent)[-1] == "overview_viewed"


def test_an_admin_disables_an_agent_and_resets_a_second_factor(app, client, creditor):
    admin = sign_in(app, client, creditor, "admin")
    other_client = app.test_client()
    other = sign_in(app, other_client, creditor, "agent", "kari@example.test")
    assert other_client.get("/backoffice/").status_code == 200
    page = client.get("/backoffice/agents", headers=EN)
    assert "kari@example.test" in page.text
    post(client, f"/backoffice/agents/{other.id}", {"creditor_id": creditor.id, "action": "disable"},
         page="/backoffice/agents")
    assert other.disabled_at is not None and other_client.get("/backoffice/").status_code == 302
    post(client, f"/backoffice/agents/{other.id}", {"creditor_id": creditor.id, "action": "enable"},
         page="/backoffice/agents")
    post(client, f"/backoffice/agents/{other.id}", {"creditor_id": creditor.id, "action": "reset_mfa"},
         page="/backoffice/agents")
    assert other.totp_secret is None and other.disabled_at is None
    post(client, f"/backoffice/agents/{other.id}", {"creditor_id": creditor.id, "action": "role:supervisor"},
         page="/backoffice/agents")
    assert other.role_for(creditor.id) == "supervisor"
    mine = post(client, f"/backoffice/agents/{admin.id}", {"creditor_id": creditor.id, "action": "disable"},
                page="/backoffice/agents")
    assert mine.status_code == 303 and admin.disabled_at is None  # not oneself
    assert {"agent_disable", "agent_enable", "agent_reset_mfa", "agent_role"} <= set(actions(admin))


def test_csv_exports_are_safe_in_a_spreadsheet(app, client, creditor, tmp_path, supervisor):
    every_kind(app, creditor, tmp_path, name='=HYPERLINK("https://evil.example","Click")')
    answer = client.get("/backoffice/inbox.csv")
    assert answer.status_code == 200 and answer.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(answer.text.lstrip("\ufeff"))))
    names = {row[4] for row in rows[1:] if row[4]}
    assert names == {"'=HYPERLINK(\"https://evil.example\",\"Click\")"}
    audit = client.get("/backoffice/audit.csv")
    assert audit.status_code == 200 and "inbox_exported" in audit.text
    assert {"inbox_exported", "audit_exported"} <= set(actions(supervisor))


def test_the_audit_log_cannot_be_changed_or_deleted(app, client, mine, agent):
    client.get(f"/backoffice/customers/{mine.customer.id}", headers=EN)
    entry_id = db.session.scalar(select(func.max(AuditEntry.id)))
    with pytest.raises(DBAPIError) as refused, db.session.begin_nested():  # the trigger's error, on either database
        db.session.execute(update(AuditEntry).where(AuditEntry.id == entry_id).values(action="nothing"))
    assert "append-only" in str(refused.value)
    with pytest.raises(DBAPIError), db.session.begin_nested():
        db.session.execute(AuditEntry.__table__.delete().where(AuditEntry.id == entry_id))
    assert db.session.get(AuditEntry, entry_id).action == "customer_viewed"


def test_every_look_at_a_customers_data_is_in_the_audit_log(app, client, mine, agent):
    before = len(actions(agent))
    for path in (f"/backoffice/customers/{mine.customer.id}", f"/backoffice/invoices/{mine.invoice.id}",
                 f"/backoffice/requests/{mine.request.reference}", f"/backoffice/resolutions/{mine.dispute.reference}",
                 f"/backoffice/bank/{mine.entry.id}", f"/backoffice/payments/{mine.overpayment.id}",
                 f"/backoffice/outbox/{mine.dead.id}", f"/backoffice/invoices/{mine.invoice.id}/preview",
                 "/backoffice/search?q=Kari", "/backoffice/"):
        assert client.get(path, headers=EN).status_code == 200, path
    looked = actions(agent)[before:]
    assert looked == ["customer_viewed", "invoice_viewed", "request_viewed", "resolution_viewed", "bank_entry_viewed",
                      "payment_viewed", "dead_letter_viewed", "bill_previewed", "customers_searched", "inbox_viewed"]
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.agent_id == agent.id).order_by(AuditEntry.id.desc()))
    assert entry.ip == "127.0.0.1" and entry.at.tzinfo is not None


def test_forms_without_csrf_are_refused(client, mine, agent):
    answer = client.post(f"/backoffice/invoices/{mine.invoice.id}/hold", data={"reason": "x"})
    assert answer.status_code == 400 and mine.invoice.status != InvoiceStatus.ON_HOLD
    assert CSRF  # the helpers read tokens from the pages for every other post
