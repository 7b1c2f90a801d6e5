"""Debt collection: partners (collection agencies), each creditor's hand-off policy, and cases.

A case is one invoice handed to one partner, with the case file as it was sent. An invoice has at
most one case that is not over (a partial unique index): two runs of the hand-off at the same
moment cannot both make one. Events the partner reports are kept once each (its event id).
"""

from __future__ import annotations

from datetime import datetime
from enum import nonmember

from flask_babel import gettext as _
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.billing.models import Invoice
from app.core.enums import Labelled
from app.extensions import Model
from app.models import UTCDateTime, utcnow


class Partner(Model):
    """A collection agency. It receives cases at `endpoint_url` (signed deliveries through the
    outbox) and calls the partner API with its own key."""

    __tablename__ = "collection_partners"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    endpoint_url: Mapped[str] = mapped_column(String(500))
    # The partner's own page for a case, shown on the bill page: "{reference}" is replaced by the
    # partner's reference for the case (or ours until it has one).
    case_page_url: Mapped[str | None] = mapped_column(String(500))
    phone: Mapped[str | None] = mapped_column(String(32))
    email: Mapped[str | None] = mapped_column(String(254))
    website: Mapped[str | None] = mapped_column(String(300))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    disabled_reason: Mapped[str | None] = mapped_column(String(300))  # e.g. the endpoint answered 410 Gone
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    secrets: Mapped[list[PartnerSecret]] = relationship(
        back_populates="partner", order_by="PartnerSecret.id", cascade="all, delete-orphan")


