"""The outbox's dispatcher (`flask outbox run`): it delivers what `outbox.services.enqueue` wrote,
and owns its transactions:

1. **Claim** (one short transaction): due pending messages, `SELECT … FOR UPDATE SKIP LOCKED`
   on PostgreSQL, so that concurrent dispatchers take disjoint batches without waiting for
   each other. Each claimed row gets `attempts + 1` and a lease, `next_attempt_at = now +
   OUTBOX_LEASE_SECONDS`, and the transaction commits: no row lock is held while we talk to an
   SMTP server. A message is due again only when its lease runs out, which happens only if its
   dispatcher died (or hung longer than the lease) before recording a result.
2. **Deliver**, each message on its own: render and send through its channel, inside a
   savepoint of the batch's transaction. What rendering wrote (a link issued for the message, the
   text kept) stays with a success; a failure rolls its savepoint back, so nothing of it remains.
3. **Record**: a failure at once, in the same transaction (a retry after an exponential backoff
   with jitter, or dead; its `after` and the dead letter's signal with it); the delivered ones
   together, one UPDATE for all of them, and a commit, at the end of the batch and whenever
   RECORD_SECONDS have passed since the last commit (so that a provider's status callback, which
   finds the message by the id the provider gave it, seldom arrives before its record, and a
   crash sends again at most that much). Every update is fenced by the attempt count read at
   claim time, so a dispatcher that outlived its lease cannot overwrite what the next one recorded.
4. **Within the lease**: a batch sends only during the first half of its lease (its own clock); what
   it has not reached by then is given back unsent, due at once, its attempt uncounted (`_release`).
   So a message is not sent after its lease ran out, when another dispatcher may have claimed it,
   unless one send outlasts half the lease (OUTBOX_LEASE_SECONDS is to be well above the timeouts).

The messages of a batch are read in one statement after the claim, and the kinds whose renderer
reads more (a dunning reminder: its bills, steps, customer) may read it for the whole batch at once
(`outbox.base.Renderers.prepare`). The batch's objects stay loaded across its intermediate commits.

Delivery is at least once: a crash between sending and recording sends again when the lease
runs out (every message delivered since the last commit). Every message carries its idempotency
key to the receiver (for e-mail, a Message-ID derived from it and an `X-Idempotency-Key` header)
so that repeats can be recognised. Counting
the attempt at claim time means a message that kills its dispatcher every time still ends
dead after OUTBOX_MAX_ATTEMPTS claims instead of looping forever.

On SQLite, `FOR UPDATE SKIP LOCKED` is left out by SQLAlchemy: run one dispatcher there
(SQLite has one writer anyway).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from flask import current_app
from sqlalchemy import CursorResult, select, update

from app.core import metrics
from app.extensions import db
from app.models import utcnow
from app.outbox.base import Channel, DeliveryError, renderers, withheld, withhold
from app.outbox.feedback import report_dead
from app.outbox.models import OutboxMessage, OutboxStatus

log = logging.getLogger(__name__)

MAX_ERROR_LENGTH = 1000
#: At most this long between the commits of a batch's deliveries (see the module's docstring).
RECORD_SECONDS = 0.25
#: The clock of a batch's lease (a test moves it).
_clock = time.monotonic


@dataclass
class DispatchReport:
    claimed: int = 0
    delivered: int = 0
    retried: int = 0
    dead: int = 0
    released: int = 0  # claimed, then given back unsent: the batch had used half its lease

    def add(self, other: DispatchReport) -> None:
        self.claimed += other.claimed
        self.delivered += other.delivered
        self.retried += other.retried
        self.dead += other.dead
        self.released += other.released

    def __str__(self) -> str:
        given_back = f", {self.released} given back unsent" if self.released else ""
        return f"{self.delivered} delivered, {self.retried} to retry, {self.dead} dead{given_back}"


@dataclass(frozen=True)
class Policy:
    """The dispatcher's settings, read from the app's config when it starts. `deadline`: a
    message is dead once it has been failing this long (since it was written or replayed),
    whatever its number of attempts; partners' webhooks are retried for about three days so."""

    max_attempts: int
    retry_base: timedelta
    retry_max: timedelta
    lease: timedelta
    deadline: timedelta | None = None

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Policy:
        return cls(
            max_attempts=config["OUTBOX_MAX_ATTEMPTS"],
            retry_base=timedelta(seconds=config["OUTBOX_RETRY_BASE_SECONDS"]),
            retry_max=timedelta(seconds=config["OUTBOX_RETRY_MAX_SECONDS"]),
            lease=timedelta(seconds=config["OUTBOX_LEASE_SECONDS"]),
        )

    @classmethod
    def for_webhooks(cls, config: Mapping[str, Any]) -> Policy:
        return cls(
            max_attempts=WEBHOOK_MAX_ATTEMPTS,
            retry_base=timedelta(seconds=config["WEBHOOK_RETRY_BASE_SECONDS"]),
            retry_max=timedelta(seconds=config["WEBHOOK_RETRY_MAX_SECONDS"]),
            lease=timedelta(seconds=config["OUTBOX_LEASE_SECONDS"]),
            deadline=timedelta(hours=config["WEBHOOK_DEADLINE_HOURS"]),
        )


    def for_channel(self, _channel: str) -> Policy:
        return self


