"""SupportRequest (one conversation about a bill), SupportMessage and Attachment."""

from __future__ import annotations

from datetime import date, datetime

from flask_babel import gettext as _
from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.billing.models import Invoice
from app.core.enums import Labelled
from app.extensions import Model
from app.models import UTCDateTime, utcnow

TOPICS = ("bill_question", "contact_details", "already_paid", "other")
CONTACT_METHODS = ("email", "phone")
CALLBACK_WINDOWS = ("morning", "afternoon", "evening")  # a day's call-back hours cut at 12:00 and 16:00


class RequestStatus(Labelled):
    OPEN = "open"  # waiting for an agent
    ANSWERED = "answered"  # an agent replied; the customer may write again
    CLOSED = "closed"

    @classmethod
    def words(cls) -> dict[str, str]:
        """Where the conversation stands, as the customer reads it."""
        return {cls.OPEN: _("Waiting for our answer"), cls.ANSWERED: _("Answered"), cls.CLOSED: _("Closed")}


class Attachment(Model):
    """A file a customer sent (proof of payment, a photo of a meter). The bytes live on disk under
    ATTACHMENT_DIR, outside static/, by a random storage key; only agents open them."""

    __tablename__ = "attachments"
    __table_args__ = (Index("ix_attachments_invoice_id", "invoice_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    public_ref: Mapped[str] = mapped_column(String(24), unique=True)
    creditor_id: Mapped[int] = mapped_column(ForeignKey("creditors.id", ondelete="CASCADE"))
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id", ondelete="CASCADE"))
    filename: Mapped[str] = mapped_column(String(200))  # as the customer named it, cleaned; never a path
    mime: Mapped[str] = mapped_column(String(32))  # from the content, not the name
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class SupportRequest(Model):
    __tablename__ = "support_requests"
    __table_args__ = (
        UniqueConstraint("invoice_id", "submission_key"),
        Index("ix_support_requests_invoice_id", "invoice_id"),
        Index("ix_support_requests_creditor_status", "creditor_id", "status"),
        CheckConstraint(RequestStatus.sql_in("status"), name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(String(16), unique=True)  # what the customer quotes: S-XXXXXXXX
    creditor_id: Mapped[int] = mapped_column(ForeignKey("creditors.id", ondelete="CASCADE"))
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id", ondelete="CASCADE"))
    topic: Mapped[str] = mapped_column(String(24))
    status: Mapped[str] = mapped_column(String(12), default=RequestStatus.OPEN)
    contact_method: Mapped[str] = mapped_column(String(8))
    contact_email: Mapped[str | None] = mapped_column(String(254))
    contact_phone: Mapped[str | None] = mapped_column(String(32))
    callback_date: Mapped[date | None] = mapped_column(Date)
    callback_window: Mapped[str | None] = mapped_column(String(12))
    # The window the customer chose, as moments (UTC): inside the creditor's call-back hours that day.
    callback_start: Mapped[datetime | None] = mapped_column(UTCDateTime())
    callback_end: Mapped[datetime | None] = mapped_column(UTCDateTime())
    locale: Mapped[str] = mapped_column(String(8))
    # The form's one-time key: a double submit finds the request the first submit made.
    submission_key: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    invoice: Mapped[Invoice] = relationship()
    messages: Mapped[list[SupportMessage]] = relationship(
        back_populates="request", order_by="SupportMessage.id", cascade="all, delete-orphan"
    )


class SupportMessage(Model):
    """One message of a thread, by the customer or an agent. Plain text: shown escaped everywhere."""

    __tablename__ = "support_messages"
    __table_args__ = (
        Index("ix_support_messages_request_id", "request_id"),
        UniqueConstraint("request_id", "submission_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("support_requests.id", ondelete="CASCADE"))
    author: Mapped[str] = mapped_column(String(8))  # customer | agent
    author_name: Mapped[str | None] = mapped_column(String(100))
    body: Mapped[str] = mapped_column(Text)
    attachment_id: Mapped[int | None] = mapped_column(ForeignKey("attachments.id", ondelete="SET NULL"))
    submission_key: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    request: Mapped[SupportRequest] = relationship(back_populates="messages")
    attachment: Mapped[Attachment | None] = relationship()
