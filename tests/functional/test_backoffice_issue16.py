"""What agents stumbled on in the back office (issue 16, agents 1-9): the bill's state, money and clock
on the inbox; events at the time they happened; only the actions that apply, with why the rest do not;
a preview of a dispute's decision and the customer's language; words, not codes."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func

from app.billing.models import InvoiceStatus
from app.billing.services import record_reminder
from app.extensions import db
from app.models import utcnow
from app.resolutions.models import Status
from tests.factories import make_creditor
from tests.functional.agents import EN, actions, enrol, make_agent, post, token
from tests.functional.backoffice_data import every_kind


@pytest.fixture
def creditor(app, session):
    creditor = make_creditor("NO")
    db.session.commit()
    return creditor


@pytest.fixture
def mine(app, creditor, tmp_path):
    return every_kind(app, creditor, tmp_path)


@pytest.fixture
def supervisor(app, client, creditor):
    agent = make_agent(app, creditor, "sup@example.test", "supervisor")
    enrol(client, "sup@example.test")
    return agent


def test_money_is_spaced_and_codes_are_words(client, mine, supervisor):
    """A5: "NOK 0.00", never "NOK0.00"; a payment's method and an undelivered message's kind in words;
    the bill's status pill begins with a capital."""
    paid = client.get(f"/backoffice/invoices/{mine.paid.id}", headers=EN).text
    assert "NOK0" not in paid and "NOK\u00a00.00" in paid
    assert "Cash" in paid and "· cash" not in paid
    assert '<span class="tag">Paid</span>' in paid
    dead = client.get(f"/backoffice/outbox/{mine.dead.id}", headers=EN).text
    assert "Our answer" in dead and "support.reply" not in dead
    inbox = client.get("/backoffice/", headers=EN).text
    assert "Our answer → bounce@example.test" in inbox and "support.reply" not in inbox
    norsk = client.get(f"/backoffice/invoices/{mine.paid.id}?lang=nb").text
    assert "0,00\u00a0kr" in norsk and "Kontant" in norsk


def test_a_paid_bill_offers_only_what_applies_and_says_why(client, mine, supervisor):
    """A6: no "pause reminders", no new link, no payment to record on a paid bill, and the reason."""
    paid = client.get(f"/backoffice/invoices/{mine.paid.id}", headers=EN).text
    assert f"/backoffice/invoices/{mine.paid.id}/hold" not in paid
    assert f"/backoffice/invoices/{mine.paid.id}/link" not in paid
    assert f"/backoffice/invoices/{mine.paid.id}/payments" not in paid
    assert "Not offered for this bill:" in paid and "The bill is paid." in paid
    assert "A link would show nothing to pay." in paid
    assert f"/backoffice/invoices/{mine.paid.id}/credit" in paid  # a credit note still applies: money owed back
    owed = client.get(f"/backoffice/invoices/{mine.invoice.id}", headers=EN).text
    assert "Not offered for this bill:" in owed and "dispute is open" in owed  # the disputed bill
    norsk = client.get(f"/backoffice/invoices/{mine.paid.id}?lang=nb").text
    assert "Regningen er betalt." in norsk


def test_a_disputes_decision_is_previewed_and_nothing_changes(client, mine, supervisor):
    """A4: "Preview the new total" shows the total and what is left to pay after the decision, changes
    nothing and sends nothing; the hint names the customer's language."""
    first = mine.invoice.lines[0]
    total = mine.invoice.total
    page = f"/backoffice/resolutions/{mine.dispute.reference}"
    shown = client.get(page, headers=EN).text
    assert "in Norsk bokmål: write in Norsk bokmål" in shown and 'lang="nb"' in shown
    preview = post(client, f"{page}/decide", {"outcome": "partial", "message": "", f"credit-{first.id}": "25,00",
                                              "preview": "1"}, page=page)
    assert preview.status_code == 200, preview.text
    assert "If you send this decision:" in preview.text
    from app.templating import money
    with client.application.test_request_context(headers=EN):
        after = money(total - 2500, mine.invoice.currency)
    assert after in preview.text and "Nothing has changed yet" in preview.text
    db.session.expire_all()
    assert mine.dispute.status == Status.OPEN and mine.invoice.total == total and mine.invoice.credited == 0
    wrong = post(client, f"{page}/decide", {"outcome": "partial", "message": "", f"credit-{first.id}": "99999",
                                            "preview": "1"}, page=page)
    assert wrong.status_code == 422 and "more than is left of the line" in wrong.text
    none = post(client, f"{page}/decide", {"message": "", "preview": "1"}, page=page)
    assert none.status_code == 422 and "Please choose a decision" in none.text


