"""Customer, Invoice, InvoiceLine, InvoiceEvent (the timeline), CreditNote and Reminder."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import nonmember

from flask_babel import gettext as _
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    UniqueConstraint,
    false,
    text,
    true,
)
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core.enums import Labelled
from app.creditors.models import Creditor
from app.extensions import Model
from app.models import UTCDateTime, utcnow

CUSTOMER_KINDS = ("consumer", "business")
LINE_KINDS = ("product", "reminder_fee", "interest", "other_fee")
FEE_KINDS = ("reminder_fee", "interest", "other_fee")


class ReminderChannel(Labelled):
    """How a reminder reaches a customer (a reminder reported, a dunning message, a preference)."""

    SMS = "sms"
    EMAIL = "email"
    LETTER = "letter"

    ELECTRONIC = nonmember((SMS, EMAIL))

    @classmethod
    def words(cls) -> dict[str, str]:
        return {cls.SMS: _("SMS"), cls.EMAIL: _("E-mail"), cls.LETTER: _("Letter")}


class InvoiceStatus(Labelled):
    OPEN = "open"
    PARTIALLY_PAID = "partially_paid"
    PAID = "paid"
    DISPUTED = "disputed"
    ON_HOLD = "on_hold"
    IN_COLLECTION = "in_collection"
    CANCELLED = "cancelled"
    WRITTEN_OFF = "written_off"

    CLOSED = nonmember((CANCELLED, WRITTEN_OFF))

    @classmethod
    def words(cls) -> dict[str, str]:
        """An invoice's status in words, in the current locale (the back office, its reasons)."""
        return {
            cls.OPEN: _("open"), cls.PARTIALLY_PAID: _("partly paid"), cls.PAID: _("paid"), cls.DISPUTED: _("disputed"),
            cls.ON_HOLD: _("on hold"), cls.IN_COLLECTION: _("in debt collection"), cls.CANCELLED: _("cancelled"),
            cls.WRITTEN_OFF: _("written off"),
        }


class InvoiceKind(Labelled):
    """What a bill is for, as far as self-service cares (app/resolutions/offer_rules.py): an ordinary
    bill, an on-account payment (a monthly Abschlag/a konto, settled by the yearly statement) or a
    prepayment (paid before the service)."""

    STANDARD = "standard"
    ON_ACCOUNT = "on_account"
    PREPAYMENT = "prepayment"

    @classmethod
    def words(cls) -> dict[str, str]:
        return {cls.STANDARD: _("bill"), cls.ON_ACCOUNT: _("on-account payment"), cls.PREPAYMENT: _("prepayment")}


class Customer(Model):
    __tablename__ = "customers"
    __table_args__ = (
        UniqueConstraint("creditor_id", "livemode", "external_ref"),
        CheckConstraint(ReminderChannel.sql_in("preferred_channel"), name="preferred_channel"),
        Index("ix_customers_phone", "phone"),  # an SMS STOP reply names only the number
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    creditor_id: Mapped[int] = mapped_column(ForeignKey("creditors.id", ondelete="CASCADE"))
    external_ref: Mapped[str] = mapped_column(String(64))
    # False: made through a test API key (test mode); test and live customers never meet.
    livemode: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(10), default="consumer")
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(16))
    address_line1: Mapped[str | None] = mapped_column(String(200))
    address_line2: Mapped[str | None] = mapped_column(String(200))
    postcode: Mapped[str | None] = mapped_column(String(16))
    city: Mapped[str | None] = mapped_column(String(100))
    country: Mapped[str | None] = mapped_column(String(2))
    preferred_locale: Mapped[str | None] = mapped_column(String(8))
    date_of_birth: Mapped[date | None] = mapped_column(Date)
    # A business's organisation number, in its country's normal form (app.core.orgnumbers).
    org_number: Mapped[str | None] = mapped_column(String(20))
    # A business's VAT id in its normal form (app.core.orgnumbers.vat_id), printed on its invoices.
    vat_id: Mapped[str | None] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    # Reminders (app.dunning): how the customer wants them and what they agreed to. Letters are
    # always allowed; legally required notices go by letter unless electronic notices are allowed.
    preferred_channel: Mapped[str | None] = mapped_column(String(8))
    email_allowed: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    sms_allowed: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    electronic_notices_allowed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    email_unsubscribed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    sms_stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    dunning_excluded: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    time_zone: Mapped[str | None] = mapped_column(String(40))  # IANA; None: the creditor's country's
    # Content blocks (app.content): "no offers, please" (the customer's word, reversible), the tags the
    # creditor sends through the API, and on how many days each block was seen ({block id: days}; the
    # cap over time), written by the impression without touching `updated_at`.
    no_offers: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    content_tags: Mapped[list | None] = mapped_column(JSON)
    content_seen: Mapped[dict | None] = mapped_column(JSON)

    creditor: Mapped[Creditor] = relationship()


