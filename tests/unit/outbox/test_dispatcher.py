"""The outbox: idempotent enqueue; the dispatcher delivers once, retries with backoff, gives up into
the dead letters, resends after a crash with the same Message-ID; replay; no secret in any error.

The dispatcher commits; under the `session` fixture a commit is a savepoint, so each test's data
still goes away at the end."""

from __future__ import annotations

import base64
import logging
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.errors import Conflict
from app.extensions import db
from app.models import utcnow
from app.outbox import dispatcher as services
from app.outbox.base import renderers
from app.outbox.dispatcher import Policy, backoff, claim, run_once
from app.outbox.email import RenderedEmail, message_id
from app.outbox.models import OutboxMessage, OutboxStatus
from app.outbox.services import enqueue, replay
from tests.support.smtp import SmtpServer, free_port
from tests.unit.outbox.conftest import MAIL_FROM, orphan

pytestmark = pytest.mark.usefixtures("ctx")


def add(n: int = 1, *, key: str | None = None, recipient: str | None = None) -> OutboxMessage:
    message = enqueue("email", "test_note", recipient or f"kari{n}@example.test", {"n": n},
                      idempotency_key=key or f"test:{uuid.uuid4()}", creditor_id=None, locale="en")
    db.session.commit()
    return message


def policy(app) -> Policy:
    return Policy.from_config(app.config)


class TestEnqueue:
    def test_same_key_gives_the_same_message(self):
        first = enqueue("email", "test_note", "a@example.test", {"n": 1}, idempotency_key="k-1", creditor_id=None,
                        locale="en")
        again = enqueue("email", "test_note", "b@example.test", {"n": 2}, idempotency_key="k-1", creditor_id=None,
                        locale="nb")
        assert again is first and again.recipient == "a@example.test"
        db.session.commit()
        first_id = first.id
        db.session.expunge_all()
        later = enqueue("email", "test_note", "c@example.test", {"n": 3}, idempotency_key="k-1", creditor_id=None,
                        locale="de")
        assert later.id == first_id and later.payload == {"n": 1}
        count = select(func.count(OutboxMessage.id)).where(OutboxMessage.idempotency_key == "k-1")
        assert db.session.scalar(count) == 1

    def test_enqueue_does_not_commit(self):
        enqueue("email", "test_note", "a@example.test", {"n": 1}, idempotency_key="k-2", creditor_id=None, locale="en")
        db.session.rollback()  # the caller's transaction fails: the message goes with it
        assert db.session.scalar(select(OutboxMessage).where(OutboxMessage.idempotency_key == "k-2")) is None