def test_the_timeline_shows_a_reminder_when_it_was_sent(app, client, mine, supervisor):
    """A2: a reminder the creditor's system reports days later is on the timeline at its sending time."""
    sent = datetime(2026, 11, 22, 9, 30, tzinfo=UTC)
    with app.test_request_context():
        record_reminder(mine.invoice, channel="sms", sent_at=sent, final=False, actor="api")
        db.session.commit()
    page = client.get(f"/backoffice/customers/{mine.invoice.customer_id}", headers=EN).text
    assert "22/11/2026, 10:30" in page  # Oslo's clock
    assert utcnow().strftime("%d/%m/%Y") not in page.split("Reminder sent")[0].rsplit("<li", 1)[-1]


def test_the_inbox_row_says_where_the_bill_stands_and_the_clock(app, client, creditor, mine, supervisor):
    """A1: each row has the bill's state, what is left to pay (Babel, the agent's locale), the next
    reminder (or why none) and the clock against the creditor's target; the request page too."""
    page = client.get("/backoffice/", headers=EN).text
    assert 'class="tag state-due">Due</span>' in page  # the bills of `every_kind` are due in five days
    assert "left to pay" in page and "NOK\u00a0" in page
    assert "No reminders: " in page  # the disputed bill
    assert " left</span>" in page  # the clock of items just in
    mine.request.created_at = utcnow() - timedelta(days=6)
    for message in mine.request.messages:
        message.created_at = utcnow() - timedelta(days=6)
    db.session.commit()
    late = client.get("/backoffice/", headers=EN).text
    assert "past the target" in late
    request = client.get(f"/backoffice/requests/{mine.request.reference}", headers=EN).text
    assert "past the target" in request and "target: 1 working day" in request
    assert 'state-due">Due' in request and "Next reminder" in request
    creditor.answer_within_days = 10
    db.session.commit()
    assert "past the target" not in client.get(f"/backoffice/requests/{mine.request.reference}", headers=EN).text
    norsk = client.get("/backoffice/?lang=nb").text
    assert "igjen å betale" in norsk and "kr" in norsk


def test_the_target_counts_working_days_where_the_creditor_is():
    from app.backoffice.standing import answer_by
    friday = datetime(2026, 12, 4, 15, 0, tzinfo=UTC)  # 16:00 in Oslo
    assert answer_by(friday, 1, "NO") == datetime(2026, 12, 7, 15, 0, tzinfo=UTC)  # Monday, same hour
    christmas_eve = datetime(2026, 12, 24, 9, 0, tzinfo=UTC)  # Thursday; 25 and 26 are holidays, 27 Sunday
    assert answer_by(christmas_eve, 1, "NO") == datetime(2026, 12, 28, 9, 0, tzinfo=UTC)


def test_a_call_back_keeps_its_window_is_listed_by_time_and_its_calls_are_logged(app, client, creditor, mine,
                                                                                 supervisor, tmp_path):
    """A3: the window the customer chose; one list by day and window; the call's outcome, audited and
    on the timeline; a bad outcome is refused with words and changes nothing."""
    from app.core.dates import local_today
    from app.support.services import open_request
    with app.test_request_context():
        today = local_today("NO", utcnow())
        evening, _ = open_request(mine.invoice, topic="bill_question", message="Ring meg",
                                  contact_method="phone", contact_email=None, contact_phone="+4791234567",
                                  callback_date=today + timedelta(days=1), callback_window="evening", upload=None,
                                  locale="nb", submission_key="call-1", attachment_dir=str(tmp_path), today=today)
        morning, _ = open_request(mine.invoice, topic="other", message="Ring i morgen tidlig",
                                  contact_method="phone", contact_email=None, contact_phone="+4798765432",
                                  callback_date=today + timedelta(days=1), callback_window="morning", upload=None,
                                  locale="nb", submission_key="call-2", attachment_dir=str(tmp_path), today=today)
        db.session.commit()
        evening_ref, morning_ref = evening.reference, morning.reference
    listed = client.get("/backoffice/calls", headers=EN).text
    assert listed.index(morning_ref) < listed.index(evening_ref)  # the same day: the morning first
    assert "between 8:00 am and 12:00 pm" in listed and "between 4:00 and 8:00 pm" in listed
    assert mine.request.reference not in listed
    page = f"/backoffice/requests/{evening_ref}"
    shown = client.get(page, headers=EN).text
    assert "between 4:00 and 8:00 pm" in shown and "No call logged yet." in shown
    bad = post(client, f"{page}/call", {"outcome": "maybe", "note": "x"}, page=page)
    assert bad.status_code == 422 and "Please choose one." in bad.text
    assert "No call logged yet." in bad.text
    done = post(client, f"{page}/call", {"outcome": "no_answer", "note": "Voicemail, left no message"}, page=page)
    assert done.status_code == 303
    shown = client.get(page, headers=EN).text
    assert "No answer" in shown and "Voicemail, left no message" in shown
    assert "call_logged" in actions(supervisor)
    listed = client.get("/backoffice/calls", headers=EN).text
    assert "Last: No answer" in listed
    case = client.get(f"/backoffice/customers/{mine.invoice.customer_id}", headers=EN).text
    assert f"Call-back {evening_ref}: No answer" in case
    email_only = f"/backoffice/requests/{mine.request.reference}"
    refused = post(client, f"{email_only}/call", {"outcome": "reached"}, page=email_only)
    assert refused.status_code == 409