WEBHOOK_MAX_ATTEMPTS = 60  # a bound on claims, for a message that kills its dispatcher every time


@dataclass(frozen=True)
class Policies:
    """The dispatcher's policy per channel: e-mail and SMS by OUTBOX_*, webhooks by WEBHOOK_* (a
    deadline). Answers `for_channel` like a single Policy, so either can be given to `claim`."""

    default: Policy
    webhook: Policy

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Policies:
        return cls(Policy.from_config(config), Policy.for_webhooks(config))

    def for_channel(self, channel: str) -> Policy:
        return self.webhook if channel == "webhook" else self.default


def backoff(attempts: int, policy: Policy, rng: Callable[[float, float], float] = random.uniform) -> timedelta:
    """The wait before the next try after `attempts` failed ones: base · 2^(attempts-1), capped,
    of which a random half ("equal jitter"), so that messages that failed together (a mail
    server outage) do not all come back in the same second."""
    ceiling = min(policy.retry_max.total_seconds(), policy.retry_base.total_seconds() * 2 ** max(attempts - 1, 0))
    return timedelta(seconds=rng(ceiling / 2, ceiling))


def open_channels(config: Mapping[str, Any]) -> dict[str, Channel]:
    """The channels a dispatcher run delivers through; each may keep a connection for the run.
    SMS only when SMS_PROVIDER is set: otherwise an "sms" message is dead as an unknown channel."""
    from app.outbox.email import EmailChannel, SmtpSettings
    from app.outbox.webhooks import WebhookChannel

    channels: dict[str, Channel] = {"email": EmailChannel(SmtpSettings.from_config(config)),
                                    "webhook": WebhookChannel.from_config(config)}
    if config["SMS_PROVIDER"]:
        from app.outbox.sms import SmsChannel, SmsSettings

        channels["sms"] = SmsChannel(SmsSettings.from_config(config))
    return channels


def claim(batch_size: int, *, now: datetime, policy: Policy | Policies) -> tuple[list[tuple[int, int]], int]:
    """Take up to `batch_size` due messages and commit their lease: (id, attempts) of each taken,
    and how many were found dead instead.

    A message whose attempts are used up was claimed before and never came back (its dispatcher
    died during the last try): it is marked dead here rather than tried beyond the limit."""
    messages = db.session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.status == OutboxStatus.PENDING, OutboxMessage.next_attempt_at <= now)
        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
        .limit(batch_size)
        .with_for_update(skip_locked=True)
    ).all()
    claimed, dead = [], 0
    for message in messages:
        channel_policy = policy.for_channel(message.channel)
        if message.attempts >= channel_policy.max_attempts:
            message.status = OutboxStatus.DEAD
            message.last_error = _clip(f"no result after attempt {message.attempts}; before: {message.last_error}")
            log.error("outbox message %s (%s) is dead: its last try never finished", message.id, message.kind)
            report_dead(message, message.last_error, code=None, bounced=False, now=now)
            dead += 1
            continue
        message.attempts += 1
        message.next_attempt_at = now + channel_policy.lease
        claimed.append((message.id, message.attempts))
    db.session.commit()
    return claimed, dead


