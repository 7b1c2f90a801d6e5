"""The outbox: enqueue a side effect with the change that causes it; the dispatcher
(`outbox.dispatcher`) delivers it.

`enqueue()` adds and flushes, like every service; the caller's transaction commits the message
together with its cause, or neither. An agent or operator looks at dead letters and replays them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select

from app.core.bulk import insert_rows
from app.core.inserts import insert_new
from app.errors import Conflict
from app.extensions import db
from app.models import utcnow
from app.outbox.base import renderers
from app.outbox.models import OutboxMessage, OutboxStatus

log = logging.getLogger(__name__)

# --- writing -----------------------------------------------------------------------------------


def enqueue(
    channel: str, kind: str, recipient: str, payload: Mapping[str, Any], *, idempotency_key: str,
    creditor_id: int | None, locale: str | None, now: datetime | None = None, livemode: bool = True,
) -> OutboxMessage:
    """Add a message to the caller's transaction (flushed, not committed). A second call with the
    same idempotency key returns the first message unchanged: the cause may be retried safely.
    A kind nothing renders on this channel is a programming error (LookupError), never a message.
    `livemode=False`: a message a test bill caused; to a customer (e-mail, SMS) it is rendered and kept
    but not sent ("test, not sent": `outbox.base.withhold`)."""
    if renderers().find(channel, kind) is None:
        raise LookupError(f"no renderer registered for {channel} {kind!r}")
    message = insert_new(db.session, OutboxMessage, {
        "channel": channel, "kind": kind, "recipient": recipient, "payload": dict(payload),
        "idempotency_key": idempotency_key, "creditor_id": creditor_id, "locale": locale,
        "status": OutboxStatus.PENDING, "attempts": 0, "next_attempt_at": now or utcnow(), "livemode": livemode,
    }, unique=["idempotency_key"])
    if message is None:  # the key exists: in this transaction, or committed (by a concurrent one, maybe)
        existing = _by_key(idempotency_key)
        assert existing is not None
        return existing
    return message


def enqueue_many(messages: Sequence[Mapping[str, Any]], *, now: datetime | None = None) -> list[int]:
    """`enqueue` for many messages at once, set-wise (one INSERT for any number), for a run that writes
    thousands in a batch; their ids in the order given. Each mapping has channel, kind, recipient,
    payload, idempotency_key, creditor_id and locale. For keys that are new by construction (derived
    from a row the same transaction made): a key that exists fails the whole statement
    (IntegrityError) rather than being looked up. A kind nothing renders is refused (LookupError).
    On PostgreSQL the rows go in by COPY (`core.bulk`)."""
    if not messages:
        return []
    for channel, kind in {(m["channel"], m["kind"]) for m in messages}:
        if renderers().find(channel, kind) is None:
            raise LookupError(f"no renderer registered for {channel} {kind!r}")
    now = now or utcnow()
    rows = [{"channel": m["channel"], "kind": m["kind"], "recipient": m["recipient"], "payload": dict(m["payload"]),
             "idempotency_key": m["idempotency_key"], "creditor_id": m["creditor_id"], "locale": m["locale"],
             "status": OutboxStatus.PENDING, "attempts": 0, "next_attempt_at": now, "created_at": now}
            for m in messages]
    return insert_rows(db.session, OutboxMessage.__table__, rows)


def _by_key(idempotency_key: str) -> OutboxMessage | None:
    return db.session.scalar(select(OutboxMessage).where(OutboxMessage.idempotency_key == idempotency_key))


def dead_messages(*, creditor_id: int | None = None, limit: int = 100) -> list[OutboxMessage]:
    """Dead letters, newest first (optionally one creditor's), for an agent or operator to look at."""
    query = select(OutboxMessage).where(OutboxMessage.status == OutboxStatus.DEAD)
    if creditor_id is not None:
        query = query.where(OutboxMessage.creditor_id == creditor_id)
    return list(db.session.scalars(query.order_by(OutboxMessage.id.desc()).limit(limit)))


def replay(message_id: int, *, now: datetime | None = None) -> OutboxMessage | None:
    """Put a dead message back in the queue with a fresh set of attempts (flushed, not committed).

    None when there is no such message; Conflict when it is not dead (pending ones are on their
    way, delivered ones are not sent twice on purpose). The last error stays until the next try."""
    message = db.session.get(OutboxMessage, message_id)
    if message is None:
        return None
    if message.status != OutboxStatus.DEAD:
        raise Conflict(f"outbox message {message_id} is {message.status}, not dead")
    message.status = OutboxStatus.PENDING
    message.attempts = 0
    message.next_attempt_at = message.replayed_at = now or utcnow()
    db.session.flush()
    log.info("outbox message %s (%s) put back in the queue", message.id, message.kind)
    return message