class PartnerSecret(Model):
    """A signing secret of a partner's deliveries, encrypted at rest (`app.crypto`). Every live
    secret signs (two during a rotation), so the partner may verify with either."""

    __tablename__ = "collection_partner_secrets"
    __table_args__ = (Index("ix_collection_partner_secrets_partner_id", "partner_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("collection_partners.id", ondelete="CASCADE"))
    encrypted: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    partner: Mapped[Partner] = relationship(back_populates="secrets")


class PartnerApiKey(Model):
    """A partner's key to the partner API; only its SHA-256 is stored."""

    __tablename__ = "collection_partner_api_keys"
    __table_args__ = (Index("ix_collection_partner_api_keys_partner_id", "partner_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("collection_partners.id", ondelete="CASCADE"))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))  # shown in listings, to tell keys apart
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    partner: Mapped[Partner] = relationship()


class Policy(Model):
    """When a creditor's unpaid bills go to its partner: at least `min_balance` owed, at least
    `days_past_due` after the due date and `days_after_final_reminder` after the final reminder,
    and nothing that pauses dunning (`resolutions.pause`). `keep_payments`: the bill page still
    takes payments after the hand-off (each one is reported to the partner)."""

    __tablename__ = "collection_policies"

    id: Mapped[int] = mapped_column(primary_key=True)
    creditor_id: Mapped[int] = mapped_column(ForeignKey("creditors.id", ondelete="CASCADE"), unique=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("collection_partners.id", ondelete="RESTRICT"))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    min_balance: Mapped[int] = mapped_column(BigInteger, default=0)
    days_past_due: Mapped[int] = mapped_column(Integer, default=30)
    days_after_final_reminder: Mapped[int] = mapped_column(Integer, default=14)
    keep_payments: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    partner: Mapped[Partner] = relationship()


class CaseStatus(Labelled):
    SENT = "sent"  # handed off, not acknowledged yet
    ACKNOWLEDGED = "acknowledged"
    RECALL_REQUESTED = "recall_requested"  # the creditor took it back; waiting for the partner to confirm
    RECALLED = "recalled"
    CLOSED_PAID = "closed_paid"
    CLOSED_UNCOLLECTABLE = "closed_uncollectable"
    RETURNED = "returned"  # the partner gave it back (case_returned, with a reason)

    ACTIVE = nonmember((SENT, ACKNOWLEDGED))  # the partner handles the bill
    OPEN = nonmember((SENT, ACKNOWLEDGED, RECALL_REQUESTED))  # not over: at most one per invoice

    @classmethod
    def words(cls) -> dict[str, str]:
        """Where the case stands, for agents."""
        return {cls.SENT: _("sent, not acknowledged yet"), cls.ACKNOWLEDGED: _("with the partner"),
                cls.RECALL_REQUESTED: _("recalled, waiting for the partner's confirmation"),
                cls.RECALLED: _("recalled"), cls.CLOSED_PAID: _("closed: paid"),
                cls.CLOSED_UNCOLLECTABLE: _("closed: uncollectable"),
                cls.RETURNED: _("returned by the partner")}


# "status IN ('sent', 'acknowledged', 'recall_requested')": the partial unique index's condition (migration 0007)
OPEN_CASES = CaseStatus.sql_in("status", CaseStatus.OPEN)


class Case(Model):
    __tablename__ = "collection_cases"
    __table_args__ = (
        # At most one case per invoice that is not over: the last guard against a double hand-off.
        Index("uq_collection_cases_open_invoice", "invoice_id", unique=True,
              postgresql_where=text(OPEN_CASES), sqlite_where=text(OPEN_CASES)),
        Index("ix_collection_cases_partner_id_status", "partner_id", "status"),
        Index("ix_collection_cases_creditor_id", "creditor_id"),
        Index("ix_collection_cases_invoice_id", "invoice_id"),  # a bill's cases, over or not (a return's wait)
        CheckConstraint(CaseStatus.sql_in("status"), name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True)  # "case_…": the case id partners see
    creditor_id: Mapped[int] = mapped_column(ForeignKey("creditors.id", ondelete="CASCADE"))
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id", ondelete="CASCADE"))
    partner_id: Mapped[int] = mapped_column(ForeignKey("collection_partners.id", ondelete="RESTRICT"))
    status: Mapped[str] = mapped_column(String(24), default=CaseStatus.SENT)
    partner_reference: Mapped[str | None] = mapped_column(String(64))
    currency: Mapped[str] = mapped_column(String(3))
    principal: Mapped[int] = mapped_column(BigInteger)  # outstanding at hand-off, split
    fees: Mapped[int] = mapped_column(BigInteger)
    interest: Mapped[int] = mapped_column(BigInteger)
    keep_payments: Mapped[bool] = mapped_column(Boolean, default=False)  # the policy's, at hand-off
    case_file: Mapped[dict] = mapped_column(JSON)  # as last sent (at hand-off, then with each case.updated)
    # The partner's own figure of what the debtor owes it now (its costs and interest included), as it
    # last reported it, and when: the bill page shows it.
    partner_claim: Mapped[int | None] = mapped_column(BigInteger)
    partner_claim_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    handed_off_by: Mapped[str] = mapped_column(String(64))  # scheduler or agent:<id>
    handed_off_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    recalled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    invoice: Mapped[Invoice] = relationship()
    partner: Mapped[Partner] = relationship()

    @property
    def total(self) -> int:
        return self.principal + self.fees + self.interest


class CaseEvent(Model):
    """What a partner reported about a case, once per partner event id."""

    __tablename__ = "collection_case_events"
    __table_args__ = (
        UniqueConstraint("partner_id", "event_id"),
        Index("ix_collection_case_events_case_id", "case_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("collection_cases.id", ondelete="CASCADE"))
    partner_id: Mapped[int] = mapped_column(ForeignKey("collection_partners.id", ondelete="CASCADE"))
    event_id: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(32))
    amount: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str | None] = mapped_column(String(3))
    occurred_on: Mapped[str | None] = mapped_column(String(10))  # ISO date, as the partner gave it
    note: Mapped[str | None] = mapped_column(String(500))
    # What the event reports beyond an amount (a reason, costs, a plan's instalments, contact details, a
    # message), as validated; None for payments and closures.
    details: Mapped[dict | None] = mapped_column(JSON)
    # An agent dealt with it (a returned case, new contact details, a message: they wait in the inbox).
    handled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    handled_by: Mapped[str | None] = mapped_column(String(64))
    payload_hash: Mapped[str] = mapped_column(String(64))  # a repeat with other content is a conflict
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    case: Mapped[Case] = relationship()

    @property
    def creditor_id(self) -> int:
        return self.case.creditor_id

    @property
    def invoice_id(self) -> int:
        return self.case.invoice_id
