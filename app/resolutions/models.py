"""Resolution: one thing a customer chose instead of (or before) paying in full, and its instalments.

One table for the four kinds, because they share their life (a reference, a status, the
customer's words, an agent's answer) and because the pause rule (`resolutions.pause`) must see
all of them in one query. Columns a kind does not use stay NULL.

- dispute: reason, message, attachment, line_ids (None: the whole invoice), amount (disputed)
- promise: new_date (the promised date), amount (what was owed then)
- deferral: old_date -> new_date (due dates), fee; granted at once or requested from an agent
- plan: amount (total of the instalments), fee, interest, paid_before, instalments; a request beyond
  the rules (status open) has months and the customer's message, and its schedule once granted
"""

from __future__ import annotations

from datetime import date, datetime
from enum import nonmember

from flask_babel import gettext as _
from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.billing.models import Invoice
from app.core.enums import Labelled
from app.extensions import Model
from app.models import UTCDateTime, utcnow
from app.support.models import Attachment


class Kind(Labelled):
    DISPUTE = "dispute"
    PROMISE = "promise"
    DEFERRAL = "deferral"
    PLAN = "plan"

    @classmethod
    def words(cls) -> dict[str, str]:
        return {cls.DISPUTE: _("Dispute"), cls.PROMISE: _("Promise to pay"), cls.DEFERRAL: _("More time"),
                cls.PLAN: _("Instalment plan")}


class Status(Labelled):
    OPEN = "open"  # a dispute under review, a deferral request waiting for an agent
    ACTIVE = "active"  # a promise or plan running, a deferral granted
    KEPT = "kept"  # a promise or plan paid in full
    BROKEN = "broken"  # a promise or plan not kept: the process resumes
    UPHELD = "upheld"  # a dispute the creditor agreed with
    PARTIAL = "partial"  # a dispute the creditor agreed with in part (a credit or correction, the rest stands)
    REJECTED = "rejected"  # a dispute the creditor did not agree with
    DECLINED = "declined"  # a deferral request an agent refused
    CANCELLED = "cancelled"  # ended because the invoice was settled otherwise

    LIVE = nonmember((OPEN, ACTIVE))

    @classmethod
    def words(cls) -> dict[str, str]:
        """Where a dispute, promise, deferral or plan stands (or how it ended), for agents."""
        return {cls.OPEN: _("waiting for a decision"), cls.ACTIVE: _("running"), cls.KEPT: _("kept"),
                cls.BROKEN: _("broken"), cls.UPHELD: _("upheld"), cls.PARTIAL: _("partly upheld"),
                cls.REJECTED: _("rejected"), cls.DECLINED: _("declined"), cls.CANCELLED: _("ended")}


DISPUTE_REASONS = ("not_received", "wrong_amount", "already_paid", "contract_cancelled", "other")


class Resolution(Model):
    __tablename__ = "resolutions"
    __table_args__ = (
        UniqueConstraint("invoice_id", "submission_key"),
        Index("ix_resolutions_invoice_status", "invoice_id", "status"),
        Index("ix_resolutions_creditor_status", "creditor_id", "status"),
        CheckConstraint(Kind.sql_in("kind"), name="kind"),
        CheckConstraint(Status.sql_in("status"), name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(String(16), unique=True)
    creditor_id: Mapped[int] = mapped_column(ForeignKey("creditors.id", ondelete="CASCADE"))
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(12))
    status: Mapped[str] = mapped_column(String(12))
    reason: Mapped[str | None] = mapped_column(String(24))
    message: Mapped[str | None] = mapped_column(Text)
    attachment_id: Mapped[int | None] = mapped_column(ForeignKey("attachments.id", ondelete="SET NULL"))
    line_ids: Mapped[list | None] = mapped_column(JSON)
    amount: Mapped[int | None] = mapped_column(BigInteger)
    fee: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    interest: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    paid_before: Mapped[int | None] = mapped_column(BigInteger)
    months: Mapped[int | None] = mapped_column(Integer)  # a plan: its number of monthly instalments
    old_date: Mapped[date | None] = mapped_column(Date)
    new_date: Mapped[date | None] = mapped_column(Date)
    answer: Mapped[str | None] = mapped_column(Text)  # the agent's words to the customer
    answered_by: Mapped[str | None] = mapped_column(String(64))
    locale: Mapped[str] = mapped_column(String(8))
    submission_key: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    invoice: Mapped[Invoice] = relationship()
    attachment: Mapped[Attachment | None] = relationship()
    instalments: Mapped[list[Instalment]] = relationship(
        back_populates="plan", order_by="Instalment.seq", cascade="all, delete-orphan"
    )

    @property
    def is_live(self) -> bool:
        return self.status in Status.LIVE


class Instalment(Model):
    __tablename__ = "instalments"
    __table_args__ = (UniqueConstraint("plan_id", "seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("resolutions.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)  # 1, 2, ...
    due_date: Mapped[date] = mapped_column(Date)
    amount: Mapped[int] = mapped_column(BigInteger)

    plan: Mapped[Resolution] = relationship(back_populates="instalments")
