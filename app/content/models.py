"""Content blocks: what a creditor says to its customers on the bill page, the receipt and reminder
e-mails, who sees it (targeting as data), its variants, what customers saw and clicked, and leads."""

from __future__ import annotations

from datetime import date, datetime

from flask_babel import gettext as _
from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
    true,
)
from sqlalchemy.orm import Mapped, deferred, mapped_column, relationship

from app.core.enums import Labelled
from app.extensions import Model
from app.models import UTCDateTime, utcnow


class Kind(Labelled):
    """What a block is: plain information (shown to anyone it targets), engagement (asks the customer
    to do something: not before payment on an overdue bill), an offer (never to a customer in difficulty)."""

    INFORMATION = "information"
    ENGAGEMENT = "engagement"
    OFFER = "offer"

    @classmethod
    def words(cls) -> dict[str, str]:
        return {cls.INFORMATION: _("Information"), cls.ENGAGEMENT: _("Engagement"),
                cls.OFFER: _("Offer")}


class Placement(Labelled):
    """Where a block may appear."""

    BILL = "bill"  # the top of the bill page
    RECEIPT = "receipt"  # after payment: the receipt page
    EMAIL = "email"  # reminder e-mails

    @classmethod
    def words(cls) -> dict[str, str]:
        return {cls.BILL: _("Top of the bill page"), cls.RECEIPT: _("After payment (the receipt)"),
                cls.EMAIL: _("Reminder e-mails")}


class Action(Labelled):
    """The block's call to action."""

    NONE = "none"
    LINK = "link"  # a link to the creditor's own site, through our signed redirect
    INTEREST = "interest"  # "I am interested": a lead, delivered to the creditor as an event

    @classmethod
    def words(cls) -> dict[str, str]:
        return {cls.NONE: _("None"), cls.LINK: _("A link to your site"),
                cls.INTEREST: _("“I am interested” (a lead)")}


class Block(Model):
    __tablename__ = "content_blocks"
    __table_args__ = (
        CheckConstraint(Kind.sql_in("kind"), name="kind"),
        CheckConstraint(Action.sql_in("action"), name="action"),
        Index("ix_content_blocks_creditor_id", "creditor_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True)
    creditor_id: Mapped[int] = mapped_column(ForeignKey("creditors.id", ondelete="CASCADE"))
    # False: made with a test API key; shown on test bills only.
    livemode: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    name: Mapped[str] = mapped_column(String(100))  # the creditor's own name for it, never shown to customers
    kind: Mapped[str] = mapped_column(String(12))
    placements: Mapped[list] = mapped_column(JSON, default=list)
    priority: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # higher first
    starts_on: Mapped[date | None] = mapped_column(Date)  # the creditor's days, inclusive
    ends_on: Mapped[date | None] = mapped_column(Date)
    action: Mapped[str] = mapped_column(String(10), default=Action.NONE, server_default=Action.NONE)
    target_url: Mapped[str | None] = mapped_column(String(500))
    # Who sees it (app.content.targeting.Rules as a dict; empty: everyone the tact rules allow).
    targeting: Mapped[dict] = mapped_column(JSON, default=dict)
    cap_days: Mapped[int | None] = mapped_column(Integer)  # shown to one customer on at most this many days
    image: Mapped[bytes | None] = deferred(mapped_column(LargeBinary))
    image_mime: Mapped[str | None] = mapped_column(String(32))
    image_version: Mapped[str | None] = mapped_column(String(16))
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    variants: Mapped[list[Variant]] = relationship(back_populates="block", order_by="Variant.id",
                                                   cascade="all, delete-orphan")


class Variant(Model):
    """A version of the block's texts: {locale: {"title", "body", "html", "cta"}} (`html`: the body's
    sanitised rendering). Every block has at least one ("A"); more make an experiment."""

    __tablename__ = "content_variants"
    __table_args__ = (UniqueConstraint("block_id", "name"), CheckConstraint("weight >= 0", name="weight"))

    id: Mapped[int] = mapped_column(primary_key=True)
    block_id: Mapped[int] = mapped_column(ForeignKey("content_blocks.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(40))
    weight: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    texts: Mapped[dict] = mapped_column(JSON, default=dict)
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    block: Mapped[Block] = relationship(back_populates="variants")


class Exposure(Model):
    """A block seen on one bill (by the impression our own page asks for), with its variant, on how many
    days, and its clicks."""

    __tablename__ = "content_exposures"
    __table_args__ = (
        UniqueConstraint("block_id", "invoice_id"),
        Index("ix_content_exposures_variant_id", "variant_id"),
        Index("ix_content_exposures_invoice_id", "invoice_id"),
        Index("ix_content_exposures_customer_id", "customer_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    block_id: Mapped[int] = mapped_column(ForeignKey("content_blocks.id", ondelete="CASCADE"))
    variant_id: Mapped[int] = mapped_column(ForeignKey("content_variants.id", ondelete="CASCADE"))
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    placement: Mapped[str] = mapped_column(String(10))
    first_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_seen_on: Mapped[date | None] = mapped_column(Date)
    days_seen: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    clicks: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    first_click_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Lead(Model):
    """"I am interested": one per block and bill, delivered to the creditor as `lead.created`."""

    __tablename__ = "content_leads"
    __table_args__ = (
        UniqueConstraint("block_id", "invoice_id"),
        Index("ix_content_leads_creditor_id", "creditor_id", "created_at"),
        Index("ix_content_leads_customer_id", "customer_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True)
    creditor_id: Mapped[int] = mapped_column(ForeignKey("creditors.id", ondelete="CASCADE"))
    block_id: Mapped[int] = mapped_column(ForeignKey("content_blocks.id", ondelete="CASCADE"))
    variant_id: Mapped[int] = mapped_column(ForeignKey("content_variants.id", ondelete="CASCADE"))
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    livemode: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    block: Mapped[Block] = relationship()