class TestDelivery:
    def test_delivered_once_with_its_idempotency_key(self, smtp):
        message = add(7, key="note:7")
        report = run_once()
        assert (report.delivered, report.retried, report.dead) == (1, 0, 0)
        assert message.status == OutboxStatus.DELIVERED and message.delivered_at is not None and message.attempts == 1
        assert run_once().claimed == 0
        assert len(smtp.messages) == 1
        sent = smtp.messages[0]
        assert sent["Message-ID"] == message_id("note:7", "pay.example.test")
        assert sent["X-Idempotency-Key"] == "note:7"
        assert sent["From"].addresses[0].display_name == "Acme AS" and sent["From"].addresses[0].addr_spec == MAIL_FROM
        assert sent["Reply-To"] == "help@acme.test" and sent["To"] == "kari7@example.test"
        assert sent["Auto-Submitted"] == "auto-generated"
        assert sent.get_content_type() == "multipart/alternative"
        assert sent.get_body(("plain",)).get_content().strip() == "Note 7"
        assert sent.get_body(("html",)).get_content().strip() == "<p>Note 7</p>"
        assert smtp.envelopes[0] == (MAIL_FROM, ["kari7@example.test"])

    def test_one_connection_serves_the_batch(self, smtp):
        for n in range(5):
            add(n)
        assert run_once().delivered == 5 and len(smtp.messages) == 5

    def test_retry_with_backoff_while_the_server_is_down_then_delivered(self, app, mail_settings):
        server = mail_settings(SmtpServer(port=free_port()))  # nothing listens there yet
        message = add()
        t0 = utcnow()
        assert run_once(now=t0).retried == 1
        assert message.status == OutboxStatus.PENDING and message.attempts == 1
        assert t0 + timedelta(seconds=15) <= message.next_attempt_at <= t0 + timedelta(seconds=30)
        assert "ConnectionRefusedError" in message.last_error
        assert run_once(now=t0 + timedelta(seconds=10)).claimed == 0  # not due yet
        with server:
            assert run_once(now=t0 + timedelta(seconds=31)).delivered == 1
        assert message.status == OutboxStatus.DELIVERED and message.attempts == 2 and message.last_error is None
        assert len(server.messages) == 1

    def test_dead_after_the_last_attempt(self, app, mail_settings, monkeypatch):
        monkeypatch.setitem(app.config, "OUTBOX_MAX_ATTEMPTS", 3)
        mail_settings(SmtpServer(port=free_port()))
        message = add()
        now = utcnow()
        outcomes = []
        for _ in range(4):
            report = run_once(now=now)
            outcomes.append((report.retried, report.dead))
            now += timedelta(hours=2)
        assert outcomes == [(1, 0), (1, 0), (0, 1), (0, 0)]
        assert message.status == OutboxStatus.DEAD and message.attempts == 3
        assert "ConnectionRefusedError" in message.last_error

    @pytest.mark.parametrize("refusal, status", [
        ("550 5.1.1 No such user here", OutboxStatus.DEAD),
        ("450 4.2.1 Mailbox busy, try later", OutboxStatus.PENDING),
    ])
    def test_a_refused_recipient_is_dead_at_once_only_for_good(self, smtp, refusal, status):
        message = add(recipient="nobody@example.test")
        smtp.refuse["nobody@example.test"] = refusal
        other = add(2)
        report = run_once()
        assert message.status == status and message.attempts == 1 and refusal[:3] in message.last_error
        assert other.status == OutboxStatus.DELIVERED and report.delivered == 1  # the connection survives a refusal

    def test_message_refused_at_data_with_5xx_is_dead(self, smtp):
        smtp.data_answer = "554 5.7.1 Message rejected"
        message = add()
        assert run_once().dead == 1 and message.status == OutboxStatus.DEAD and "554" in message.last_error

    def test_a_kind_nothing_renders_is_refused_when_written(self, smtp):
        with pytest.raises(LookupError, match="no_such_kind"):
            enqueue("email", "no_such_kind", "a@example.test", {}, idempotency_key="k-3", creditor_id=None,
                    locale="en")
        assert db.session.scalar(select(func.count()).select_from(OutboxMessage)) == 0

    def test_a_kind_no_longer_rendered_is_dead(self, smtp):
        message = orphan("email", "a@example.test", "k-3")
        run_once()
        assert message.status == OutboxStatus.DEAD and "no_such_kind" in message.last_error and not smtp.messages


def render_and_write(message) -> RenderedEmail:
    """A kind whose rendering writes to the session before it is sent (as a dunning reminder issues a link)."""
    message.provider_status = "rendered"
    db.session.flush()
    return RenderedEmail(subject=f"Written {message.payload['n']}", text="text", html="<p>html</p>")