def dispatch(
    batch_size: int | None = None, *, now: datetime | None = None, channels: Mapping[str, Channel] | None = None,
) -> DispatchReport:
    """Claim one batch of due messages and deliver each (see the module's docstring). Commits."""
    config = current_app.config
    policy = Policies.from_config(config)
    now = now or utcnow()
    claimed, dead = claim(batch_size or config["OUTBOX_BATCH_SIZE"], now=now, policy=policy)
    started = _clock()
    report = DispatchReport(claimed=len(claimed) + dead, dead=dead)
    if not claimed:
        return report
    own_channels = channels is None
    open_now = open_channels(config) if channels is None else channels
    session = db.session()
    keep_loaded = session.expire_on_commit
    messages: dict[int, OutboxMessage] = {}
    try:
        messages = {message.id: message for message in db.session.scalars(
            select(OutboxMessage).where(OutboxMessage.id.in_([message_id for message_id, _ in claimed])))}
        renderers().prepare(list(messages.values()))
        session.expire_on_commit = False  # the batch's objects outlive its intermediate commits
        record = _Record()
        for index, (message_id, attempts) in enumerate(claimed):
            message = messages.get(message_id)
            spent = _clock() - started
            if message is not None and spent > policy.for_channel(message.channel).lease.total_seconds() / 2:
                report.released = _release(claimed[index:], now + timedelta(seconds=spent))
                break
            outcome = _deliver(message, attempts, open_now, policy, now, record)
            setattr(report, outcome, getattr(report, outcome) + 1)
            if record.due():
                record.commit()
        session.expire_on_commit = keep_loaded
        record.commit()
    finally:
        session.expire_on_commit = keep_loaded
        for message in messages.values():
            message.prepared = None
        if own_channels:
            for channel in open_now.values():
                channel.close()
    return report


def run_once(batch_size: int | None = None, *, now: datetime | None = None) -> DispatchReport:
    """Deliver everything due now, batch after batch, then return what happened. The channels (an SMTP
    connection, a Twilio client) serve every batch of the run, opened when the first message is claimed."""
    batch_size = batch_size or current_app.config["OUTBOX_BATCH_SIZE"]
    total = DispatchReport()
    channels = _LazyChannels(current_app.config)
    try:
        while True:
            report = dispatch(batch_size, now=now, channels=channels)
            total.add(report)
            if report.claimed < batch_size:
                return total
    finally:
        channels.close()


class _LazyChannels(Mapping[str, Channel]):
    """`open_channels` of a run, opened at the first look (a run that claims nothing opens nothing)."""

    def __init__(self, config: Mapping[str, Any]):
        self._config = config
        self._open: dict[str, Channel] | None = None

    def _channels(self) -> dict[str, Channel]:
        if self._open is None:
            self._open = open_channels(self._config)
        return self._open

    def __getitem__(self, name: str) -> Channel:
        return self._channels()[name]

    def __iter__(self):
        return iter(self._channels())

    def __len__(self) -> int:
        return len(self._channels())

    def close(self) -> None:
        for channel in (self._open or {}).values():
            channel.close()
        self._open = None


class _Record:
    """What a batch has done since its last commit: the delivered messages to record in one UPDATE, and
    the outcomes to count once committed."""

    def __init__(self) -> None:
        self.delivered: list[tuple[int, int, str, str]] = []  # id, attempts, channel, kind
        self.failed: list[tuple[str, str]] = []  # channel, "retry" or "dead"
        self.since = time.monotonic()

    def due(self) -> bool:
        return bool(self.delivered) and time.monotonic() - self.since >= RECORD_SECONDS

    def commit(self) -> None:
        _mark_delivered([(message_id, attempts) for message_id, attempts, _channel, _kind in self.delivered])
        db.session.commit()
        for message_id, attempts, channel, kind in self.delivered:
            metrics.outbox_deliveries().labels(channel, "delivered").inc()
            log.info("outbox message %s (%s) delivered on attempt %s", message_id, kind, attempts)
        for channel, result in self.failed:
            metrics.outbox_deliveries().labels(channel, result).inc()
        self.delivered, self.failed, self.since = [], [], time.monotonic()


def _deliver(message: OutboxMessage | None, attempts: int, channels: Mapping[str, Channel],
             policies: Policy | Policies, now: datetime, record: _Record) -> str:
    """Send one claimed message; "delivered" (recorded with the batch), "retried" or "dead" (recorded now)."""
    if message is None:  # deleted since the claim (its creditor was removed): nothing left to send
        return "dead"
    message_id, kind, channel_name = message.id, message.kind, message.channel
    channel = channels.get(channel_name)
    policy = policies.for_channel(channel_name)
    began = message.replayed_at or message.created_at
    savepoint = db.session.begin_nested()
    try:
        if withheld(message):  # a test bill's message to a customer: kept, never sent
            withhold(message)
        elif channel is None:
            raise DeliveryError(f"no channel {message.channel!r}", permanent=True)
        else:
            channel.send(message)
        savepoint.commit()  # what rendering wrote stays, for the batch's commit
    except Exception as exc:  # noqa: BLE001 - any failure is recorded on the message, never lost
        if savepoint.is_active:
            savepoint.rollback()  # whatever rendering wrote (a link issued for this e-mail) goes too
        outcome = _record_failure(message_id, attempts, exc, policy, now, began)
        record.failed.append((channel_name, "retry" if outcome == "retried" else "dead"))
        return outcome
    record.delivered.append((message_id, attempts, channel_name, kind))
    return "delivered"


