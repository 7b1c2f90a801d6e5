"""AccessLink: one signed link sent to a customer. The URL carries the signed key, never ids."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.billing.models import Invoice
from app.extensions import Model
from app.models import UTCDateTime, utcnow

CHANNELS = ("sms", "email", "letter", "api")
PURPOSES = ("bill",)


class AccessLink(Model):
    __tablename__ = "access_links"
    __table_args__ = (Index("ix_access_links_invoice_id", "invoice_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # SHA-256 of the random key carried (signed) in the URL; the key itself is never stored.
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # A letter's link is typed from paper: a short code (`links.codes`), kept only as its keyed hash.
    code_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id", ondelete="CASCADE"))
    purpose: Mapped[str] = mapped_column(String(16), default="bill")
    channel: Mapped[str] = mapped_column(String(10))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    open_count: Mapped[int] = mapped_column(Integer, default=0)
    step_up_failures: Mapped[int] = mapped_column(Integer, default=0)

    invoice: Mapped[Invoice] = relationship()