def test_recovery_codes_at_enrolment_used_once_at_sign_in_and_made_anew(app, session, creditor):
    """A9: the key in groups of four; ten codes shown once at enrolment, stored hashed; one signs in
    instead of the app's code, once, audited; new codes for a current app code end the old ones."""
    import pyotp
    from sqlalchemy import select

    from app.backoffice.models import RecoveryCode
    from tests.functional.agents import CSRF, code_step, key_of, password_step

    client = app.test_client()
    agent = make_agent(app, creditor, "rec@example.test")
    password_step(client, "rec@example.test")
    page = client.get("/backoffice/sign-in/enrol", headers=EN)
    assert re.search(r'<span class="mono key">([A-Z2-7]{4} ){7}[A-Z2-7]{4}</span>', page.text)
    secret = key_of(page.text)
    done = client.post("/backoffice/sign-in/enrol", data={"csrf_token": CSRF.search(page.text).group(1),
                                                          "code": pyotp.TOTP(secret).now()}, headers=EN)
    codes = re.findall(r"<li>([A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4})</li>", done.text)
    assert len(codes) == 10 and len(set(codes)) == 10
    stored = list(db.session.scalars(select(RecoveryCode.code_hash).where(RecoveryCode.agent_id == agent.id)))
    assert len(stored) == 10 and not any(code in "".join(stored) for code in codes)
    assert codes[0] not in client.get("/backoffice/account/recovery-codes", headers=EN).text  # shown once
    client.post("/backoffice/sign-out", data={"csrf_token": token(client, "/backoffice/")})

    password_step(client, "rec@example.test")
    signed_in = code_step(client, codes[0].lower().replace("-", " "))
    assert signed_in.status_code == 303 and client.get("/backoffice/", headers=EN).status_code == 200
    assert "recovery_code_used" in actions(agent)
    client.post("/backoffice/sign-out", data={"csrf_token": token(client, "/backoffice/")})
    password_step(client, "rec@example.test")
    again = code_step(client, codes[0])
    assert again.status_code == 422 and "used already" in again.text

    assert code_step(client, codes[1]).status_code == 303
    account = client.get("/backoffice/account/recovery-codes", headers=EN)
    assert "You have 8 unused recovery codes." in account.text
    wrong = client.post("/backoffice/account/recovery-codes", data={"csrf_token": CSRF.search(account.text).group(1),
                                                                     "code": "000000"}, headers=EN)
    assert wrong.status_code == 422
    assert db.session.scalar(select(func.count()).select_from(RecoveryCode)
                             .where(RecoveryCode.agent_id == agent.id, RecoveryCode.used_at.is_(None))) == 8
    next_code = pyotp.TOTP(secret).at(utcnow() + timedelta(seconds=30))  # the enrolment used the current one
    fresh = client.post("/backoffice/account/recovery-codes", data={"csrf_token": CSRF.search(account.text).group(1),
                                                                     "code": next_code}, headers=EN)
    new = re.findall(r"<li>([A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4})</li>", fresh.text)
    assert len(new) == 10 and "Your earlier recovery codes no longer work." in fresh.text
    client.post("/backoffice/sign-out", data={"csrf_token": token(client, "/backoffice/")})
    password_step(client, "rec@example.test")
    assert code_step(client, codes[2]).status_code == 422  # an old code: ended
    assert code_step(client, new[0]).status_code == 303


