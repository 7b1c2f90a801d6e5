"""OutboxMessage: one side effect to deliver (an e-mail, later SMS and partner webhooks)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from flask_babel import gettext as _
from sqlalchemy import JSON, Boolean, CheckConstraint, ForeignKey, Index, Integer, String, Text, true
from sqlalchemy.orm import Mapped, mapped_column

from app.core.enums import Labelled
from app.extensions import Model
from app.models import UTCDateTime, utcnow


class OutboxStatus(Labelled):
    PENDING = "pending"  # waiting for its next try (the first, or a retry after backoff)
    DELIVERED = "delivered"
    DEAD = "dead"  # out of tries, or refused for good: an agent sees it and may replay it

    @classmethod
    def words(cls) -> dict[str, str]:
        """For agents (the dead letters)."""
        return {cls.PENDING: _("Queued"), cls.DELIVERED: _("Delivered"), cls.DEAD: _("Not delivered")}


class OutboxMessage(Model):
    """Written in the same transaction as the change that causes it; delivered at least once
    by the dispatcher, which sends `idempotency_key` along so the receiver can drop repeats."""

    __tablename__ = "outbox_messages"
    __table_args__ = (
        Index("ix_outbox_messages_status_next_attempt_at", "status", "next_attempt_at"),
        CheckConstraint(OutboxStatus.sql_in("status"), name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    creditor_id: Mapped[int | None] = mapped_column(ForeignKey("creditors.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(String(20))  # "email"
    kind: Mapped[str] = mapped_column(String(40))  # "payment_receipt", ...
    recipient: Mapped[str] = mapped_column(String(254))
    locale: Mapped[str | None] = mapped_column(String(8))
    payload: Mapped[dict] = mapped_column(JSON, default=dict)  # ids and facts to render from, no secrets
    idempotency_key: Mapped[str] = mapped_column(String(120), unique=True)
    status: Mapped[str] = mapped_column(String(20), default=OutboxStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # counted when claimed (see outbox.services)
    # When the next try is due; while a dispatcher holds the message, the end of its lease.
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    replayed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # last put back from the dead letters
    # What the provider said after accepting it (an SMS's delivery status callback, a bounce): its id
    # for the message (Twilio's SID) and the last status it reported.
    provider_ref: Mapped[str | None] = mapped_column(String(64), index=True)
    provider_status: Mapped[str | None] = mapped_column(String(32))
    provider_status_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # What the customer received, as sent (links' tokens redacted): the back office's timeline shows it.
    # Kept for e-mail and SMS to customers; never for an agent's own mail (its code) nor for webhooks.
    sent_subject: Mapped[str | None] = mapped_column(String(300))
    sent_text: Mapped[str | None] = mapped_column(Text)
    # False: a message a test bill caused. To the customer (e-mail, SMS) it is rendered and kept, never
    # sent: "test, not sent" (docs/api.md, "Test mode"). No Python default: set-wise inserts that name no
    # mode (receipts of a bank file, reminders) leave it to the server's.
    livemode: Mapped[bool] = mapped_column(Boolean, server_default=true())

    # Not a column: what a kind's preparer read for this message's batch (`outbox.base.Preparer`), for its
    # renderer; set by the dispatcher for one batch and cleared at its end.
    prepared = cast(Any, None)
