"""A dunning message's fate, told by the providers: Twilio's signed status callbacks (from the local
SMS server, signed with the SDK's algorithm) and inbound STOP/START replies at /hooks/twilio/*, the
local SMTP server refusing a recipient, a DSN in the bounce mailbox (`flask outbox bounces`), and
the first opening of the link a message carried. Each failure moves the step to the next channel,
a letter at the last."""

from __future__ import annotations

import mailbox
from datetime import timedelta

import pytest
from sqlalchemy import select

from app.billing.models import Customer
from app.dunning import services
from app.dunning.models import Letter, LetterStatus, Message, MessageStatus, Notice, NoticeStatus
from app.extensions import db
from app.outbox.dispatcher import run_once
from app.outbox.feedback import INBOUND_PATH, STATUS_PATH
from app.outbox.models import OutboxMessage, OutboxStatus
from tests.support.twilio_server import TwilioServer, sign
from tests.unit.dunning.conftest import TODAY, bill, creditor_with_plan, run

BASE = "https://pay.example.test"
PHONE = "+4791234567"
SENDER = "+15005550006"


@pytest.fixture
def ctx(app, session):
    with app.test_request_context():
        yield


@pytest.fixture
def twilio(app, client, monkeypatch):
    """The local SMS server; its callbacks reach the app through the test client, at the public URL."""
    with TwilioServer() as server:
        for key, value in server.config(sender=SENDER).items():
            monkeypatch.setitem(app.config, key, value)

        def through_the_app(url: str, params: dict, headers: dict) -> int:
            assert url.startswith(BASE)
            return client.post(url.removeprefix(BASE), data=params, headers=headers, base_url=BASE).status_code

        server.transport = through_the_app
        yield server


@pytest.fixture
def norway(ctx):
    return creditor_with_plan("NO", "NO")


def messages_of(customer_id: int) -> list[Message]:
    db.session.expire_all()
    return list(db.session.scalars(select(Message).where(Message.customer_id == customer_id).order_by(Message.id)))


def overdue_bill(norway):
    creditor, plan = norway
    invoice = bill(creditor, plan, due=TODAY - timedelta(days=14))
    run(creditor, TODAY)
    return invoice


def test_sms_undelivered_then_email_bounced_ends_in_a_pending_letter(norway, twilio, smtp):
    invoice = overdue_bill(norway)
    twilio.undelivered.add(PHONE)
    smtp.refuse["c-1@example.test"] = "550 5.1.1 No such user"

    assert run_once().delivered == 1  # the SMS, accepted by Twilio
    (sms,) = messages_of(invoice.customer_id)
    assert sms.channel == "sms" and sms.status == MessageStatus.SENT
    assert twilio.send_callbacks() == [204, 204]  # "sent", then "undelivered" (30003)

    sms, email = messages_of(invoice.customer_id)
    assert (sms.status, email.channel, email.replaces_id) == (MessageStatus.FAILED, "email", sms.id)
    assert "undelivered" in sms.failure and "30003" in sms.failure
    assert run_once().dead == 1  # the relay refuses the address for good: a bounce
    assert smtp.messages == []

    sms, email, letter = messages_of(invoice.customer_id)
    assert (email.status, letter.channel, letter.status) == (MessageStatus.BOUNCED, "letter", MessageStatus.QUEUED)
    assert db.session.scalar(select(Letter.status).where(Letter.message_id == letter.id)) == LetterStatus.PENDING
    notice = db.session.scalars(select(Notice).where(Notice.invoice_id == invoice.id)).one()
    assert (notice.channel, notice.channel_index, notice.status) == ("letter", 2, NoticeStatus.SENT)


def test_callbacks_move_a_message_forward_only_and_are_idempotent(norway, twilio):
    invoice = overdue_bill(norway)
    run_once()
    callbacks = twilio.pending_callbacks
    # "delivered" arrives before "sent", and both twice: the message ends delivered, never back to sent.
    assert twilio.send_callbacks(order=lambda due: [*reversed(due), *due]) == [204] * 4
    (sms,) = messages_of(invoice.customer_id)
    assert sms.status == MessageStatus.DELIVERED
    outbox = db.session.get(OutboxMessage, sms.outbox_message_id)
    assert (outbox.provider_ref, outbox.provider_status) == (callbacks[0].params["MessageSid"], "delivered")
    assert db.session.scalar(select(Notice.status).where(Notice.invoice_id == invoice.id)) == NoticeStatus.DELIVERED


def test_repeated_failure_callbacks_fall_back_once(norway, twilio):
    invoice = overdue_bill(norway)
    twilio.failed.add(PHONE)
    run_once()
    twilio.send_callbacks(order=lambda due: due + due[1:] + due[1:])
    sms, email = messages_of(invoice.customer_id)
    assert (sms.status, email.channel) == (MessageStatus.FAILED, "email")


