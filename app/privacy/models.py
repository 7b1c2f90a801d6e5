"""A creditor's retention period, and the marks the retention leaves (what was done to which record).

A mark is written in the same transaction as the minimisation it records; its unique key (kind,
record) makes a second run, or a run beside this one, do nothing twice."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.core.enums import Codes
from app.extensions import Model
from app.models import UTCDateTime, utcnow


class MarkKind(Codes):
    INVOICE_MINIMISED = "invoice_minimised"  # the conversation about a closed bill removed; the invoice kept
    CUSTOMER_MINIMISED = "customer_minimised"  # contact data removed; name and address kept where the law wants them
    CUSTOMER_ANONYMISED = "customer_anonymised"  # nothing left that names the person


class PrivacySettings(Model):
    """A creditor's retention period (`flask privacy retention`); none: its country's default (`rules`)."""

    __tablename__ = "privacy_settings"
    __table_args__ = (CheckConstraint("retention_months >= 1", name="retention_positive"),)

    creditor_id: Mapped[int] = mapped_column(ForeignKey("creditors.id", ondelete="CASCADE"), primary_key=True)
    retention_months: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class PrivacyMark(Model):
    __tablename__ = "privacy_marks"
    __table_args__ = (
        UniqueConstraint("kind", "record_id"),
        Index("ix_privacy_marks_creditor_id", "creditor_id"),
        CheckConstraint(MarkKind.sql_in("kind"), name="kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    creditor_id: Mapped[int] = mapped_column(ForeignKey("creditors.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(24))
    record_id: Mapped[int] = mapped_column(Integer)  # the invoice's or the customer's id
    reason: Mapped[str] = mapped_column(String(16))  # "retention" | "request"
    # A customer minimised: the last day bookkeeping law keeps one of their invoices (then anonymised).
    until: Mapped[date | None] = mapped_column(Date)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
