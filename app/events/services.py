"""Events to creditors: record an event (once, in the caller's transaction) and hand it to every
endpoint that wants it; the endpoints (add, list, enable and disable, rotate the secret); the
delivery log; replay. Services add and flush; the caller commits.

A delivery is an outbox message (kind `events.webhook`, channel "webhook") rendered by
`events.deliveries`: the outbox retries it with backoff until the webhook deadline, then it is a dead
letter, which `replay_delivery` puts back. Every try is written to the delivery log (`WebhookAttempt`)
by the webhook channel's `on_attempt`.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.orm import joinedload, selectinload

from app.billing.models import Invoice
from app.core.bulk import insert_rows
from app.creditors.models import Creditor
from app.crypto import decrypt, encrypt
from app.debt_collection.partners import check_secret, new_signing_secret
from app.errors import Conflict, InvalidData
from app.events.catalogue import TYPES, data_for
from app.events.models import CreditorEvent, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from app.extensions import db
from app.models import utcnow
from app.outbox.models import OutboxMessage, OutboxStatus
from app.outbox.services import enqueue, enqueue_many
from app.outbox.services import replay as replay_message
from app.outbox.webhooks import EndpointRefused, EndpointRules, check_endpoint
from app.payments.bank import bulk as bank_bulk

log = logging.getLogger(__name__)

KIND = "events.webhook"  # the outbox kind of a delivery; rendered by app.events.deliveries
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
DEFAULT_GRACE = timedelta(hours=24)
MAX_GRACE = timedelta(days=7)
MAX_ENDPOINTS = 20
MAX_REPLAY = 10_000


def new_public_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_urlsafe(16)}"


# --- recording -----------------------------------------------------------------------------------


def record(creditor_id: int, event_type: str, data: Mapping[str, Any], *, invoice_id: int | None = None,
           livemode: bool = True, now: datetime | None = None) -> CreditorEvent:
    """Record one event in the caller's transaction and enqueue its deliveries. Not committed; flushed
    at once when an endpoint is to be sent it (its delivery names the event), else with the session's
    next flush: a payment's events, the bill's new amount and status then go in one flush, not one each
    (the endpoints are read without flushing what is pending: they are not among it).
    An event of test data (`livemode=False`) goes to the test feed and the creditor's test endpoints only;
    a live event to its live endpoints only (docs/events.md, "Test mode")."""
    if event_type not in TYPES:
        raise LookupError(f"no event type {event_type!r}")
    event = CreditorEvent(public_id=new_public_id("evt"), creditor_id=creditor_id, type=event_type,
                          invoice_id=invoice_id, livemode=livemode, payload=dict(data), created_at=now or utcnow())
    db.session.add(event)
    with db.session.no_autoflush:
        sent_to = [endpoint for endpoint in _listening(creditor_id, livemode) if endpoint.wants(event_type)]
    if sent_to:
        db.session.flush()
    for endpoint in sent_to:
        _deliver(endpoint, event)
    return event


def record_for_invoice(invoice: Invoice, event_type: str, own: Mapping[str, Any], *,
                       now: datetime | None = None) -> CreditorEvent:
    """An event of one bill: its `data` is the bill's and the type's own object (`catalogue.data_for`)."""
    return record(invoice.creditor_id, event_type, data_for(event_type, invoice, own), invoice_id=invoice.id,
                  livemode=invoice.livemode, now=now)


def record_many(events: Sequence[Mapping[str, Any]], *, now: datetime | None = None) -> int:
    """`record` set-wise, for a run that writes thousands at once (the dunning run's reminders): each
    mapping has creditor_id, type, data and invoice_id (and livemode, True unless given). Returns how
    many were recorded."""
    if not events:
        return 0
    now = now or utcnow()
    rows = [{"public_id": new_public_id("evt"), "creditor_id": e["creditor_id"], "type": e["type"],
             "invoice_id": e.get("invoice_id"), "livemode": e.get("livemode", True), "payload": dict(e["data"]),
             "created_at": now} for e in events]
    for row in rows:
        if row["type"] not in TYPES:
            raise LookupError(f"no event type {row['type']!r}")
    keys = {(row["creditor_id"], row["livemode"]) for row in rows}
    listening = {key: _listening(*key) for key in keys}
    # The ids are read back only for the events an endpoint will be sent: on SQLite a RETURNING insert
    # is one statement per row, a plain one a single executemany (a bank file's 95,000 payments).
    silent = [row for row in rows if not listening[(row["creditor_id"], row["livemode"])]]
    heard = [row for row in rows if listening[(row["creditor_id"], row["livemode"])]]
    if silent:  # tuples, the JSON written once by json.dumps as the column type would: no dict per row
        columns = ("public_id", "creditor_id", "type", "invoice_id", "livemode", "payload", "created_at")
        table: Any = CreditorEvent.__table__
        bank_bulk.insert_rows(table, columns, [
            (row["public_id"], row["creditor_id"], row["type"], row["invoice_id"], row["livemode"],
             json.dumps(row["payload"]), row["created_at"]) for row in silent], serialized=("payload",))
    ids = insert_rows(db.session, CreditorEvent.__table__, heard)
    for (creditor_id, livemode), endpoints in listening.items():
        mine = [(event_id, row) for event_id, row in zip(ids, heard, strict=True)
                if row["creditor_id"] == creditor_id and row["livemode"] == livemode]
        for endpoint in endpoints:
            wanted = [event_id for event_id, row in mine if endpoint.wants(row["type"])]
            _deliver_many(endpoint, wanted, now)
    return len(rows)


def _listening(creditor_id: int, livemode: bool = True) -> list[WebhookEndpoint]:
    """The endpoints an event goes to: the creditor's enabled ones of the event's mode (a test event to
    test endpoints only, a live one to live endpoints only)."""
    return list(db.session.scalars(select(WebhookEndpoint).where(
        WebhookEndpoint.creditor_id == creditor_id, WebhookEndpoint.enabled.is_(True),
        WebhookEndpoint.livemode.is_(livemode)).order_by(WebhookEndpoint.id)))


def _deliver(endpoint: WebhookEndpoint, event: CreditorEvent, *, replay_of: int | None = None) -> WebhookDelivery:
    if event.livemode != endpoint.livemode:  # every path filters by mode first; this is the last guard
        raise Conflict(f"a {'live' if event.livemode else 'test'} event is not sent to a "
                       f"{'live' if endpoint.livemode else 'test'} endpoint")
    delivery = WebhookDelivery(creditor_id=endpoint.creditor_id, endpoint_id=endpoint.id, event_id=event.id,
                               replay_of=replay_of, created_at=utcnow())
    db.session.add(delivery)
    db.session.flush()
    message = enqueue("webhook", KIND, endpoint.public_id, {"delivery_id": delivery.id},
                      idempotency_key=f"{KIND}:{delivery.id}", creditor_id=endpoint.creditor_id, locale=None)
    delivery.outbox_message_id = message.id
    db.session.flush()
    return delivery


def _deliver_many(endpoint: WebhookEndpoint, event_ids: Sequence[int], now: datetime) -> None:
    if not event_ids:
        return
    delivery_ids = insert_rows(db.session, WebhookDelivery.__table__, [
        {"creditor_id": endpoint.creditor_id, "endpoint_id": endpoint.id, "event_id": event_id,
         "outbox_message_id": None, "replay_of": None, "created_at": now} for event_id in event_ids])
    message_ids = enqueue_many([
        {"channel": "webhook", "kind": KIND, "recipient": endpoint.public_id, "payload": {"delivery_id": delivery_id},
         "idempotency_key": f"{KIND}:{delivery_id}", "creditor_id": endpoint.creditor_id, "locale": None}
        for delivery_id in delivery_ids], now=now)
    for delivery_id, message_id in zip(delivery_ids, message_ids, strict=True):
        db.session.execute(update(WebhookDelivery).where(WebhookDelivery.id == delivery_id)
                           .values(outbox_message_id=message_id).execution_options(synchronize_session=False))


# --- endpoints -----------------------------------------------------------------------------------


def endpoint_rules(config: Mapping[str, Any]) -> EndpointRules:
    """Where a creditor's endpoint may be: any host; in production only https to public addresses."""
    return EndpointRules(allow_private=config["PORTAL_ENV"] != "production", any_host=True)


def endpoint_problem(url: str) -> str | None:
    """Why `url` cannot be a creditor's endpoint here, or None: https (in development and tests also
    http to 127.0.0.1 or localhost), no user name or password, and in production a public address."""
    url = (url or "").strip()
    if len(url) > 500:
        return "at most 500 characters"
    parts = urlsplit(url)
    if parts.scheme == "http" and (parts.hostname or "").lower() not in LOOPBACK:
        return "must be https:// (http:// only to 127.0.0.1 or localhost, outside production)"
    try:
        check_endpoint(url, endpoint_rules(current_app.config))
    except EndpointRefused as exc:
        return str(exc)
    except ValueError:  # a port that is not a number
        return "not a valid URL"
    return None


def check_types(types: Iterable[str] | None) -> list[str]:
    """The event filter: known types, each once, in the catalogue's order; empty means every type."""
    wanted = {t.strip() for t in types or () if t and t.strip()}
    unknown = sorted(wanted - set(TYPES))
    if unknown:
        raise InvalidData({"types": f"unknown: {', '.join(unknown)} (known: {', '.join(TYPES)})"})
    return [t for t in TYPES if t in wanted]


@dataclass
class NewEndpoint:
    endpoint: WebhookEndpoint
    secret: str  # shown once


def add_endpoint(creditor: Creditor, url: str, *, types: Iterable[str] | None = None,
                 description: str | None = None, secret: str | None = None, livemode: bool = True) -> NewEndpoint:
    """A new enabled endpoint and its signing secret (`whsec_…`, made here unless given). Its mode is
    chosen once: a live endpoint (the default) gets live events, a test one (`livemode=False`) test
    events; it does not change (a new endpoint is made instead)."""
    errors: dict[str, str] = {}
    problem = endpoint_problem(url)
    if problem:
        errors["url"] = problem
    try:
        wanted = check_types(types)
    except InvalidData as exc:
        errors.update(exc.errors)
        wanted = []
    if secret:
        try:
            check_secret(secret)
        except InvalidData as exc:
            errors.update(exc.errors)
    if description and len(description) > 200:
        errors["description"] = "at most 200 characters"
    count = len(list(db.session.scalars(select(WebhookEndpoint.id).where(WebhookEndpoint.creditor_id == creditor.id))))
    if count >= MAX_ENDPOINTS:
        errors["url"] = f"at most {MAX_ENDPOINTS} endpoints per creditor"
    if errors:
        raise InvalidData(errors)
    secret = secret or new_signing_secret()
    endpoint = WebhookEndpoint(public_id=new_public_id("we"), creditor_id=creditor.id, url=url.strip(),
                               description=(description or "").strip() or None, types=wanted,
                               secret_encrypted=encrypt(secret), enabled=True, livemode=livemode)
    db.session.add(endpoint)
    db.session.flush()
    log.info("webhook endpoint %s added for creditor %s", endpoint.public_id, creditor.id)
    return NewEndpoint(endpoint, secret)


def endpoints_of(creditor_id: int) -> list[WebhookEndpoint]:
    return list(db.session.scalars(select(WebhookEndpoint).where(WebhookEndpoint.creditor_id == creditor_id)
                                   .order_by(WebhookEndpoint.id)))


def find_endpoint(creditor_id: int, public_id: str) -> WebhookEndpoint | None:
    """The creditor's endpoint with this id; another creditor's is as unknown as none."""
    return db.session.scalar(select(WebhookEndpoint).where(WebhookEndpoint.creditor_id == creditor_id,
                                                           WebhookEndpoint.public_id == public_id))


def set_types(endpoint: WebhookEndpoint, types: Iterable[str] | None) -> None:
    endpoint.types = check_types(types)
    db.session.flush()


def set_enabled(endpoint: WebhookEndpoint, enabled: bool, reason: str | None = None) -> None:
    """Enable or disable. A disabled endpoint gets no new deliveries, and those waiting go to the dead
    letters when their turn comes (replay them once it is enabled again)."""
    endpoint.enabled = enabled
    endpoint.disabled_reason = None if enabled else (reason or "disabled")[:300]
    db.session.flush()
    log.info("webhook endpoint %s %s", endpoint.public_id, "enabled" if enabled else "disabled")


def rotate_secret(endpoint: WebhookEndpoint, *, grace: timedelta = DEFAULT_GRACE, now: datetime | None = None) -> str:
    """A new signing secret; the current one keeps signing next to it for `grace` (at most 7 days;
    0: at once no more). Returns the new secret (shown once)."""
    if grace < timedelta(0) or grace > MAX_GRACE:
        raise InvalidData({"grace": f"between 0 and {MAX_GRACE.days} days"})
    now = now or utcnow()
    secret = new_signing_secret()
    endpoint.previous_secret_encrypted = endpoint.secret_encrypted if grace else None
    endpoint.previous_until = now + grace if grace else None
    endpoint.secret_encrypted = encrypt(secret)
    db.session.flush()
    log.info("webhook endpoint %s: signing secret rotated", endpoint.public_id)
    return secret


def live_secrets(endpoint: WebhookEndpoint, now: datetime | None = None) -> list[str]:
    """The secrets a delivery is signed with now: the current one, and the previous one during its grace."""
    now = now or utcnow()
    found = [decrypt(endpoint.secret_encrypted)]
    if endpoint.previous_secret_encrypted and endpoint.previous_until and endpoint.previous_until > now:
        found.append(decrypt(endpoint.previous_secret_encrypted))
    return found


# --- the delivery log and replay -----------------------------------------------------------------


def log_attempt(delivery_id: int, *, code: int | None, duration_ms: int | None, error: str | None,
                at: datetime | None = None) -> None:
    """One try of a delivery, in the delivery log (added in the dispatcher's transaction of its result)."""
    db.session.add(WebhookAttempt(delivery_id=delivery_id, attempted_at=at or utcnow(), succeeded=error is None,
                                  response_code=code, duration_ms=duration_ms, error=(error or None) and error[:300]))
    db.session.flush()


@dataclass
class DeliveryView:
    delivery: WebhookDelivery
    event: CreditorEvent
    endpoint: WebhookEndpoint
    status: str  # pending, delivered, dead
    attempts: list[WebhookAttempt]


def deliveries(creditor_id: int, *, endpoint: WebhookEndpoint | None = None, limit: int = 50) -> list[DeliveryView]:
    """The creditor's deliveries, newest first, each with its tries."""
    query = (select(WebhookDelivery, OutboxMessage.status)
             .outerjoin(OutboxMessage, OutboxMessage.id == WebhookDelivery.outbox_message_id)
             .where(WebhookDelivery.creditor_id == creditor_id))
    if endpoint is not None:
        query = query.where(WebhookDelivery.endpoint_id == endpoint.id)
    query = query.options(joinedload(WebhookDelivery.event), selectinload(WebhookDelivery.attempts))
    rows = db.session.execute(query.order_by(WebhookDelivery.id.desc()).limit(max(1, min(limit, 500)))).all()
    return [DeliveryView(d, d.event, d.endpoint, status or OutboxStatus.DEAD, list(d.attempts)) for d, status in rows]


def find_delivery(creditor_id: int, delivery_id: int) -> WebhookDelivery | None:
    return db.session.scalar(select(WebhookDelivery).where(WebhookDelivery.creditor_id == creditor_id,
                                                           WebhookDelivery.id == delivery_id))


def replay_delivery(delivery: WebhookDelivery) -> WebhookDelivery:
    """Send a delivery again: a dead one goes back in the queue (the same webhook-id); a delivered one is
    sent as a new delivery of the same event (a new webhook-id; the body's event id is the same, so the
    receiver can still tell). One still pending is on its way (Conflict)."""
    if not delivery.endpoint.enabled:
        raise Conflict(f"endpoint {delivery.endpoint.public_id} is disabled; enable it first")
    message = db.session.get(OutboxMessage, delivery.outbox_message_id) if delivery.outbox_message_id else None
    if message is not None and message.status == OutboxStatus.PENDING:
        raise Conflict(f"delivery {delivery.id} is still pending")
    if message is not None and message.status == OutboxStatus.DEAD:
        replay_message(message.id)
        return delivery
    return _deliver(delivery.endpoint, delivery.event, replay_of=delivery.id)


def replay_since(endpoint: WebhookEndpoint, since: datetime) -> int:
    """Send the endpoint every event of its creditor and its mode since `since` that it wants again (new
    deliveries, oldest first). At most MAX_REPLAY at once. Returns how many."""
    if not endpoint.enabled:
        raise Conflict(f"endpoint {endpoint.public_id} is disabled; enable it first")
    events = db.session.scalars(select(CreditorEvent).where(
        CreditorEvent.creditor_id == endpoint.creditor_id, CreditorEvent.livemode.is_(endpoint.livemode),
        CreditorEvent.created_at >= since,
    ).order_by(CreditorEvent.id).limit(MAX_REPLAY + 1)).all()
    if len(events) > MAX_REPLAY:
        raise InvalidData({"since": f"more than {MAX_REPLAY} events since then; choose a later time"})
    count = 0
    for event in events:
        if endpoint.wants(event.type):
            _deliver(endpoint, event)
            count += 1
    return count