def _release(claimed: list[tuple[int, int]], at: datetime) -> int:
    """Give back claimed messages this batch will not send: a batch sends only in the first half of its
    lease, so that a message is not sent after its lease ran out, when another dispatcher may have
    claimed and sent it too (a slow SMTP server, a dispatcher starved of CPU). Each is due again at `at`
    (now, in the batch's clock) with its attempt uncounted; only if it is still ours, as every update."""
    released = 0
    for attempts, ids in _by_attempts(claimed).items():
        result = cast(CursorResult[Any], db.session.execute(
            _fenced(ids, attempts).values(attempts=attempts - 1, next_attempt_at=at)))
        released += result.rowcount
    log.warning("outbox batch used half its lease: %s message(s) given back unsent", released)
    return released


def _mark_delivered(delivered: list[tuple[int, int]]) -> None:
    """Record (id, attempts) pairs as delivered: one UPDATE per attempt count (one, as a rule), each
    fenced: a message only if it is still ours (pending, and not claimed again since)."""
    at = utcnow()
    for attempts, ids in _by_attempts(delivered).items():
        ours = set(db.session.scalars(
            _fenced(ids, attempts).values(status=OutboxStatus.DELIVERED, delivered_at=at, last_error=None)
            .returning(OutboxMessage.id)))
        for message_id in ids:
            if message_id not in ours:  # our lease ran out and another dispatcher took it: it may send it again
                log.warning("outbox message %s was delivered after its lease ran out", message_id)


def _by_attempts(pairs: list[tuple[int, int]]) -> dict[int, list[int]]:
    """(id, attempts) pairs as the ids of each attempt count (one count, as a rule): one fenced UPDATE each."""
    grouped: dict[int, list[int]] = {}
    for message_id, attempts in pairs:
        grouped.setdefault(attempts, []).append(message_id)
    return grouped


def _fenced(ids: list[int], attempts: int):
    """An update of these messages only where they are still ours: pending, and not claimed again since."""
    return update(OutboxMessage).where(
        OutboxMessage.id.in_(ids), OutboxMessage.attempts == attempts,
        OutboxMessage.status == OutboxStatus.PENDING,
    ).execution_options(synchronize_session=False)


def _record_failure(message_id: int, attempts: int, exc: Exception, policy: Policy, now: datetime,
                    began: datetime | None = None) -> str:
    permanent = isinstance(exc, DeliveryError) and exc.permanent
    reason = _clip(str(exc) if isinstance(exc, DeliveryError) else f"{type(exc).__name__}: {exc}")
    overdue = policy.deadline is not None and began is not None and now - began >= policy.deadline
    if permanent or attempts >= policy.max_attempts or overdue:
        values: dict[str, object] = {"status": OutboxStatus.DEAD, "last_error": reason}
        outcome = "dead"
        log.error("outbox message %s is dead after attempt %s: %s", message_id, attempts, reason)
    else:
        wait = backoff(attempts, policy)
        asked = exc.retry_after if isinstance(exc, DeliveryError) else None
        if asked is not None and asked > wait:  # the receiver's Retry-After, within the retry cap
            wait = min(asked, max(policy.retry_max, wait))
        retry_at = now + wait
        values, outcome = {"next_attempt_at": retry_at, "last_error": reason}, "retried"
        log.warning("outbox message %s failed (attempt %s), retry at %s: %s", message_id, attempts,
                    f"{retry_at:%Y-%m-%d %H:%M:%S}", reason, exc_info=not isinstance(exc, DeliveryError))
    result = cast(CursorResult[Any], db.session.execute(_fenced([message_id], attempts).values(**values)))
    if isinstance(exc, DeliveryError) and exc.after is not None:
        exc.after()
    if outcome == "dead" and result.rowcount == 1:  # its sender hears of it (a dunning message falls back)
        message = db.session.get(OutboxMessage, message_id)
        if message is not None:
            db.session.refresh(message)
            error = exc if isinstance(exc, DeliveryError) else None
            report_dead(message, reason, code=error.code if error else None, bounced=bool(error and error.bounced),
                        now=now)
    return outcome


def _clip(text: str) -> str:
    return text if len(text) <= MAX_ERROR_LENGTH else text[: MAX_ERROR_LENGTH - 1] + "…"