def test_the_overview_counts_the_partners_payments_apart_and_tells_the_rest(app, client, creditor, mine,
                                                                            supervisor):
    """A8: a payment the collection partner reports is not a portal payment; promises, plans, messages
    and the balance outstanding have their figures."""
    from app.debt_collection.services import PROVIDER
    from app.payments.services import settle
    with app.test_request_context():
        settle(mine.deferral.invoice_id, provider=PROVIDER, payment_id="partner:1", amount=1000,
               currency=mine.invoice.currency, method="debt_collection", received_at=utcnow(), actor="partner:x")
        db.session.commit()
    page = client.get("/backoffice/overview", headers=EN).text
    kpis = dict(re.findall(r"<dt>([^<]+)</dt><dd>([^<]+)", page))
    assert kpis["Payments through the portal"].strip() == "1"  # the manual one of `every_kind`, not the partner's
    assert kpis["Payments to the collection partner"].strip() == "1"
    assert kpis["Paid to the collection partner"].strip() == "NOK\u00a010.00"
    assert kpis["Messages from customers"].strip() == "1"
    assert kpis["Instalment plans agreed"].strip() == "0"  # asked for, not agreed
    from app.billing.models import Invoice
    from app.templating import money
    bills = [i for i in db.session.scalars(db.select(Invoice).where(Invoice.creditor_id == creditor.id))
             if i.balance > 0 and i.status not in ("paid", "cancelled", "written_off")]
    with app.test_request_context(headers=EN):
        owed = money(sum(i.balance for i in bills), creditor.currency)
    assert kpis["Balance outstanding"].strip() == owed and f"{len(bills)} open bills" in page
    assert 'class="chart wide"' in page


def test_every_message_sent_to_the_customer_is_on_the_timeline_with_its_words(app, client, mine, supervisor, smtp):
    """A7: our answer, as the customer received it by e-mail (the link's token redacted), on the case's
    timeline; only what went to the customer's own addresses."""
    from app.outbox.dispatcher import run_once
    from app.outbox.models import OutboxMessage
    page = f"/backoffice/requests/{mine.request.reference}"
    post(client, f"{page}/reply", {"message": "Målerstanden var anslått; vi har rettet den."}, page=page)
    with app.app_context():
        run_once()
    mail = next(m for m in smtp.messages if "Målerstanden var anslått" in m.get_body(("plain",)).get_content())
    assert "/l/" in mail.get_body(("plain",)).get_content()  # the e-mail carries a link to the bill
    sent = db.session.scalar(db.select(OutboxMessage).where(OutboxMessage.kind == "support.reply",
                                                            OutboxMessage.recipient == mail["To"]))
    assert sent.sent_text and "/l/[redacted]" in sent.sent_text and mail["Subject"] == sent.sent_subject
    case = client.get(f"/backoffice/customers/{mine.invoice.customer_id}", headers=EN).text
    assert "Our answer by e-mail" in case and "Målerstanden var anslått; vi har rettet den." in case
    assert "/l/[redacted]" in case and "status: Delivered" in case
    assert "bounce@example.test" not in case  # `every_kind`'s dead letter went to an address not the customer's


def test_the_answer_target_is_the_creditors_setting(app, creditor):
    from tests.functional.agents import cli
    shown = cli(app, "answer-target", creditor.slug)
    assert shown.exit_code == 0 and "answer within 1 working day." in shown.output
    changed = cli(app, "answer-target", creditor.slug, "--days", "2")
    assert changed.exit_code == 0 and "answer within 2 working days." in changed.output
    db.session.expire_all()
    assert creditor.answer_within_days == 2
    refused = cli(app, "answer-target", creditor.slug, "--days", "0")
    assert refused.exit_code != 0
    db.session.expire_all()
    assert creditor.answer_within_days == 2


def test_previewing_a_decision_that_cancels_the_bill_does_not_try_it(app, client, creditor, supervisor, tmp_path,
                                                                      monkeypatch):
    """Upholding a whole-bill dispute with nothing paid cancels the bill, which stops its payments at
    their providers: the preview says so without doing it."""
    from app.core.dates import local_today
    from app.payments import services as payments
    from app.resolutions.disputes import open_dispute
    from tests.factories import make_invoice
    monkeypatch.setattr(payments, "_cancel_at_provider", lambda *a, **k: pytest.fail("a provider was asked"))
    with app.test_request_context():
        invoice = make_invoice(creditor)
        dispute, _ = open_dispute(invoice, reason="wrong_amount", message="Not mine", line_ids=None, upload=None,
                                  attachment_dir=str(tmp_path), locale="en", submission_key="whole",
                                  today=local_today("NO", utcnow()))
        db.session.commit()
        reference, invoice_id = dispute.reference, invoice.id
    page = f"/backoffice/resolutions/{reference}"
    preview = post(client, f"{page}/decide", {"outcome": "upheld", "message": "", "preview": "1"}, page=page)
    assert preview.status_code == 200 and "If you send this decision:" in preview.text
    assert "Disputed → cancelled" in preview.text
    from app.billing.models import Invoice
    db.session.expire_all()
    assert db.session.get(Invoice, invoice_id).status == InvoiceStatus.DISPUTED
