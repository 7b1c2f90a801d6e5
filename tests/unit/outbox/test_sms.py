"""The SMS channel, through the real dispatcher and Twilio's own SDK against a local Twilio API:
delivered in the message's language; refused for good (a bad number, an unsubscribed one, a text
too long) or retried (5xx, 429, an outage, a timeout, our credentials) with the same idempotency
token every time; a resend after a crash is not sent twice; the auth token in no error or log.

The dispatcher commits; under the `session` fixture a commit is a savepoint, so each test's data
still goes away at the end."""

from __future__ import annotations

import base64
import logging
import sys
import time
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from flask_babel import format_decimal, gettext

from app.extensions import db
from app.models import utcnow
from app.outbox import dispatcher as services
from app.outbox.base import renderers
from app.outbox.dispatcher import open_channels, run_once
from app.outbox.models import OutboxMessage, OutboxStatus
from app.outbox.services import enqueue
from app.outbox.sms import SmsChannel, SmsSettings
from tests.support.twilio_server import TwilioServer
from tests.unit.outbox.conftest import orphan

pytestmark = pytest.mark.usefixtures("ctx")

NUMBER = "+4791234567"


def render_sms(message) -> str:
    """A test kind whose text depends on the locale: a translated label and a number in its format."""
    if "text" in message.payload:
        return message.payload["text"]
    return f"{gettext('Amount due')}: {format_decimal(Decimal('1234.5'))}"


@pytest.fixture(autouse=True)
def sms_kind(app):
    renderers().register("sms", "test_sms", render_sms)


@pytest.fixture
def point_at(app, monkeypatch):
    """Point the app's SMS settings at a Twilio server (nothing need listen there)."""

    def point(server: TwilioServer, **overrides) -> TwilioServer:
        for key, value in {**server.config(), **overrides}.items():
            monkeypatch.setitem(app.config, key, value)
        return server

    return point


@pytest.fixture
def twilio(point_at):
    with TwilioServer() as server:
        yield point_at(server)


def add(*, recipient: str = NUMBER, locale: str | None = "en", key: str | None = None, **payload) -> OutboxMessage:
    message = enqueue("sms", "test_sms", recipient, payload, idempotency_key=key or f"sms:{uuid.uuid4()}",
                      creditor_id=None, locale=locale)
    db.session.commit()
    return message


def tokens(server: TwilioServer) -> list[str | None]:
    return [r.headers.get("i-twilio-idempotency-token") for r in server.requests]


class TestDelivery:
    def test_delivered_once_with_its_idempotency_token(self, twilio):
        message = add(key="sms:7")
        report = run_once()
        assert (report.delivered, report.retried, report.dead) == (1, 0, 0)
        assert message.status == OutboxStatus.DELIVERED and message.attempts == 1 and message.last_error is None
        assert run_once().claimed == 0
        [sent] = twilio.messages
        assert (sent["to"], sent["from"], sent["body"]) == (NUMBER, "+15005550006", "Amount due: 1,234.5")
        assert sent["status"] == "queued" and sent["sid"].startswith("SM") and len(sent["sid"]) == 34
        assert sent["idempotency_token"] == "sms:7"
        [request] = twilio.requests
        assert request.path == f"/2010-04-01/Accounts/{twilio.account_sid}/Messages.json"
        assert request.form == {"To": NUMBER, "From": "+15005550006", "Body": "Amount due: 1,234.5",
                                "StatusCallback": "https://pay.example.test/hooks/twilio/status"}
        assert message.provider_ref == sent["sid"] and message.provider_status == "queued"

    @pytest.mark.parametrize("locale, text", [
        ("en", "Amount due: 1,234.5"),
        ("de", "Zu zahlen: 1.234,5"),
        ("nb", "Å betale: 1\u00a0234,5"),
        (None, "Amount due: 1,234.5"),  # no locale: the default
    ])
    def test_the_text_is_written_in_the_messages_locale(self, twilio, locale, text):
        add(locale=locale)
        assert run_once().delivered == 1
        assert twilio.messages[0]["body"] == text

    def test_an_alphanumeric_sender(self, twilio, point_at):
        point_at(twilio, SMS_FROM="Acme AS")
        add()
        assert run_once().delivered == 1 and twilio.messages[0]["from"] == "Acme AS"

    def test_one_client_serves_the_batch(self, twilio):
        for n in range(4):
            add(text=f"Note {n}")
        assert run_once().delivered == 4
        assert [m["body"] for m in twilio.messages] == [f"Note {n}" for n in range(4)]
        assert len(set(tokens(twilio))) == 4