class TestBatch:
    """One transaction per batch: each message in a savepoint, the delivered ones recorded together."""

    @pytest.fixture(autouse=True)
    def written_kind(self, app):
        renderers().register("email", "test_written", render_and_write)

    def add_written(self, n: int, recipient: str | None = None) -> OutboxMessage:
        message = enqueue("email", "test_written", recipient or f"kari{n}@example.test", {"n": n},
                          idempotency_key=f"written:{uuid.uuid4()}", creditor_id=None, locale="en")
        db.session.commit()
        return message

    def test_one_refused_for_good_one_to_retry_and_the_others_delivered_once(self, smtp):
        messages = [self.add_written(n) for n in range(6)]
        smtp.refuse[messages[1].recipient] = "550 5.1.1 No such user here"
        smtp.refuse[messages[4].recipient] = "450 4.2.1 Mailbox busy, try later"
        report = services.dispatch(10)
        assert (report.claimed, report.delivered, report.retried, report.dead) == (6, 4, 1, 1)
        delivered = [messages[n] for n in (0, 2, 3, 5)]
        assert all(m.status == OutboxStatus.DELIVERED and m.attempts == 1 and m.delivered_at for m in delivered)
        assert all(m.provider_status == "sent" and m.sent_subject.startswith("Written") for m in delivered)
        dead, retried = messages[1], messages[4]
        assert dead.status == OutboxStatus.DEAD and "550" in dead.last_error
        assert retried.status == OutboxStatus.PENDING and retried.attempts == 1 and "450" in retried.last_error
        assert retried.next_attempt_at > utcnow()
        # What their rendering wrote ("rendered") went with their savepoint; a bounce is recorded with the failure.
        assert (dead.provider_status, retried.provider_status) == ("bounced", None)
        assert all(m.sent_subject is None and m.delivered_at is None for m in (dead, retried))
        received = smtp.message_ids()
        assert sorted(received) == sorted(message_id(m.idempotency_key, "pay.example.test") for m in delivered)
        assert services.dispatch(10).claimed == 0  # nothing is due again: the retry waits for its backoff

    def test_a_crash_mid_batch_keeps_what_was_recorded_and_sends_the_rest_again(self, app, smtp, monkeypatch):
        monkeypatch.setattr(services, "RECORD_SECONDS", 0)  # every delivery recorded before the next message
        messages = [self.add_written(n) for n in range(4)]

        def dies_on_the_third(message):
            if message.payload["n"] == 2:
                raise KeyboardInterrupt("the dispatcher was stopped here")  # not an Exception: nothing records it
            return render_and_write(message)

        registered = renderers()._by
        monkeypatch.setattr(renderers(), "_by", {**registered, ("email", "test_written"): dies_on_the_third})
        t0 = utcnow()
        with pytest.raises(KeyboardInterrupt):
            services.dispatch(10, now=t0)
        db.session.rollback()
        db.session.expire_all()
        assert [m.status for m in messages] == [OutboxStatus.DELIVERED] * 2 + [OutboxStatus.PENDING] * 2
        monkeypatch.setattr(renderers(), "_by", registered)
        lease = timedelta(seconds=app.config["OUTBOX_LEASE_SECONDS"])
        report = run_once(now=t0 + lease + timedelta(seconds=1))
        assert report.delivered == 2 and all(m.status == OutboxStatus.DELIVERED for m in messages)
        assert [m.attempts for m in messages] == [1, 1, 2, 2]
        assert len(smtp.messages) == 4  # the first two were not sent again

    def test_the_batch_is_read_in_one_statement_and_prepared_once(self, smtp, monkeypatch):
        seen: list[list[int]] = []
        preparers = {**renderers()._preparers, "test_written": lambda batch: seen.append([m.id for m in batch])}
        monkeypatch.setattr(renderers(), "_preparers", preparers)
        messages = [self.add_written(n) for n in range(3)]
        add(9)  # another kind: not given to the preparer
        assert services.dispatch(10).delivered == 4
        assert seen == [[m.id for m in messages]]
        assert all(m.prepared is None for m in messages)  # cleared with the batch