@pytest.mark.parametrize("tamper", ["unsigned", "forged", "other_params", "other_url"])
def test_an_unsigned_or_forged_callback_is_refused_and_changes_nothing(norway, twilio, client, tamper):
    invoice = overdue_bill(norway)
    twilio.failed.add(PHONE)
    run_once()
    _sent, failed = twilio.pending_callbacks
    params, signature = dict(failed.params), failed.signature
    if tamper == "forged":
        signature = sign("not-the-auth-token", failed.url, params).signature
    elif tamper == "other_params":
        params["MessageStatus"] = "undelivered"
    elif tamper == "other_url":
        signature = sign(twilio.auth_token, "https://evil.example.test" + STATUS_PATH, params).signature
    headers = {} if tamper == "unsigned" else {"X-Twilio-Signature": signature}
    answer = client.post(STATUS_PATH, data=params, headers=headers, base_url=BASE)
    assert answer.status_code == 403
    (sms,) = messages_of(invoice.customer_id)
    assert sms.status == MessageStatus.SENT
    assert db.session.get(OutboxMessage, sms.outbox_message_id).provider_status == "queued"


def test_a_signed_callback_without_its_fields_is_a_clear_400(twilio, client, session):
    callback = sign(twilio.auth_token, BASE + STATUS_PATH, {"MessageStatus": "delivered"})
    answer = client.post(STATUS_PATH, data=callback.params, headers={"X-Twilio-Signature": callback.signature},
                         base_url=BASE)
    assert answer.status_code == 400 and b"MessageSid" in answer.data


def test_the_hooks_are_not_there_while_sms_is_off(app, client, session, monkeypatch):
    monkeypatch.setitem(app.config, "SMS_PROVIDER", "")
    assert client.post(STATUS_PATH, data={"MessageSid": "SM1", "MessageStatus": "failed"}).status_code == 404


@pytest.mark.parametrize("word", ["STOP", " stop ", "Stopp", "STOPALL", "unsubscribe", "Cancel", "END", "quit."])
def test_a_stop_reply_stops_sms_and_the_run_writes_by_email(norway, twilio, word):
    creditor, plan = norway
    invoice = bill(creditor, plan, due=TODAY - timedelta(days=14))
    other = bill(creditor, plan, due=TODAY - timedelta(days=14), ref="C-2", phone="+4798765432")
    assert twilio.reply(PHONE, word, BASE + INBOUND_PATH, to=SENDER) == 200
    db.session.expire_all()
    customer = db.session.get(Customer, invoice.customer_id)
    assert customer.sms_stopped_at is not None
    assert db.session.get(Customer, other.customer_id).sms_stopped_at is None
    run(creditor, TODAY)
    assert [m.channel for m in messages_of(invoice.customer_id)] == ["email"]
    assert [m.channel for m in messages_of(other.customer_id)] == ["sms"]


def test_start_restarts_sms_and_other_texts_or_numbers_change_nothing(norway, twilio):
    creditor, plan = norway
    invoice = bill(creditor, plan, due=TODAY - timedelta(days=14))
    url = BASE + INBOUND_PATH
    assert twilio.reply(PHONE, "Why is it so much?", url, to=SENDER) == 200
    assert twilio.reply(PHONE, "STOP", url, to="+4740000000") == 200  # not our number
    db.session.expire_all()
    assert db.session.get(Customer, invoice.customer_id).sms_stopped_at is None
    twilio.reply(PHONE, "STOP", url, to=SENDER)
    twilio.reply(PHONE, "start", url, to=SENDER)
    db.session.expire_all()
    assert db.session.get(Customer, invoice.customer_id).sms_stopped_at is None
    run(creditor, TODAY)
    assert [m.channel for m in messages_of(invoice.customer_id)] == ["sms"]


def test_a_forged_stop_is_refused(norway, twilio, client):
    creditor, plan = norway
    invoice = bill(creditor, plan, due=TODAY - timedelta(days=14))
    params = {"From": PHONE, "To": SENDER, "Body": "STOP"}
    forged = sign("wrong-token", BASE + INBOUND_PATH, params)
    answer = client.post(INBOUND_PATH, data=params, headers={"X-Twilio-Signature": forged.signature}, base_url=BASE)
    assert answer.status_code == 403
    db.session.expire_all()
    assert db.session.get(Customer, invoice.customer_id).sms_stopped_at is None


def test_error_21610_stops_the_customer_and_falls_back_without_retrying(norway, twilio):
    invoice = overdue_bill(norway)
    twilio.opted_out.add(PHONE)
    report = run_once()
    assert (report.delivered, report.dead, report.retried) == (0, 1, 0)
    sms, email = messages_of(invoice.customer_id)
    assert sms.status == MessageStatus.FAILED and "21610" in sms.failure and email.channel == "email"
    assert db.session.get(Customer, invoice.customer_id).sms_stopped_at is not None
    assert len(twilio.requests) == 1


def dsn(message_id: str, *, status: str = "5.1.1", action: str = "failed") -> bytes:
    return (
        "From: MAILER-DAEMON@mx.example.test\r\nTo: bounces@pay.example.test\r\nSubject: Undelivered Mail\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.test\r\n\r\n"
        f"Final-Recipient: rfc822; c-1@example.test\r\nAction: {action}\r\nStatus: {status}\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 user unknown\r\n\r\n"
        "--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"Message-ID: {message_id}\r\nSubject: Reminder\r\nTo: c-1@example.test\r\n"
        "--B--\r\n"
    ).encode()


