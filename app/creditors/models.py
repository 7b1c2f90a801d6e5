"""Creditor (the tenant) and its API keys."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy import (
    false as sa_false,
)
from sqlalchemy import (
    true as sa_true,
)
from sqlalchemy.orm import Mapped, deferred, mapped_column, relationship

from app.extensions import Model
from app.models import UTCDateTime, utcnow

REFERENCE_SCHEMES = ("kid_mod10", "kid_mod11", "rf")
STEP_UP_MODES = ("none", "postcode", "customer_number", "date_of_birth")


class Creditor(Model):
    __tablename__ = "creditors"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    legal_name: Mapped[str | None] = mapped_column(String(200))
    country: Mapped[str] = mapped_column(String(2))
    default_locale: Mapped[str] = mapped_column(String(8))
    currency: Mapped[str] = mapped_column(String(3))

    # Brand. Colours are stored as "#rrggbb" after the WCAG AA contrast check.
    brand_primary: Mapped[str] = mapped_column(String(7), default="#1f4b99")
    brand_accent: Mapped[str] = mapped_column(String(7), default="#0b6e4f")
    logo: Mapped[bytes | None] = deferred(mapped_column(LargeBinary))
    logo_mime: Mapped[str | None] = mapped_column(String(32))
    logo_version: Mapped[str | None] = mapped_column(String(16))
    # Content blocks (app.content): raised by every change of one of the creditor's blocks, so the
    # bill page's cached render and the per-process cache of its blocks are keyed by it; the most
    # blocks a page shows.
    content_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    content_max_blocks: Mapped[int] = mapped_column(Integer, default=2, server_default="2")

    # Support contact.
    support_email: Mapped[str | None] = mapped_column(String(254))
    support_phone: Mapped[str | None] = mapped_column(String(32))
    support_hours: Mapped[str | None] = mapped_column(String(200))
    support_url: Mapped[str | None] = mapped_column(String(500))
    # When the support desk calls customers back, as data ("mon-fri 07:00-19:00, sat 09:00-13:00"):
    # app/core/hours.py reads it; None: its default hours.
    callback_hours: Mapped[str | None] = mapped_column(String(200))

    # The From's display name and the Reply-To of the e-mails sent for the creditor (None: its name,
    # and its support address).
    email_sender_name: Mapped[str | None] = mapped_column(String(100))
    email_reply_to: Mapped[str | None] = mapped_column(String(254))

    # Legal footer.
    org_number: Mapped[str | None] = mapped_column(String(32))
    # Invoices that meet the law (app/billing/invoice_law.py): the VAT id in its normal form (Norway's
    # NO…MVA: the creditor is VAT-registered), and Germany's Steuernummer where there is no VAT id.
    vat_id: Mapped[str | None] = mapped_column(String(20))
    tax_number: Mapped[str | None] = mapped_column(String(20))
    address: Mapped[str | None] = mapped_column(Text)

    # Bank account: IBAN/BIC or a Norwegian account number (11 digits, MOD11).
    iban: Mapped[str | None] = mapped_column(String(34))
    bic: Mapped[str | None] = mapped_column(String(11))
    bank_account_no: Mapped[str | None] = mapped_column(String(11))

    reference_scheme: Mapped[str] = mapped_column(String(16), default="rf")
    portal_base_url: Mapped[str | None] = mapped_column(String(300))
    step_up_mode: Mapped[str] = mapped_column(String(20), default="none")

    # Payments: whether a customer may pay part of the balance, and the least part (minor units).
    allow_partial_payments: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sa_false())
    min_partial_payment: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")

    # Self-service rules (`flask resolutions rules`). A limit of 0 turns the option off.
    # While a dispute is open, the customer may pay the part not disputed.
    dispute_partial_payable: Mapped[bool] = mapped_column(Boolean, default=True, server_default=sa_true())
    promise_max_days: Mapped[int] = mapped_column(Integer, default=14, server_default="14")  # from today
    grace_days: Mapped[int] = mapped_column(Integer, default=3, server_default="3")  # after a promise or instalment
    deferral_max_days: Mapped[int] = mapped_column(Integer, default=14, server_default="14")  # past the due date
    deferral_max_count: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    deferral_fee: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    plan_max_months: Mapped[int] = mapped_column(Integer, default=6, server_default="6")
    plan_min_instalment: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # The least balance a plan is offered for; 0: its currency's (app/resolutions/offer_rules.py).
    plan_min_balance: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    plan_fee: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    plan_interest_bp: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # a year; 1000 = 10 %
    # The back office's service level: what waits for an agent is answered within so many working days.
    answer_within_days: Mapped[int] = mapped_column(Integer, default=1, server_default="1")

    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    api_keys: Mapped[list[ApiKey]] = relationship(back_populates="creditor", cascade="all, delete-orphan")

    def __repr__(self) -> str:
        return f"<Creditor {self.slug}>"

    @property
    def sender_name(self) -> str:
        """The display name of the From of its e-mails."""
        return self.email_sender_name or self.name

    def reply_address(self, default: str | None) -> str | None:
        """The Reply-To of an e-mail whose own choice is `default`: the creditor's reply-to address
        where that was its support address (or nothing), else `default` (a customer's address, say)."""
        if self.email_reply_to and default in (None, self.support_email):
            return self.email_reply_to
        return default


class ApiKey(Model):
    """A creditor's API key. Only a SHA-256 digest is stored: keys are 256-bit random strings."""

    __tablename__ = "api_keys"
    __table_args__ = (Index("ix_api_keys_creditor_id", "creditor_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    creditor_id: Mapped[int] = mapped_column(ForeignKey("creditors.id", ondelete="CASCADE"))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str | None] = mapped_column(String(100))
    # False: a test key (pk_test_…), which sees and makes only test data (docs/api.md, "Test mode").
    livemode: Mapped[bool] = mapped_column(Boolean, default=True, server_default=sa_true())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    creditor: Mapped[Creditor] = relationship(back_populates="api_keys")

    @property
    def mode(self) -> str:
        return "live" if self.livemode else "test"