class TestAtLeastOnce:
    def test_a_crash_after_sending_resends_with_the_same_message_id(self, app, smtp, monkeypatch):
        message = add(key="note:crash")
        t0 = utcnow()

        def crash(*args):
            raise RuntimeError("the process died here")

        mark_delivered = services._mark_delivered
        monkeypatch.setattr(services, "_mark_delivered", crash)
        with pytest.raises(RuntimeError):
            run_once(now=t0)
        db.session.rollback()
        monkeypatch.setattr(services, "_mark_delivered", mark_delivered)
        assert message.status == OutboxStatus.PENDING and message.attempts == 1
        assert run_once(now=t0 + timedelta(minutes=1)).claimed == 0  # its lease still holds
        lease = timedelta(seconds=app.config["OUTBOX_LEASE_SECONDS"])
        assert run_once(now=t0 + lease + timedelta(seconds=1)).delivered == 1
        assert message.status == OutboxStatus.DELIVERED and message.attempts == 2
        assert smtp.message_ids() == [message_id("note:crash", "pay.example.test")] * 2

    def test_a_claimed_message_is_not_claimed_again_within_its_lease(self, app):
        message = add()
        now = utcnow()
        assert claim(10, now=now, policy=policy(app)) == ([(message.id, 1)], 0)
        assert claim(10, now=now, policy=policy(app)) == ([], 0)

    def test_a_dispatcher_past_its_lease_cannot_overwrite_the_next_ones_result(self, app):
        message = add()
        now = utcnow()
        claim(10, now=now, policy=policy(app))
        later = now + timedelta(seconds=app.config["OUTBOX_LEASE_SECONDS"] + 1)
        assert claim(10, now=later, policy=policy(app)) == ([(message.id, 2)], 0)
        services._mark_delivered([(message.id, 1)])  # the first dispatcher, late
        db.session.commit()
        assert message.status == OutboxStatus.PENDING
        services._mark_delivered([(message.id, 2)])
        db.session.commit()
        assert message.status == OutboxStatus.DELIVERED

    def test_a_batch_sends_only_in_the_first_half_of_its_lease(self, app, smtp, monkeypatch):
        """A batch that has used half its lease (a slow server, a dispatcher starved of CPU) gives back what
        it has not sent, due at once and its attempt uncounted: never sent after its lease ran out, when
        another dispatcher may have claimed it too."""
        first, second, third = add(1), add(2), add(3)
        half = app.config["OUTBOX_LEASE_SECONDS"] / 2
        clock = [1000.0]
        monkeypatch.setattr(services, "_clock", lambda: clock[0])
        deliver = services._deliver

        def slow(*args, **kwargs):  # the first message takes just over half the lease
            outcome = deliver(*args, **kwargs)
            clock[0] += half + 0.5
            return outcome

        monkeypatch.setattr(services, "_deliver", slow)
        t0 = utcnow()
        report = run_once(now=t0)
        assert (report.delivered, report.released) == (1, 2) and "2 given back unsent" in str(report)
        assert first.status == OutboxStatus.DELIVERED and first.attempts == 1
        for message in (second, third):
            assert message.status == OutboxStatus.PENDING and message.attempts == 0
            assert message.next_attempt_at <= t0 + timedelta(seconds=half + 1)  # due now, not after the lease
        assert len(smtp.message_ids()) == 1
        monkeypatch.setattr(services, "_deliver", deliver)
        assert run_once(now=t0 + timedelta(seconds=half + 1)).delivered == 2  # the next run sends them
        assert second.attempts == third.attempts == 1 and len(set(smtp.message_ids())) == 3

    def test_a_message_whose_last_try_never_finished_is_dead(self, app):
        message = add()
        message.attempts, message.last_error = app.config["OUTBOX_MAX_ATTEMPTS"], "timed out"
        db.session.commit()
        assert claim(10, now=utcnow(), policy=policy(app)) == ([], 1)
        assert message.status == OutboxStatus.DEAD and "timed out" in message.last_error


class TestReplay:
    def test_replay_puts_a_dead_message_back(self, smtp):
        message = add(recipient="nobody@example.test")
        smtp.refuse["nobody@example.test"] = "550 5.1.1 No such user"
        run_once()
        assert message.status == OutboxStatus.DEAD
        del smtp.refuse["nobody@example.test"]  # the customer's address was fixed at their provider
        assert replay(message.id) is message
        db.session.commit()
        assert message.status == OutboxStatus.PENDING and message.attempts == 0
        assert run_once().delivered == 1 and message.status == OutboxStatus.DELIVERED

    def test_only_dead_messages_are_replayed(self, smtp):
        message = add()
        with pytest.raises(Conflict):
            replay(message.id)
        run_once()
        with pytest.raises(Conflict):
            replay(message.id)
        assert replay(10**9) is None


class TestBackoff:
    def test_doubles_from_the_base_up_to_the_cap_with_half_of_it_random(self, app):
        p = policy(app)
        longest = [backoff(n, p, rng=lambda low, high: high).total_seconds() for n in range(1, 10)]
        shortest = [backoff(n, p, rng=lambda low, high: low).total_seconds() for n in range(1, 10)]
        assert longest == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]
        assert shortest == [s / 2 for s in longest]
        assert all(15 <= backoff(1, p).total_seconds() <= 30 for _ in range(50))


AUTH_WITHOUT_TLS = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


@AUTH_WITHOUT_TLS
def test_no_password_in_errors_or_logs(app, mail_settings, caplog):
    password = "hunter2-very-secret"
    with SmtpServer(auth=("portal", "the-right-one")) as server:
        mail_settings(server)
        app.config["MAIL_PASSWORD"] = password  # restored by monkeypatch with the rest
        message = add()
        with caplog.at_level(logging.DEBUG):
            assert run_once().retried == 1
    assert "535" in message.last_error
    forms = [password, base64.b64encode(password.encode()).decode(),
             base64.b64encode(f"\0portal\0{password}".encode()).decode()]
    for form in forms:
        assert form not in message.last_error and form not in caplog.text


@AUTH_WITHOUT_TLS
def test_login_with_the_right_password_delivers(app, mail_settings):
    with SmtpServer(auth=("portal", "the-right-one")) as server:
        mail_settings(server)
        add()
        assert run_once().delivered == 1 and len(server.messages) == 1