def test_a_dsn_in_the_bounce_mailbox_falls_back_to_a_letter(app, norway, smtp, tmp_path):
    creditor, plan = norway
    invoice = bill(creditor, plan, due=TODAY - timedelta(days=14))
    services.update_contact_points(invoice.customer, {"preferred_channel": "email"})
    run(creditor, TODAY)
    assert run_once().delivered == 1  # the relay took it; the bounce comes later, by mail
    (mail,) = smtp.messages
    box = mailbox.mbox(tmp_path / "bounces.mbox")
    box.add(mailbox.mboxMessage(dsn(mail["Message-ID"])))
    box.add(mailbox.mboxMessage(dsn(mail["Message-ID"], status="4.2.2", action="delayed")))  # only delayed
    box.add(mailbox.mboxMessage(dsn("<0000000000000000000000000000000000000000@pay.example.test>")))  # not ours
    box.add(mailbox.mboxMessage(b"From: someone@example.test\r\nSubject: hello\r\n\r\nnot a bounce\r\n"))
    box.flush()
    result = app.test_cli_runner().invoke(args=["outbox", "bounces", "--mbox", str(tmp_path / "bounces.mbox")])
    assert result.exit_code == 0, result.output
    assert "1 bounce recorded, 0 known already, 1 not found; 2 messages ignored" in result.output
    email, letter = messages_of(invoice.customer_id)
    assert (email.channel, email.status, letter.channel) == ("email", MessageStatus.BOUNCED, "letter")
    again = app.test_cli_runner().invoke(args=["outbox", "bounces", "--mbox", str(tmp_path / "bounces.mbox")])
    assert "1 known already" in again.output and len(messages_of(invoice.customer_id)) == 2


def test_a_missing_mbox_is_a_clear_error(app, session, tmp_path):
    result = app.test_cli_runner().invoke(args=["outbox", "bounces", "--mbox", str(tmp_path / "nope.mbox")])
    assert result.exit_code != 0 and "nope.mbox" in result.output


def test_the_first_opening_of_a_messages_link_marks_it_opened(norway, twilio, client):
    invoice = overdue_bill(norway)
    run_once()
    twilio.send_callbacks()
    (sms,) = messages_of(invoice.customer_id)
    assert sms.status == MessageStatus.DELIVERED and sms.link_id is not None
    url = next(word for word in twilio.messages[0]["body"].split() if word.startswith(BASE + "/l/"))
    assert client.get(url.removeprefix(BASE), base_url=BASE).status_code == 303
    (sms,) = messages_of(invoice.customer_id)
    assert sms.status == MessageStatus.OPENED
    opened_at = sms.status_at
    assert db.session.scalar(select(Notice.status).where(Notice.invoice_id == invoice.id)) == NoticeStatus.OPENED
    twilio.send_callbacks()  # nothing pending; a late "delivered" would not undo it either
    assert messages_of(invoice.customer_id)[0].status_at == opened_at


def test_a_late_delivered_callback_does_not_undo_opened(norway, twilio, client):
    invoice = overdue_bill(norway)
    run_once()
    body = twilio.messages[0]["body"]
    url = next(word for word in body.split() if word.startswith(BASE + "/l/"))
    client.get(url.removeprefix(BASE), base_url=BASE)
    twilio.send_callbacks()
    (sms,) = messages_of(invoice.customer_id)
    assert sms.status == MessageStatus.OPENED
    assert db.session.get(OutboxMessage, sms.outbox_message_id).status == OutboxStatus.DELIVERED


def test_the_back_office_timeline_shows_the_statuses_and_why(app, client, norway, twilio, smtp):
    from flask_babel import force_locale

    from tests.functional.agents import EN, enrol, make_agent
    from tests.functional.test_dunning_bill_page import words

    creditor, _plan = norway
    invoice = overdue_bill(norway)
    twilio.undelivered.add(PHONE)
    smtp.refuse["c-1@example.test"] = "550 5.1.1 No such user"
    run_once()
    twilio.send_callbacks()
    run_once()
    db.session.commit()
    make_agent(app, creditor, "agent@example.test", "agent")
    enrol(client, "agent@example.test")
    page = words(client.get(f"/backoffice/customers/{invoice.customer_id}", headers=EN).text)
    assert "Reminder by SMS · status: failed (" in page and "SMS undelivered (Twilio error 30003)" in page
    assert "Reminder by e-mail · status: bounced (" in page and "Payment reminder by letter · status: queued" in page
    labels = {}
    for locale in ("nb", "de"):
        with force_locale(locale):
            labels[locale] = [MessageStatus.label_of(s) for s in MessageStatus]
    assert labels == {"nb": ["i kø", "sendt", "levert", "feilet", "avvist", "åpnet"],
                      "de": ["in der Warteschlange", "verschickt", "zugestellt", "fehlgeschlagen", "unzustellbar",
                             "geöffnet"]}