class TestRefusedForGood:
    @pytest.mark.parametrize("recipient", ["4791234567", "+47 912 34 567", "+4791", "+0791234567", "kari@example.test"])
    def test_a_recipient_that_is_not_e164_is_dead_before_any_request(self, twilio, monkeypatch, recipient):
        def not_rendered(message):  # rendering may write (a link the text carries): not for nothing
            raise AssertionError("rendered for a recipient refused anyway")

        monkeypatch.setattr(sys.modules[__name__], "render_sms", not_rendered)
        message = add(recipient=recipient)
        assert run_once().dead == 1
        assert message.status == OutboxStatus.DEAD and message.attempts == 1 and "E.164" in message.last_error
        assert twilio.requests == []

    def test_a_number_twilio_calls_invalid_is_dead_at_once(self, twilio):
        twilio.invalid_numbers.add("+4790000000")
        message = add(recipient="+4790000000")
        other = add()
        report = run_once()
        assert message.status == OutboxStatus.DEAD and message.attempts == 1
        assert "400" in message.last_error and "21211" in message.last_error
        assert other.status == OutboxStatus.DELIVERED and report.delivered == 1  # the client is still good

    def test_an_unsubscribed_recipient_is_dead_at_once(self, twilio):
        twilio.opted_out.add(NUMBER)
        message = add()
        assert run_once().dead == 1 and "21610" in message.last_error and "unsubscribed" in message.last_error

    def test_not_a_mobile_number_is_dead_at_once(self, twilio):
        twilio.fail_next(400, code=21614)
        message = add()
        assert run_once().dead == 1 and "21614" in message.last_error

    @pytest.mark.parametrize("text, length", [("x" * 1601, 1601), ("😀" * 801, 1602)])
    def test_a_text_longer_than_twilio_takes_is_dead_before_any_request(self, twilio, text, length):
        message = add(text=text)
        assert run_once().dead == 1
        assert message.status == OutboxStatus.DEAD and f"{length} characters" in message.last_error
        assert twilio.requests == []

    def test_a_text_of_1600_characters_goes(self, twilio):
        add(text="x" * 1600)
        assert run_once().delivered == 1 and twilio.messages[0]["num_segments"] == "11"

    def test_an_empty_text_is_dead(self, twilio):
        message = add(text="  ")
        assert run_once().dead == 1 and "empty" in message.last_error and twilio.requests == []

    def test_a_kind_no_longer_rendered_is_dead(self, twilio):
        message = orphan("sms", NUMBER, "sms:unknown")
        assert run_once().dead == 1
        assert "no SMS text" in message.last_error and "no_such_kind" in message.last_error and twilio.requests == []

    def test_with_sms_off_an_sms_is_dead_as_an_unknown_channel(self, app, twilio, monkeypatch):
        monkeypatch.setitem(app.config, "SMS_PROVIDER", "")
        message = add()
        assert run_once().dead == 1 and message.last_error == "no channel 'sms'" and twilio.requests == []


class TestRetried:
    def test_a_server_error_is_retried_with_backoff_then_delivered(self, twilio):
        twilio.fail_next(500)
        message = add(key="sms:500")
        t0 = utcnow()
        assert run_once(now=t0).retried == 1
        assert message.status == OutboxStatus.PENDING and message.attempts == 1
        assert t0 + timedelta(seconds=15) <= message.next_attempt_at <= t0 + timedelta(seconds=30)
        assert "500" in message.last_error and "20500" in message.last_error
        assert run_once(now=t0 + timedelta(seconds=10)).claimed == 0  # not due yet
        assert run_once(now=t0 + timedelta(seconds=31)).delivered == 1
        assert message.status == OutboxStatus.DELIVERED and message.attempts == 2 and message.last_error is None
        assert len(twilio.messages) == 1
        assert tokens(twilio) == ["sms:500", "sms:500"]  # the same token on every try

    def test_too_many_requests_is_retried(self, twilio):
        twilio.fail_next(429, retry_after=60)
        message = add()
        t0 = utcnow()
        assert run_once(now=t0).retried == 1 and "429" in message.last_error and "20429" in message.last_error
        assert run_once(now=t0 + timedelta(minutes=1)).delivered == 1

    def test_retried_while_twilio_is_down_then_delivered(self, point_at):
        server = point_at(TwilioServer())  # not started: nothing listens there yet
        message = add(key="sms:down")
        t0 = utcnow()
        assert run_once(now=t0).retried == 1
        assert message.status == OutboxStatus.PENDING and "ConnectionError" in message.last_error
        with server:
            assert run_once(now=t0 + timedelta(seconds=31)).delivered == 1
            server.stop()  # an outage after one was sent ...
            later = add()
            assert run_once(now=t0 + timedelta(seconds=40)).retried == 1
            server.start()  # ... and back, on the same port
            assert run_once(now=t0 + timedelta(minutes=5)).delivered == 1
        assert message.status == OutboxStatus.DELIVERED
        assert later.status == OutboxStatus.DELIVERED and later.attempts == 2
        assert [m["idempotency_token"] for m in server.messages] == ["sms:down", later.idempotency_key]

    def test_a_timeout_is_retried_and_not_sent_twice(self, twilio, point_at):
        point_at(twilio, SMS_TIMEOUT_SECONDS=1)
        twilio.delay = 1.3  # Twilio queues the message, but answers after we gave up
        message = add(key="sms:slow")
        t0 = utcnow()
        assert run_once(now=t0).retried == 1 and "Timeout" in message.last_error
        twilio.delay = 0
        deadline = time.monotonic() + 5
        while not twilio.messages and time.monotonic() < deadline:  # the slow request finishes
            time.sleep(0.02)
        assert run_once(now=t0 + timedelta(seconds=31)).delivered == 1
        assert len(twilio.messages) == 1 and tokens(twilio) == ["sms:slow", "sms:slow"]

    def test_dead_after_the_last_attempt(self, app, twilio, monkeypatch):
        monkeypatch.setitem(app.config, "OUTBOX_MAX_ATTEMPTS", 3)
        twilio.fail_next(503, times=10, code=20503, message="Service unavailable")
        message = add()
        now, outcomes = utcnow(), []
        for _ in range(4):
            report = run_once(now=now)
            outcomes.append((report.retried, report.dead))
            now += timedelta(hours=2)
        assert outcomes == [(1, 0), (1, 0), (0, 1), (0, 0)]
        assert message.status == OutboxStatus.DEAD and message.attempts == 3 and "503" in message.last_error


