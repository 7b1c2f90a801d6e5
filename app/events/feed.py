"""The events feed (`GET /api/v1/events?after=<cursor>`): a creditor's events, oldest first, each
exactly once to a reader who follows `next_cursor`, even while events are being written.

The difficulty: ids come from a sequence, and on PostgreSQL a transaction that took id 41 may commit
after one that took id 42. A reader who saw 42 and moved its cursor past it would never see 41.

The choice (docs/decisions.md, "The events feed's order"): every event carries the id of the
transaction that wrote it (`txid`, the column's default `pg_current_xact_id()`), and the feed's
order is (txid, id). The feed hands out only events whose transaction is older than the oldest
transaction still running (`pg_snapshot_xmin(pg_current_snapshot())`): every transaction below that
line has ended, so no event can appear later before the cursor, and every transaction that ends
later has a txid at or above the line. It costs nothing on writes (no lock, no counter row); an event
waits in the feed for as long as the oldest running transaction of the database (any) is still
open. The reader's own transaction is the exception (its own events are visible to it, and it
writes none in a GET).

On SQLite one transaction writes at a time (BEGIN IMMEDIATE), so ids are committed in order: txid is 0
and the order is the id's.
"""

from __future__ import annotations

from sqlalchemy import and_, literal_column, or_, select

from app.core import cursors
from app.errors import InvalidData
from app.events.models import CreditorEvent
from app.extensions import db

PREFIX = "evc"
DEFAULT_LIMIT = 100
MAX_LIMIT = 500

#: Below this line every writing transaction has ended (PostgreSQL), or is this reader's own.
_SETTLED = or_(
    CreditorEvent.txid < literal_column("pg_snapshot_xmin(pg_current_snapshot())::text::bigint"),
    CreditorEvent.txid == literal_column("pg_current_xact_id_if_assigned()::text::bigint"),
)


def cursor_of(event: CreditorEvent) -> str:
    return cursors.encode(PREFIX, event.txid, event.id)


def parse_after(after: str | None) -> tuple[int, int] | None:
    if after is None or after == "":
        return None
    try:
        txid, event_id = cursors.decode(PREFIX, after, 2)
    except ValueError:
        raise InvalidData({"after": "a next_cursor from an earlier answer of this feed"}) from None
    return txid, event_id


def page(creditor_id: int, *, after: str | None, limit: int = DEFAULT_LIMIT) -> tuple[list[CreditorEvent], str | None]:
    """Up to `limit` of the creditor's events after the cursor, in the feed's order, and the cursor to
    ask with next (the same one when nothing new was settled yet; None when the feed is empty)."""
    position = parse_after(after)
    query = select(CreditorEvent).where(CreditorEvent.creditor_id == creditor_id)
    if position is not None:
        txid, event_id = position
        query = query.where(or_(CreditorEvent.txid > txid,
                                and_(CreditorEvent.txid == txid, CreditorEvent.id > event_id)))
    if db.session.get_bind().dialect.name == "postgresql":
        query = query.where(_SETTLED)
    events = list(db.session.scalars(query.order_by(CreditorEvent.txid, CreditorEvent.id).limit(limit)))
    next_cursor = cursor_of(events[-1]) if events else (after or None)
    return events, next_cursor
