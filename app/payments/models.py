"""PaymentAttempt (one try at a provider), Payment (money received), Refund (money paid back),
WebhookEvent (every notification)."""

from __future__ import annotations

import secrets
from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.billing.models import Invoice
from app.core.enums import Labelled
from app.extensions import Model
from app.models import UTCDateTime, utcnow
from app.payments.gateways.base import PaymentStatus


class PaymentAttempt(Model):
    """One try to pay an invoice at one provider. Live attempts are reused, not duplicated."""

    __tablename__ = "payment_attempts"
    __table_args__ = (
        UniqueConstraint("provider", "provider_ref"),
        Index("ix_payment_attempts_invoice_id_status", "invoice_id", "status"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint(PaymentStatus.sql_in("status"), name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    public_ref: Mapped[str] = mapped_column(String(32), unique=True)  # ours: sent to the provider, in return URLs
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id", ondelete="CASCADE"))
    provider: Mapped[str] = mapped_column(String(20))
    provider_ref: Mapped[str | None] = mapped_column(String(100))
    amount: Mapped[int] = mapped_column(BigInteger)  # minor units, from the database, never the form
    currency: Mapped[str] = mapped_column(String(3))
    method: Mapped[str | None] = mapped_column(String(30))
    status: Mapped[str] = mapped_column(String(20), default=PaymentStatus.PENDING)
    failure_reason: Mapped[str | None] = mapped_column(String(200))
    redirect_url: Mapped[str | None] = mapped_column(String(1000))
    # For an embedded flow (Stripe Payment Element, Adyen Drop-in): publishable key, client secret
    # or session data. Shown only to the customer holding the bill's grant; never logged.
    client_config: Mapped[dict | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    invoice: Mapped[Invoice] = relationship()

    @property
    def is_live(self) -> bool:
        """Still payable: not final, not expired."""
        if self.status in PaymentStatus.FINAL:
            return False
        return self.expires_at is None or self.expires_at > utcnow()


class PaymentMismatch(Labelled):
    """How money a provider reported differs from the attempt it paid: such a payment is recorded as
    received, not booked on the bill, and owed back in full (an agent decides)."""

    AMOUNT = "amount"
    CURRENCY = "currency"

    @classmethod
    def words(cls) -> dict[str, str]:
        return {cls.AMOUNT: _("another amount than the payment asked for"),
                cls.CURRENCY: _("another currency than the bill's")}


class Payment(Model):
    """Money received for an invoice. The unique key on the provider's payment id makes it once."""

    __tablename__ = "payments"
    __table_args__ = (
        UniqueConstraint("provider", "provider_payment_id"),
        Index("ix_payments_invoice_id", "invoice_id"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("refund_due >= 0", name="refund_due_not_negative"),
        CheckConstraint(PaymentMismatch.sql_in("mismatch"), name="mismatch"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # Ours, random: the receipt page's address (/b/<bill>/receipts/<public_ref>) and the receipt's number.
    public_ref: Mapped[str] = mapped_column(String(32), unique=True, default=lambda: secrets.token_urlsafe(16))
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id", ondelete="RESTRICT"))
    attempt_id: Mapped[int | None] = mapped_column(ForeignKey("payment_attempts.id", ondelete="SET NULL"))
    provider: Mapped[str] = mapped_column(String(20))  # "simulator", "stripe", "adyen", "bank_transfer", "manual"
    provider_payment_id: Mapped[str] = mapped_column(String(100))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    method: Mapped[str | None] = mapped_column(String(30))
    # What was paid beyond the balance (an overpayment, or a payment of a paid invoice):
    # settled, and owed back to the customer. Agents see it until it is refunded.
    refund_due: Mapped[int] = mapped_column(BigInteger, default=0)
    refunded: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")  # paid back so far
    # Set when the provider reported another amount or currency than its attempt asked for: the
    # payment is then not counted in the invoice's amount paid, and all of it is owed back.
    mismatch: Mapped[str | None] = mapped_column(String(16))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    invoice: Mapped[Invoice] = relationship()
    attempt: Mapped[PaymentAttempt | None] = relationship()


class Refund(Model):
    """Money paid back to a customer: through the provider that took it, or by the creditor's bank
    (recorded by an agent). Its idempotency key makes a second click one refund."""

    __tablename__ = "refunds"
    __table_args__ = (
        Index("ix_refunds_payment_id", "payment_id"),
        CheckConstraint("amount > 0", name="amount_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    payment_id: Mapped[int] = mapped_column(ForeignKey("payments.id", ondelete="RESTRICT"))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    channel: Mapped[str] = mapped_column(String(20))  # "provider" or "bank_transfer"
    provider_refund_id: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20))  # pending | succeeded | failed (RefundResult's)
    idempotency_key: Mapped[str] = mapped_column(String(100), unique=True)
    note: Mapped[str | None] = mapped_column(String(500))
    actor: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    payment: Mapped[Payment] = relationship()


class WebhookEvent(Model):
    """Every verified notification, stored once per (provider, event id), applied at most once.

    Stored as `received` when the request only stores it (WEBHOOKS_APPLY_INLINE off): the
    `flask payments apply-events` worker applies it later from `event`, our reading of it."""

    __tablename__ = "webhook_events"
    __table_args__ = (
        UniqueConstraint("provider", "event_id"),
        Index("ix_webhook_events_outcome_id", "outcome", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(String(20))
    event_id: Mapped[str] = mapped_column(String(200))
    event_type: Mapped[str] = mapped_column(String(100))
    provider_ref: Mapped[str | None] = mapped_column(String(100))
    # received (not applied yet), applied, unchanged, stored (a type we do not act on), unknown_payment
    outcome: Mapped[str] = mapped_column(String(20))
    payload: Mapped[dict] = mapped_column(JSON, default=dict)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # The creditor whose key verified it (it may only touch that creditor's invoices), and the
    # event in our terms (status, amount, currency, payment id, method, when), to apply it later.
    creditor_id: Mapped[int | None] = mapped_column(ForeignKey("creditors.id", ondelete="CASCADE"))
    event: Mapped[dict | None] = mapped_column(JSON)
    applied_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class SimulatorRecord(Model):
    """The test-mode simulator's own records: what a real provider keeps on its side."""

    __tablename__ = "simulator_payments"
    __table_args__ = (CheckConstraint(PaymentStatus.sql_in("status"), name="status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ref: Mapped[str] = mapped_column(String(40), unique=True)
    idempotency_key: Mapped[str] = mapped_column(String(100), unique=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    description: Mapped[str] = mapped_column(String(300))
    return_url: Mapped[str] = mapped_column(String(1000))
    cancel_url: Mapped[str] = mapped_column(String(1000))
    status: Mapped[str] = mapped_column(String(20))
    method: Mapped[str | None] = mapped_column(String(30))
    refunded: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class CreditorGateway(Model):
    """A gateway a creditor offers on its bill pages, with the methods it chose, in its order.

    Credentials come from the instance's configuration (PAYMENT_GATEWAYS, see docs/decisions.md),
    keyed by creditor slug and provider, or else from the creditor console: those are stored here,
    encrypted with DATA_ENCRYPTION_KEYS (`credentials_encrypted`, a JSON object; `app.crypto`). A test
    bill uses the provider's own test keys, stored apart (`test_credentials_encrypted`), and never the
    live ones; a live bill never the test ones (docs/api.md, "Test mode")."""

    __tablename__ = "creditor_gateways"
    __table_args__ = (UniqueConstraint("creditor_id", "provider"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    creditor_id: Mapped[int] = mapped_column(ForeignKey("creditors.id", ondelete="CASCADE"))
    provider: Mapped[str] = mapped_column(String(20))  # "stripe", "adyen", "simulator"
    methods: Mapped[list] = mapped_column(JSON, default=list)  # our method names, in the creditor's order
    flow: Mapped[str | None] = mapped_column(String(20))  # provider-specific: "element", "session", "link"
    position: Mapped[int] = mapped_column(default=0, server_default="0")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    credentials_encrypted: Mapped[str | None] = mapped_column(Text)
    test_credentials_encrypted: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
