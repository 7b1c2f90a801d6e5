"""What the funnel is read from: the attribution of each payment to the reminder that brought the
customer, and the weekly rollups the `flask analytics rollup` run keeps (docs/analytics.md).

A rollup row is a sum over raw rows (messages, payments, bills) of one creditor's week; the run
recomputes whole weeks from the raw rows, so a row is always what the raw rows say as of the run.
Dimensions that may be missing are stored as a value, not NULL, so that they can be part of the
primary key: step position 0 and plan 0 (a message without a live notice has neither), variant ''.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Boolean, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import Model
from app.models import UTCDateTime, utcnow


class Attribution(Model):
    """One portal payment of a live bill, and the reminder message whose link the customer last opened
    within the attribution window before paying (None: no reminder's link was opened in it: paid
    "directly"). Written by the rollup run, in batches, never on the settle path."""

    __tablename__ = "analytics_attributions"
    __table_args__ = (Index("ix_analytics_attributions_message_id", "message_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    payment_id: Mapped[int] = mapped_column(ForeignKey("payments.id", ondelete="CASCADE"), unique=True)
    creditor_id: Mapped[int] = mapped_column(ForeignKey("creditors.id", ondelete="CASCADE"))
    message_id: Mapped[int | None] = mapped_column(ForeignKey("dunning_messages.id", ondelete="SET NULL"))
    opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # the opening that counted
    window_days: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class FunnelWeek(Model):
    """Reminder messages sent in one local week of a creditor, by channel, step, plan, language and
    variant: how many were sent, delivered, opened, failed, and brought a payment."""

    __tablename__ = "analytics_funnel_weeks"

    creditor_id: Mapped[int] = mapped_column(ForeignKey("creditors.id", ondelete="CASCADE"), primary_key=True)
    week: Mapped[date] = mapped_column(Date, primary_key=True)  # the Monday, the creditor's local date
    channel: Mapped[str] = mapped_column(String(8), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)  # the step; 0: none
    plan_id: Mapped[int] = mapped_column(Integer, primary_key=True)  # the plan version; 0: none
    locale: Mapped[str] = mapped_column(String(8), primary_key=True)
    variant: Mapped[str] = mapped_column(String(40), primary_key=True)  # '': none
    sent: Mapped[int] = mapped_column(Integer)
    delivered: Mapped[int] = mapped_column(Integer)
    opened: Mapped[int] = mapped_column(Integer)
    failed: Mapped[int] = mapped_column(Integer)
    paid: Mapped[int] = mapped_column(Integer)  # messages that brought at least one payment


class FunnelPayment(Model):
    """The payments attributed to the messages of a `FunnelWeek` row, by currency and whole days from
    the message to the payment (a histogram: the median is read from it exactly)."""

    __tablename__ = "analytics_funnel_payments"

    creditor_id: Mapped[int] = mapped_column(ForeignKey("creditors.id", ondelete="CASCADE"), primary_key=True)
    week: Mapped[date] = mapped_column(Date, primary_key=True)
    channel: Mapped[str] = mapped_column(String(8), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    plan_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    locale: Mapped[str] = mapped_column(String(8), primary_key=True)
    variant: Mapped[str] = mapped_column(String(40), primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    days: Mapped[int] = mapped_column(Integer, primary_key=True)
    payments: Mapped[int] = mapped_column(Integer)
    amount: Mapped[int] = mapped_column(BigInteger)


class PaymentWeek(Model):
    """Payments of live bills received in one local week, by currency and source: `reminder` (attributed
    to a reminder message), `direct` (through the portal or the bank, no reminder's link opened in the
    window) and `partner` (reported paid to the collection partner: counted apart)."""

    __tablename__ = "analytics_payment_weeks"

    creditor_id: Mapped[int] = mapped_column(ForeignKey("creditors.id", ondelete="CASCADE"), primary_key=True)
    week: Mapped[date] = mapped_column(Date, primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    source: Mapped[str] = mapped_column(String(8), primary_key=True)
    payments: Mapped[int] = mapped_column(Integer)
    amount: Mapped[int] = mapped_column(BigInteger)


class BillWeek(Model):
    """Live bills due in one week (the Monday of the due date), by plan version and currency: what became
    of them so far."""

    __tablename__ = "analytics_bill_weeks"

    creditor_id: Mapped[int] = mapped_column(ForeignKey("creditors.id", ondelete="CASCADE"), primary_key=True)
    week: Mapped[date] = mapped_column(Date, primary_key=True)
    plan_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    bills: Mapped[int] = mapped_column(Integer)
    billed: Mapped[int] = mapped_column(BigInteger)  # their totals
    paid: Mapped[int] = mapped_column(Integer)  # paid in full
    paid_before_reminder: Mapped[int] = mapped_column(Integer)  # paid in full, no reminder after the due date sent
    handed_off: Mapped[int] = mapped_column(Integer)  # ever handed to the collection partner
    outstanding: Mapped[int] = mapped_column(BigInteger)  # left to pay on them now


class ClarityAnswer(Model):
    """A customer's one tap on "Was this bill clear?" at the end of the bill page (`place` bill) or on a
    receipt (`receipt`), with the comment they may add; the last answer per bill and place counts.
    The comment also lands in the back office's inbox as a contact request (`support_request_id`)."""

    __tablename__ = "analytics_clarity"
    __table_args__ = (
        UniqueConstraint("invoice_id", "place"),
        Index("ix_analytics_clarity_creditor_id_updated_at", "creditor_id", "updated_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    creditor_id: Mapped[int] = mapped_column(ForeignKey("creditors.id", ondelete="CASCADE"))
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id", ondelete="CASCADE"))
    place: Mapped[str] = mapped_column(String(8))
    clear: Mapped[bool] = mapped_column(Boolean)
    comment: Mapped[str | None] = mapped_column(Text)
    support_request_id: Mapped[int | None] = mapped_column(ForeignKey("support_requests.id", ondelete="SET NULL"))
    locale: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
