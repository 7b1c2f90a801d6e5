"""Which reminder brought the customer who paid: the last touch within a window.

A payment of a live bill is attributed to the reminder message whose signed link was the last one the
customer opened, among the bill's links that a reminder message carried, within
`ANALYTICS_ATTRIBUTION_DAYS` (7 by default) before the payment was received. An opening is the
`link_opened` entry of the bill's timeline (recorded at most once per link per half hour; a mail
scanner's prefetch of `/l/<token>` is one too, as it is for "opened"). No cookie beyond the bill's
grant and no script: the customer's own click on the link is the only signal.

Payments the collection partner reports are not the portal's doing and are not attributed; test bills'
payments never count.

Attribution is derived by the rollup run (`rollup.run`), not on the settle path: batches of payments
not yet attributed, two statements per batch whatever its size (docs/decisions.md, "Analytics").
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import insert, select

from app.analytics.models import Attribution
from app.billing.models import Invoice, InvoiceEvent
from app.debt_collection.services import PROVIDER as PARTNER_PROVIDER
from app.dunning.models import Message
from app.extensions import db
from app.models import utcnow
from app.payments.models import Payment

BATCH_SIZE = 1000
CHUNK = 900  # ids in one IN list (SQLite's limit on bound variables is far above it)


@dataclass(frozen=True)
class Paid:
    """What attribution needs of a payment."""

    payment_id: int
    invoice_id: int
    received_at: datetime


@dataclass(frozen=True)
class Touch:
    message_id: int
    opened_at: datetime


def _chunks(values: Sequence[int]) -> Iterable[Sequence[int]]:
    for start in range(0, len(values), CHUNK):
        yield values[start:start + CHUNK]


def last_touches(payments: Sequence[Paid], window: timedelta) -> dict[int, Touch | None]:
    """For each payment, its last touch within `window` before it (None: none). Reads the bills'
    openings in the batch's time span and the messages that carried their links: two statements per
    chunk of bills, whatever the number of payments."""
    if not payments:
        return {}
    invoice_ids = sorted({p.invoice_id for p in payments})
    earliest = min(p.received_at for p in payments) - window
    latest = max(p.received_at for p in payments)
    openings: list[tuple[int, datetime, int]] = []  # invoice, when, link
    for chunk in _chunks(invoice_ids):
        for invoice_id, at, data in db.session.execute(
            select(InvoiceEvent.invoice_id, InvoiceEvent.created_at, InvoiceEvent.data)
            .where(InvoiceEvent.invoice_id.in_(chunk), InvoiceEvent.kind == "link_opened",
                   InvoiceEvent.created_at >= earliest, InvoiceEvent.created_at <= latest)
        ):
            link_id = (data or {}).get("link_id")
            if isinstance(link_id, int):
                openings.append((invoice_id, at, link_id))
    carried: dict[int, int] = {}  # link -> the reminder message that carried it
    for chunk in _chunks(sorted({link for _i, _a, link in openings})):
        for link_id, message_id in db.session.execute(
                select(Message.link_id, Message.id).where(Message.link_id.in_(chunk))):
            if link_id is not None:
                carried[link_id] = message_id
    by_invoice: defaultdict[int, list[tuple[datetime, int]]] = defaultdict(list)
    for invoice_id, at, link_id in openings:
        if link_id in carried:
            by_invoice[invoice_id].append((at, carried[link_id]))
    touches: dict[int, Touch | None] = {}
    for payment in payments:
        since = payment.received_at - window
        inside = [(at, message) for at, message in by_invoice[payment.invoice_id] if since <= at <= payment.received_at]
        touches[payment.payment_id] = Touch(max(inside)[1], max(inside)[0]) if inside else None
    return touches


def counted_payments():
    """The payments the portal counts as its own: of live bills, not the collection partner's."""
    return (select(Payment.id, Payment.invoice_id, Payment.received_at, Invoice.creditor_id)
            .join(Invoice, Payment.invoice_id == Invoice.id)
            .where(Invoice.livemode.is_(True), Payment.provider != PARTNER_PROVIDER))


def attribute_pending(window_days: int, *, batch_size: int = BATCH_SIZE, now: datetime | None = None) -> set[int]:
    """Attribute every counted payment not attributed yet, in batches; adds the rows (the caller
    commits). Returns the ids of the messages that were given a payment."""
    now = now or utcnow()
    window = timedelta(days=window_days)
    given: set[int] = set()
    last_id = 0
    while True:
        rows = db.session.execute(
            counted_payments().outerjoin(Attribution, Attribution.payment_id == Payment.id)
            .where(Attribution.payment_id.is_(None), Payment.id > last_id)
            .order_by(Payment.id).limit(batch_size)
        ).all()
        if not rows:
            return given
        last_id = rows[-1][0]
        touches = last_touches([Paid(pid, invoice_id, at) for pid, invoice_id, at, _c in rows], window)
        values = []
        for payment_id, _invoice_id, _at, creditor_id in rows:
            touch = touches[payment_id]
            values.append({"payment_id": payment_id, "creditor_id": creditor_id, "window_days": window_days,
                           "message_id": touch.message_id if touch else None,
                           "opened_at": touch.opened_at if touch else None, "created_at": now})
            if touch:
                given.add(touch.message_id)
        db.session.execute(insert(Attribution), values)