UNPLANNED = "dunning_plan_id IS NULL AND NOT dunning_excluded AND status IN ('open', 'partially_paid')"


class Invoice(Model):
    __tablename__ = "invoices"
    __table_args__ = (
        UniqueConstraint("creditor_id", "livemode", "number"),
        UniqueConstraint("creditor_id", "livemode", "payment_reference"),
        Index("ix_invoices_customer_id", "customer_id"),
        Index("ix_invoices_creditor_id_due_date", "creditor_id", "due_date"),  # analytics: bills due in a week
        CheckConstraint("total >= 0", name="total_not_negative"),
        CheckConstraint("amount_paid >= 0", name="paid_not_negative"),
        CheckConstraint("due_date >= issue_date", name="due_after_issue"),
        CheckConstraint(InvoiceStatus.sql_in("status"), name="status"),
        CheckConstraint(InvoiceKind.sql_in("kind"), name="kind"),
        # The dunning run's candidates: one range scan (app.dunning.worker).
        Index("ix_invoices_dunning_next_on", "creditor_id", "dunning_next_on", "customer_id",
              postgresql_where=text("dunning_next_on IS NOT NULL"), sqlite_where=text("dunning_next_on IS NOT NULL")),
        # Open bills without a plan: enrolled in the creditor's default plan by the run.
        Index("ix_invoices_dunning_unplanned", "creditor_id",
              postgresql_where=text(UNPLANNED), sqlite_where=text(UNPLANNED)),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True)
    creditor_id: Mapped[int] = mapped_column(ForeignKey("creditors.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="RESTRICT"))
    number: Mapped[str] = mapped_column(String(64))
    # False: a test bill, made through a test API key: seen only by test keys, paid only in test mode
    # (docs/api.md, "Test mode").
    livemode: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    issue_date: Mapped[date] = mapped_column(Date)
    due_date: Mapped[date] = mapped_column(Date)
    period_start: Mapped[date | None] = mapped_column(Date)
    period_end: Mapped[date | None] = mapped_column(Date)
    currency: Mapped[str] = mapped_column(String(3))
    payment_reference: Mapped[str] = mapped_column(String(35))
    status: Mapped[str] = mapped_column(String(20), default=InvoiceStatus.OPEN)
    kind: Mapped[str] = mapped_column(String(16), default=InvoiceKind.STANDARD, server_default=InvoiceKind.STANDARD)
    summary: Mapped[str | None] = mapped_column(String(300))
    # The creditor's texts given in several languages ({"summary": {"en": ..., "de": ...}}); the plain
    # column holds one of them. Shown through `billing.texts` (docs/texts.md).
    texts: Mapped[dict | None] = mapped_column(JSON)
    subtotal: Mapped[int] = mapped_column(BigInteger)  # net, minor units
    vat_total: Mapped[int] = mapped_column(BigInteger)
    total: Mapped[int] = mapped_column(BigInteger)  # gross
    amount_paid: Mapped[int] = mapped_column(BigInteger, default=0)
    # What credit notes took off (gross): the lines add up to total + credited.
    credited: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # An agent's pause of reminders (status on_hold) ends by itself after this day; None: until resumed.
    hold_until: Mapped[date | None] = mapped_column(Date)
    # Dunning (app.dunning): the plan version the invoice started with (None: not reminded by us),
    # excluded by the creditor, and the next step: its position and the day to look at it again.
    dunning_plan_id: Mapped[int | None] = mapped_column(ForeignKey("dunning_plans.id", ondelete="RESTRICT"))
    dunning_excluded: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    dunning_next_on: Mapped[date | None] = mapped_column(Date)
    dunning_next_position: Mapped[int | None] = mapped_column(Integer)
    payload_hash: Mapped[str | None] = mapped_column(String(64))
    # Raised by every revocation of the invoice's links (links.services): a browser's grant carries
    # the value it was given under and ends when it moves (access.grants).
    link_revocations: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    creditor: Mapped[Creditor] = relationship()
    customer: Mapped[Customer] = relationship()
    lines: Mapped[list[InvoiceLine]] = relationship(
        back_populates="invoice", order_by="InvoiceLine.position", cascade="all, delete-orphan"
    )
    events: Mapped[list[InvoiceEvent]] = relationship(
        back_populates="invoice", order_by="InvoiceEvent.id", cascade="all, delete-orphan"
    )

    @hybrid_property
    def balance(self) -> int:
        return self.total - self.amount_paid

    @property
    def is_closed(self) -> bool:
        return self.status in InvoiceStatus.CLOSED

    @property
    def shared_period(self) -> tuple[date, date] | None:
        """The period the bill is for, said once at its head: the invoice's own, else the one every
        ordinary line names. A line repeats its period only where it differs from this one."""
        if self.period_start and self.period_end:
            return self.period_start, self.period_end
        periods = {(line.period_start, line.period_end) for line in self.lines if not line.is_fee}
        if len(periods) == 1:
            start, end = periods.pop()
            if start and end:
                return start, end
        return None

    def __repr__(self) -> str:
        return f"<Invoice {self.number} {self.status}>"


class InvoiceLine(Model):
    __tablename__ = "invoice_lines"
    __table_args__ = (Index("ix_invoice_lines_invoice_id", "invoice_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16), default="product")
    description: Mapped[str] = mapped_column(String(300))
    note: Mapped[str | None] = mapped_column(String(500))
    quantity: Mapped[Decimal] = mapped_column(Numeric(14, 3))
    unit: Mapped[str | None] = mapped_column(String(16))
    # The creditor's own product code (content blocks may target bills by it: app.content).
    product_code: Mapped[str | None] = mapped_column(String(40))
    unit_price: Mapped[int] = mapped_column(BigInteger)  # net, minor units
    vat_rate: Mapped[int] = mapped_column(Integer)  # basis points: 2500 = 25 %
    net: Mapped[int] = mapped_column(BigInteger)
    vat: Mapped[int] = mapped_column(BigInteger)
    gross: Mapped[int] = mapped_column(BigInteger)
    period_start: Mapped[date | None] = mapped_column(Date)
    period_end: Mapped[date | None] = mapped_column(Date)
    # {"description": {"en": ..., "nb": ...}, "note": {...}}: the creditor's texts in several languages
    # (the plain columns hold one of each). `text_key`: a line the portal wrote (a reminder fee, interest),
    # whose words are translated when shown (`billing.texts.PORTAL_LINE_TEXTS`; docs/texts.md).
    texts: Mapped[dict | None] = mapped_column(JSON)
    text_key: Mapped[str | None] = mapped_column(String(40))

    invoice: Mapped[Invoice] = relationship(back_populates="lines")

    @property
    def is_fee(self) -> bool:
        return self.kind in FEE_KINDS


class InvoiceEvent(Model):
    """One entry of an invoice's timeline. Append-only."""

    __tablename__ = "invoice_events"
    __table_args__ = (Index("ix_invoice_events_invoice_id_kind", "invoice_id", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    invoice: Mapped[Invoice] = relationship(back_populates="events")


class CreditNote(Model):
    """Money taken off an invoice after it was issued (a dispute upheld, a goodwill gesture): its own
    number and lines, each crediting (part of) an invoice line. The invoice's subtotal, VAT and
    total go down by the note's; `Invoice.credited` keeps the sum."""

    __tablename__ = "credit_notes"
    __table_args__ = (
        UniqueConstraint("creditor_id", "number"),
        UniqueConstraint("creditor_id", "livemode", "external_ref"),
        Index("ix_credit_notes_invoice_id", "invoice_id"),
        CheckConstraint("total > 0", name="total_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    creditor_id: Mapped[int] = mapped_column(ForeignKey("creditors.id", ondelete="CASCADE"))
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id", ondelete="CASCADE"))
    number: Mapped[str] = mapped_column(String(80))
    # Its invoice's: a test bill's notes are numbered apart (CN-TEST-…), outside the creditor's series.
    livemode: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    reason: Mapped[str] = mapped_column(String(300))  # shown to the customer
    reference: Mapped[str | None] = mapped_column(String(16))  # the dispute it answers, if any
    external_ref: Mapped[str | None] = mapped_column(String(64))  # the creditor's own id (API): asked twice, made once
    subtotal: Mapped[int] = mapped_column(BigInteger)
    vat_total: Mapped[int] = mapped_column(BigInteger)
    total: Mapped[int] = mapped_column(BigInteger)
    actor: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    lines: Mapped[list[CreditNoteLine]] = relationship(
        back_populates="credit_note", order_by="CreditNoteLine.id", cascade="all, delete-orphan"
    )


class CreditNoteSeries(Model):
    """The last credit note number a creditor gave: credit notes are numbered in one unbroken series
    per creditor (bokføringsforskriften § 5-1-1, UStG § 14(4) no. 4), apart from its invoices'
    numbers. Taken in the transaction that issues the note, so a rollback gives the number back."""

    __tablename__ = "credit_note_series"

    creditor_id: Mapped[int] = mapped_column(ForeignKey("creditors.id", ondelete="CASCADE"), primary_key=True)
    last_number: Mapped[int] = mapped_column(BigInteger)


class CreditNoteLine(Model):
    __tablename__ = "credit_note_lines"
    __table_args__ = (Index("ix_credit_note_lines_credit_note_id", "credit_note_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    credit_note_id: Mapped[int] = mapped_column(ForeignKey("credit_notes.id", ondelete="CASCADE"))
    invoice_line_id: Mapped[int | None] = mapped_column(ForeignKey("invoice_lines.id", ondelete="SET NULL"))
    description: Mapped[str] = mapped_column(String(300))
    vat_rate: Mapped[int] = mapped_column(Integer)
    net: Mapped[int] = mapped_column(BigInteger)
    vat: Mapped[int] = mapped_column(BigInteger)
    gross: Mapped[int] = mapped_column(BigInteger)

    credit_note: Mapped[CreditNote] = relationship(back_populates="lines")


REMINDER_CHANNELS = ("sms", "email", "letter")


class Reminder(Model):
    """A payment reminder the creditor sent (its own dunning system reports each one through the
    API): the timeline shows it, the case file lists it, and the hand-off to debt collection
    counts the days since the final one."""

    __tablename__ = "reminders"
    __table_args__ = (
        Index("ix_reminders_invoice_id_sent_at", "invoice_id", "sent_at"),
        UniqueConstraint("invoice_id", "external_ref"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(10))
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime())
    final: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    external_ref: Mapped[str | None] = mapped_column(String(64))  # the creditor's id: the same report twice is one
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
