"""The events feed (`GET /api/v1/events?after=<cursor>`): a creditor's events, oldest first, each
exactly once to a reader who follows `next_cursor`, even while events are being written.

The difficulty: ids come from a sequence, and on PostgreSQL a transaction that took id 41 may commit
after one that took id 42. A reader who saw 42 and moved its cursor past it would never see 41.

The choice (docs/events.md, "The feed, and why its cursor is not the id"): the feed's order is not
the id but `position`, given to an event only once it is committed, by the reader. Before it reads,
a reader takes the creditor's feed lock (a transaction-level advisory lock on PostgreSQL; SQLite has
one writer at a time anyway) and numbers the creditor's committed events that have no position yet,
in id order, after the highest position given (`place`). The reader's transaction commits those
positions before its answer leaves (the API's view commits, then answers), and the next reader
takes the lock only after that commit, so positions are committed in their order: an event without
a position, committed late, is numbered after every position a reader may already have passed.

Writers never wait for it (they insert, nothing more); only two readers of the same creditor's feed
wait for each other, for the few statements of a numbering.
"""

from __future__ import annotations

from sqlalchemy import func, select, text

from app.core import cursors
from app.core.bulk import update_rows
from app.errors import InvalidData
from app.events.models import CreditorEvent
from app.extensions import db

PREFIX = "evc"
DEFAULT_LIMIT = 100
MAX_LIMIT = 500
#: The most events one reader numbers at once (the rest wait for the next read).
PLACE_BATCH = 10_000
#: The feed lock's namespace (the first key of PostgreSQL's two-key advisory lock; the second is the creditor).
LOCK_NAMESPACE = 0x65767473  # "evts"


def cursor_of(event: CreditorEvent) -> str:
    assert event.position is not None  # only placed events are handed out
    return cursors.encode(PREFIX, event.position)


def parse_after(after: str | None) -> int:
    if after is None or after == "":
        return 0
    try:
        (position,) = cursors.decode(PREFIX, after, 1)
    except ValueError:
        raise InvalidData({"after": "a next_cursor from an earlier answer of this feed"}) from None
    return position


def place(creditor_id: int) -> int:
    """Number the creditor's committed events that have no position yet, after the highest one, in id
    order, under the creditor's feed lock (held to the end of the caller's transaction, which must
    commit before the positions are shown). Returns how many were numbered."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(text("SELECT pg_advisory_xact_lock(:namespace, :creditor)"),
                           {"namespace": LOCK_NAMESPACE, "creditor": creditor_id})
    ids = list(db.session.scalars(select(CreditorEvent.id).where(
        CreditorEvent.creditor_id == creditor_id, CreditorEvent.position.is_(None),
    ).order_by(CreditorEvent.id).limit(PLACE_BATCH)))
    if not ids:
        return 0
    last = db.session.scalar(select(func.max(CreditorEvent.position)).where(
        CreditorEvent.creditor_id == creditor_id)) or 0
    update_rows(db.session, CreditorEvent.__table__,
                [{"id": event_id, "position": last + n} for n, event_id in enumerate(ids, start=1)])
    for held in db.session.identity_map.values():
        if isinstance(held, CreditorEvent) and held.creditor_id == creditor_id:
            db.session.expire(held, ["position"])
    return len(ids)


def page(creditor_id: int, *, after: str | None, livemode: bool = True, limit: int = DEFAULT_LIMIT
         ) -> tuple[list[CreditorEvent], str | None]:
    """Up to `limit` of the creditor's events of this mode after the cursor, in the feed's order, and
    the cursor to ask with next (the same one when nothing new came; None when the feed is empty).
    Numbers what is new first (`place`): the caller commits before it shows the answer.

    Live and test events share the creditor's positions (one numbering); each mode's reader sees only
    its own: events of test data only with a test key."""
    position = parse_after(after)
    place(creditor_id)
    events = list(db.session.scalars(select(CreditorEvent).where(
        CreditorEvent.creditor_id == creditor_id, CreditorEvent.livemode == livemode,
        CreditorEvent.position > position,
    ).order_by(CreditorEvent.position).limit(limit)))
    next_cursor = cursor_of(events[-1]) if events else (after or None)
    return events, next_cursor