class TestCredentials:
    def test_wrong_credentials_are_retried_and_the_token_never_shows(self, twilio, point_at, caplog):
        wrong = "f" * 32
        point_at(twilio, TWILIO_AUTH_TOKEN=wrong)
        message = add()
        with caplog.at_level(logging.DEBUG):
            assert run_once().retried == 1
        assert message.status == OutboxStatus.PENDING and "401" in message.last_error and "20003" in message.last_error
        basic = base64.b64encode(f"{twilio.account_sid}:{wrong}".encode()).decode()
        for secret in (wrong, basic):
            assert secret not in message.last_error and secret not in caplog.text
        assert twilio.messages == []

    def test_fixed_credentials_deliver_on_the_next_try(self, twilio, point_at):
        point_at(twilio, TWILIO_AUTH_TOKEN="0" * 32)
        message = add()
        t0 = utcnow()
        assert run_once(now=t0).retried == 1
        point_at(twilio)  # an operator fixed TWILIO_AUTH_TOKEN
        assert run_once(now=t0 + timedelta(seconds=31)).delivered == 1 and message.attempts == 2

    def test_a_forbidden_answer_is_retried(self, twilio):
        twilio.fail_next(403, code=20003, message="Permission denied")
        message = add()
        assert run_once().retried == 1 and "403" in message.last_error

    def test_a_token_in_an_error_text_is_blanked(self, twilio):
        twilio.fail_next(500, message=f"echoing {twilio.auth_token}")
        message = add()
        assert run_once().retried == 1
        assert twilio.auth_token not in message.last_error and "[redacted]" in message.last_error

    def test_the_token_is_not_in_the_settings_repr(self, twilio, app):
        settings = SmsSettings.from_config(app.config)
        assert twilio.auth_token not in repr(settings) and twilio.account_sid in repr(settings)


class TestAtLeastOnce:
    def test_a_crash_after_sending_resends_and_twilio_keeps_one(self, app, twilio, monkeypatch):
        message = add(key="sms:crash")

        def crash(*args):
            raise RuntimeError("the process died here")

        t0 = utcnow()
        mark_delivered = services._mark_delivered
        monkeypatch.setattr(services, "_mark_delivered", crash)
        with pytest.raises(RuntimeError):
            run_once(now=t0)
        db.session.rollback()
        monkeypatch.setattr(services, "_mark_delivered", mark_delivered)
        assert message.status == OutboxStatus.PENDING and message.attempts == 1
        lease = timedelta(seconds=app.config["OUTBOX_LEASE_SECONDS"])
        assert run_once(now=t0 + lease + timedelta(seconds=1)).delivered == 1
        assert message.status == OutboxStatus.DELIVERED and message.attempts == 2
        assert tokens(twilio) == ["sms:crash", "sms:crash"]
        assert len(twilio.messages) == 1  # the second request got the first message back


class TestChannels:
    def test_sms_is_opened_only_when_a_provider_is_set(self, app, twilio, monkeypatch):
        channels = open_channels(app.config)
        assert set(channels) == {"email", "sms", "webhook"} and isinstance(channels["sms"], SmsChannel)
        for channel in channels.values():
            channel.close()
        monkeypatch.setitem(app.config, "SMS_PROVIDER", "")
        assert set(open_channels(app.config)) == {"email", "webhook"}

    def test_the_client_is_the_channels_own(self, twilio, app):
        first, second = SmsChannel(SmsSettings.from_config(app.config)), SmsChannel(SmsSettings.from_config(app.config))
        assert first._client is not second._client
        assert first._client.api.base_url == twilio.base_url
        assert first._client.auth == (twilio.account_sid, twilio.auth_token)
