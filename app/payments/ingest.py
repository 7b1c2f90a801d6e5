"""Provider notifications: verified by the gateway, stored once, applied at most once.

`receive()` is what a webhook request (and the simulator's in-process notification) calls: the
gateway checks the signature, `ingest_events()` stores each event under its provider's id (a
duplicate costs one read and no write) and, unless a worker applies them
(`payments.worker.apply_received_events`), applies them to their attempts. Adds and flushes; the
caller commits.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable, Mapping
from datetime import datetime

from sqlalchemy import bindparam, or_, select
from sqlalchemy.orm import make_transient_to_detached

from app.billing.models import Invoice
from app.core import metrics
from app.extensions import db
from app.models import utcnow
from app.payments.gateways.base import Gateway, GatewayEvent, WebhookError, check_event
from app.payments.models import PaymentAttempt, WebhookEvent
from app.payments.services import apply_status

log = logging.getLogger(__name__)


def receive(provider: str, creditor_id: int, gateway: Gateway, body: bytes, headers: Mapping[str, str],
            *, apply: bool = True, livemode: bool | None = None) -> list[str] | None:
    """Verify and store one notification, and apply it unless a worker will (flushed, not
    committed). None when it is not genuine, or genuine but malformed (an amount that is not one, an
    id that is not a string...): nothing is stored. `livemode`: the mode of the keys that verified it
    (True: live keys, False: the creditor's test keys; None: the simulator's, for either), whose bills
    alone it may touch."""
    try:
        events = gateway.parse_webhook(body, headers)
        for event in events:
            check_event(event)
    except WebhookError as exc:
        log.warning("refused %s notification for creditor %s: %s", provider, creditor_id, exc)
        metrics.notifications_refused().labels(provider).inc()
        return None
    return ingest_events(provider, creditor_id, events, apply=apply, livemode=livemode)


def ingest_events(provider: str, creditor_id: int, events: Iterable[GatewayEvent], *, apply: bool = True,
                  livemode: bool | None = None) -> list[str]:
    """Store each verified event once and, with `apply`, apply it at most once. One outcome per
    event: duplicate, received (stored, to be applied by `payments.worker.apply_received_events`), stored (a type
    we do not act on), unknown_payment, applied or unchanged.

    `creditor_id` is the creditor whose key verified the events: they may only touch its invoices.

    A duplicate costs one read and no write. Providers re-send until they get a 2xx, so most
    duplicates are of events stored long ago: their ids are looked up first and nothing is
    inserted for them. An INSERT that fails on the unique key would still write (a dead row, a
    sequence value, WAL) and make the commit wait for the disk. The unique key stays the
    arbiter between two first deliveries of one event racing each other: the second INSERT
    waits for the first to commit, then does nothing (ON CONFLICT DO NOTHING)."""
    events = list(events)
    connection = db.session.connection()  # Core on the session's connection: no ORM work per statement
    insert_event, known_events = _webhook_statements(connection.dialect.name)
    seen = set(connection.scalars(
        known_events, {"provider": provider, "ids": list({event.event_id for event in events})}
    )) if events else set()
    outcomes = []
    for event in events:
        if event.event_id in seen:  # stored before, or earlier in this batch
            outcomes.append("duplicate")
            continue
        seen.add(event.event_id)
        outcome = "received" if event.status else "stored"
        values = {
            "provider": provider, "event_id": event.event_id, "event_type": event.event_type,
            "creditor_id": creditor_id, "provider_ref": event.provider_ref, "outcome": outcome,
            "payload": dict(event.payload), "event": _event_record(event, livemode), "received_at": utcnow(),
        }
        record_id = connection.scalar(insert_event, values)
        if record_id is None:  # a first delivery racing ours committed the same event first
            outcomes.append("duplicate")
            continue
        if apply and event.status is not None:
            record = _as_stored(record_id, values)
            apply_event(record, event)
            outcome = record.outcome
        outcomes.append(outcome)
    db.session.flush()
    return outcomes


@functools.cache
def _webhook_statements(dialect: str):
    """The two statements of storing an event, built once per dialect (and then compiled once):
    `INSERT … ON CONFLICT DO NOTHING RETURNING id`, on PostgreSQL and SQLite alike (one round trip
    where a savepoint, an INSERT and a release took three; a lost race writes nothing), and the
    read of the ids already stored."""
    from sqlalchemy.dialects import postgresql, sqlite

    columns = ("provider", "event_id", "event_type", "creditor_id", "provider_ref", "outcome", "payload",
               "event", "received_at")
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(WebhookEvent)
    insert_event = (insert.values({name: bindparam(name) for name in columns})
                    .on_conflict_do_nothing(index_elements=["provider", "event_id"]).returning(WebhookEvent.id))
    known_events = select(WebhookEvent.event_id).where(
        WebhookEvent.provider == bindparam("provider"), WebhookEvent.event_id.in_(bindparam("ids", expanding=True)))
    return insert_event, known_events


def _as_stored(record_id: int, values: Mapping) -> WebhookEvent:
    """The event this statement has just inserted, in the session as if read back (SQLAlchemy's
    `make_transient_to_detached`, then `add`): what applying it changes is flushed as an UPDATE, and
    nothing is read to get there (a column not given, none that applying reads, loads if asked for)."""
    record = WebhookEvent(id=record_id, **values)
    make_transient_to_detached(record)
    db.session.add(record)
    return record


def apply_event(record: WebhookEvent, event: GatewayEvent) -> None:
    livemode = (record.event or {}).get("livemode")
    attempt = _attempt_of(record.provider, record.creditor_id, event.provider_ref, livemode)
    if attempt is None:
        record.outcome = "unknown_payment"
    else:
        record.outcome = "applied" if apply_status(attempt, event, actor=record.provider) else "unchanged"
    record.applied_at = utcnow()


def _event_record(event: GatewayEvent, livemode: bool | None = None) -> dict:
    """The event in our terms, as JSON: what applying it needs, without the provider's payload (and the
    mode of the keys that verified it, when they have one)."""
    return ({} if livemode is None else {"livemode": livemode}) | {
        "status": event.status, "amount": event.amount, "currency": event.currency, "payment_id": event.payment_id,
        "method": event.method, "occurred_at": event.occurred_at.isoformat() if event.occurred_at else None,
        "failure_reason": event.failure_reason,
    }


def event_from_record(record: WebhookEvent) -> GatewayEvent:
    data = record.event or {}
    occurred = data.get("occurred_at")
    return GatewayEvent(
        provider=record.provider, event_id=record.event_id, event_type=record.event_type,
        provider_ref=record.provider_ref, status=data.get("status"), amount=data.get("amount"),
        currency=data.get("currency"), payment_id=data.get("payment_id"), method=data.get("method"),
        occurred_at=datetime.fromisoformat(occurred) if occurred else None,
        failure_reason=data.get("failure_reason"),
    )


def _attempt_of(provider: str, creditor_id: int | None, provider_ref: str | None,
                livemode: bool | None = None) -> PaymentAttempt | None:
    """The attempt an event names, by the provider's id or by our own attempt ref (Adyen signs the
    merchant reference, ours, and not its session id), among this creditor's invoices only, and of
    the mode of the keys that verified it (live keys touch live bills only, test keys test bills).
    Read without a lock: `apply_status` locks the invoice, then the attempt, and decides again."""
    if not provider_ref:
        return None
    query = (
        select(PaymentAttempt)
        .join(Invoice, PaymentAttempt.invoice_id == Invoice.id)
        .where(
            PaymentAttempt.provider == provider,
            or_(PaymentAttempt.provider_ref == provider_ref, PaymentAttempt.public_ref == provider_ref),
            Invoice.creditor_id == creditor_id,
        )
    )
    if livemode is not None:
        query = query.where(Invoice.livemode.is_(livemode))
    return db.session.scalar(query)
