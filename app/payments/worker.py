"""The notification worker's loop (`flask payments apply-events`): it owns its transactions."""

from __future__ import annotations

from sqlalchemy import select

from app.extensions import db
from app.payments.ingest import apply_event, event_from_record
from app.payments.models import WebhookEvent


def apply_received_events(limit: int = 100) -> dict[str, int]:
    """Apply stored events not applied yet, oldest first, each in its own transaction (this commits:
    it is the worker's loop, `flask payments apply-events`). Several workers can run side by side on
    PostgreSQL: each event is claimed with FOR UPDATE SKIP LOCKED. Returns outcomes counted."""
    counts: dict[str, int] = {}
    for _ in range(limit):
        record = db.session.scalar(
            select(WebhookEvent).where(WebhookEvent.outcome == "received").order_by(WebhookEvent.id)
            .limit(1).with_for_update(skip_locked=True)
        )
        if record is None:
            break
        apply_event(record, event_from_record(record))
        db.session.commit()
        counts[record.outcome] = counts.get(record.outcome, 0) + 1
    return counts
