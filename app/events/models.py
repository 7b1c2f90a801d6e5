"""The creditor's events (the catalogue in `events.catalogue`), its webhook endpoints, and what was
delivered to them (one delivery per event and endpoint, each try in the delivery log)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text, true
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import Model
from app.models import UTCDateTime, utcnow


class CreditorEvent(Model):
    """Something that happened to one of a creditor's bills, recorded once, in the transaction of the
    change it reports. Append-only but for `position`, the event's place in the creditor's feed, given
    once it is committed (see `events.feed`)."""

    __tablename__ = "creditor_events"
    __table_args__ = (
        UniqueConstraint("creditor_id", "position"),
        Index("ix_creditor_events_unplaced", "creditor_id", "id", postgresql_where=text("position IS NULL"),
              sqlite_where=text("position IS NULL")),
        Index("ix_creditor_events_creditor_created", "creditor_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True)  # "evt_…"
    creditor_id: Mapped[int] = mapped_column(ForeignKey("creditors.id", ondelete="CASCADE"))
    position: Mapped[int | None] = mapped_column(BigInteger)  # 1, 2, 3… per creditor, in the order the feed saw them
    type: Mapped[str] = mapped_column(String(40))
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id", ondelete="SET NULL"), index=True)
    # False: an event of test data (a test bill or customer): only a test key's feed shows it.
    livemode: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    payload: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class WebhookEndpoint(Model):
    """Where a creditor wants its events: a URL, the types it wants (none listed: all), its signing
    secrets (encrypted with DATA_ENCRYPTION_KEYS; the previous one signs too until `previous_until`)."""

    __tablename__ = "webhook_endpoints"
    __table_args__ = (Index("ix_webhook_endpoints_creditor_id", "creditor_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True)  # "we_…"
    creditor_id: Mapped[int] = mapped_column(ForeignKey("creditors.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(String(500))
    description: Mapped[str | None] = mapped_column(String(200))
    types: Mapped[list] = mapped_column(JSON, default=list)
    secret_encrypted: Mapped[str] = mapped_column(Text)
    previous_secret_encrypted: Mapped[str | None] = mapped_column(Text)
    previous_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    # False: a test endpoint, which gets test events only (a live one gets live events only).
    livemode: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    disabled_reason: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    def wants(self, event_type: str) -> bool:
        return not self.types or event_type in self.types


class WebhookDelivery(Model):
    """One event sent (or to be sent) to one endpoint, through one outbox message. A replay is a new
    delivery of the same event (`replay_of`)."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_endpoint_id", "endpoint_id", "id"),
        Index("ix_webhook_deliveries_event_id", "event_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    creditor_id: Mapped[int] = mapped_column(ForeignKey("creditors.id", ondelete="CASCADE"))
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    event_id: Mapped[int] = mapped_column(ForeignKey("creditor_events.id", ondelete="CASCADE"))
    outbox_message_id: Mapped[int | None] = mapped_column(ForeignKey("outbox_messages.id", ondelete="SET NULL"))
    replay_of: Mapped[int | None] = mapped_column(ForeignKey("webhook_deliveries.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    endpoint: Mapped[WebhookEndpoint] = relationship()
    event: Mapped[CreditorEvent] = relationship()
    attempts: Mapped[list[WebhookAttempt]] = relationship(order_by="WebhookAttempt.id",
                                                          cascade="all, delete-orphan")


class WebhookAttempt(Model):
    """One try of a delivery: the delivery log."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (Index("ix_webhook_attempts_delivery_id", "delivery_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("webhook_deliveries.id", ondelete="CASCADE"))
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    succeeded: Mapped[bool] = mapped_column(Boolean)
    response_code: Mapped[int | None] = mapped_column(Integer)
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(300))
