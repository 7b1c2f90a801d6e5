"""The dunning tables: plans (versioned, never changed once saved) and their steps, a creditor's
dunning settings, the notices (one per invoice and step), the messages that carry them, letters
waiting for the printer, and contact details waiting for their code.

The columns the run keeps on other tables are declared with their models: `customers`
(preferred_channel, consents, dunning_excluded, time_zone), `invoices` (dunning_plan_id,
dunning_excluded, dunning_next_on, dunning_next_position) and `outbox_messages` (provider_ref,
provider_status, provider_status_at). Migration 0013 makes all of them.
"""

from __future__ import annotations

from datetime import date, datetime
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
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.billing.models import ReminderChannel
from app.core.enums import Codes, Labelled
from app.extensions import Model
from app.models import UTCDateTime, utcnow


class StepKind(Labelled):
    PRE_DUE = "pre_due"  # a friendly nudge before the due date
    REMINDER = "reminder"  # a reminder after it (purring, Mahnung)
    FINAL_REMINDER = "final_reminder"
    COLLECTION_WARNING = "collection_warning"  # the Norwegian inkassovarsel, a letter before debt collection

    #: Kinds the hand-off counts as the final reminder (`Reminder.final`).
    FINAL = nonmember((FINAL_REMINDER, COLLECTION_WARNING))
    #: Kinds sent after the due date.
    AFTER_DUE = nonmember((REMINDER, FINAL_REMINDER, COLLECTION_WARNING))

    @classmethod
    def words(cls) -> dict[str, str]:
        return {cls.PRE_DUE: _("Payment nudge before the due date"), cls.REMINDER: _("Payment reminder"),
                cls.FINAL_REMINDER: _("Final reminder"), cls.COLLECTION_WARNING: _("Debt collection warning")}

    @property
    def rank(self) -> int:
        """How far along the dialogue is: a consolidated message speaks with its most advanced step."""
        return list(StepKind).index(self)


class Anchor(Codes):
    DUE_DATE = "due_date"  # offset_days from the invoice's due date (negative: before it)
    PREVIOUS = "previous"  # offset_days from the day the previous step went out


#: sms, email, letter (the billing enum, which customers' preferred_channel and reminders share).
Channel = ReminderChannel


class Jurisdiction(Labelled):
    NO = "NO"
    DE = "DE"
    NONE = "none"

    @classmethod
    def words(cls) -> dict[str, str]:
        return {cls.NO: _("Norway"), cls.DE: _("Germany"), cls.NONE: _("No rules")}


class NoticeStatus(Labelled):
    SENT = "sent"  # decided and handed to its message (the outbox or the letter pile)
    DELIVERED = "delivered"
    OPENED = "opened"
    FAILED = "failed"
    BOUNCED = "bounced"
    SKIPPED = "skipped"  # an agent skipped the step
    PAID_BEFORE = "paid_before"  # paid (or paused) between the decision and the delivery: not sent

    @classmethod
    def words(cls) -> dict[str, str]:
        return {cls.SENT: _("sent"), cls.DELIVERED: _("delivered"), cls.OPENED: _("opened"),
                cls.FAILED: _("failed"), cls.BOUNCED: _("bounced"), cls.SKIPPED: _("skipped"),
                cls.PAID_BEFORE: _("not sent: settled before it went out")}


class MessageStatus(Labelled):
    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"
    BOUNCED = "bounced"
    OPENED = "opened"

    #: A message that did not reach the customer: its notices move to the next channel.
    UNDELIVERED = nonmember((FAILED, BOUNCED))

    @classmethod
    def words(cls) -> dict[str, str]:
        return {cls.QUEUED: _("queued"), cls.SENT: _("sent"), cls.DELIVERED: _("delivered"),
                cls.FAILED: _("failed"), cls.BOUNCED: _("bounced"), cls.OPENED: _("opened")}


class LetterStatus(Codes):
    PENDING = "pending"  # waiting for the next print batch (again, when an agent asked for it to be printed again)
    PRINTED = "printed"
    WITHDRAWN = "withdrawn"  # not printed: every bill in it was settled or paused before the batch


class ContactKind(Codes):
    EMAIL = "email"
    SMS = "sms"


class Settings(Model):
    """A creditor's dunning settings (one row per creditor; `services.settings_of` gives defaults
    for a creditor without one)."""

    __tablename__ = "dunning_settings"

    creditor_id: Mapped[int] = mapped_column(ForeignKey("creditors.id", ondelete="CASCADE"), primary_key=True)
    # The languages the creditor writes to its customers in: every step needs its text in each.
    languages: Mapped[list] = mapped_column(JSON, default=list)
    # The cap across a customer's bills: at most one message in this many days.
    message_interval_days: Mapped[int] = mapped_column(Integer, default=3, server_default="3")
    # Quiet hours for SMS and e-mail, in the customer's time zone: from quiet_from to quiet_until (hours).
    quiet_from: Mapped[int] = mapped_column(Integer, default=21, server_default="21")
    quiet_until: Mapped[int] = mapped_column(Integer, default=8, server_default="8")
    # Germany, § 286(3) BGB: the creditor's invoices tell consumers that they are in default 30 days
    # after the due date and receipt. The bill page and the PDF say so where this is set.
    consumer_default_notice: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class Plan(Model):
    """One version of a creditor's dunning plan. Never changed once saved: an edit saves version
    n + 1 (and the default moves to it); invoices keep the version they started with."""

    __tablename__ = "dunning_plans"
    __table_args__ = (
        UniqueConstraint("creditor_id", "name", "version"),
        Index("ix_dunning_plans_one_default", "creditor_id", unique=True,
              sqlite_where=text("is_default"), postgresql_where=text("is_default")),
        CheckConstraint(Jurisdiction.sql_in("jurisdiction"), name="jurisdiction"),
        CheckConstraint("version >= 1", name="version_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    creditor_id: Mapped[int] = mapped_column(ForeignKey("creditors.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(80))
    version: Mapped[int] = mapped_column(Integer)
    jurisdiction: Mapped[str] = mapped_column(String(8))
    is_default: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    steps: Mapped[list[Step]] = relationship(back_populates="plan", order_by="Step.position",
                                             cascade="all, delete-orphan")

    def __repr__(self) -> str:
        return f"<Plan {self.name} v{self.version}>"


class Step(Model):
    """One step of a plan. `texts`: {locale: {"subject": ..., "body": ..., "sms": ...}} with named
    variables ({customer}, {amount}, ...: `templates.VARIABLES`)."""

    __tablename__ = "dunning_steps"
    __table_args__ = (
        UniqueConstraint("plan_id", "position"),
        CheckConstraint(StepKind.sql_in("kind"), name="kind"),
        CheckConstraint(Anchor.sql_in("anchor"), name="anchor"),
        CheckConstraint("fee >= 0", name="fee_not_negative"),
        CheckConstraint("deadline_days >= 0", name="deadline_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("dunning_plans.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)  # 1, 2, ...
    kind: Mapped[str] = mapped_column(String(24))
    anchor: Mapped[str] = mapped_column(String(12))
    offset_days: Mapped[int] = mapped_column(Integer)
    channels: Mapped[list] = mapped_column(JSON)  # in order of preference: ["sms", "email", "letter"]
    fee: Mapped[int] = mapped_column(BigInteger, default=0)  # a reminder_fee line, minor units
    deadline_days: Mapped[int] = mapped_column(Integer, default=0)  # payment deadline given, from sending
    starts_hand_off: Mapped[bool] = mapped_column(Boolean, default=False)
    adds_interest: Mapped[bool] = mapped_column(Boolean, default=False)  # Germany: default interest to date
    flat_fee: Mapped[bool] = mapped_column(Boolean, default=False)  # Germany: § 288(5) BGB, businesses only
    texts: Mapped[dict] = mapped_column(JSON)

    plan: Mapped[Plan] = relationship(back_populates="steps")
    variants: Mapped[list[StepVariant]] = relationship(back_populates="step", order_by="StepVariant.id",
                                                       cascade="all, delete-orphan")


class StepVariant(Model):
    """A variant of a step's text (an experiment on its wording): saved with its plan version and never
    changed after, except that it may be stopped. The run gives each customer one of the step's active
    variants by weight (`variants.assign`, stable per customer); a stopped one keeps its results."""

    __tablename__ = "dunning_step_variants"
    __table_args__ = (
        UniqueConstraint("step_id", "key"),
        CheckConstraint("weight >= 1 AND weight <= 1000", name="weight_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    step_id: Mapped[int] = mapped_column(ForeignKey("dunning_steps.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(40))
    weight: Mapped[int] = mapped_column(Integer)
    texts: Mapped[dict] = mapped_column(JSON)  # as the step's: {locale: {"subject": ..., "body": ..., "sms": ...}}
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    stopped_by: Mapped[str | None] = mapped_column(String(120))

    step: Mapped[Step] = relationship(back_populates="variants")

    @property
    def active(self) -> bool:
        return self.stopped_at is None


class Notice(Model):
    """One step of one invoice's plan, decided and sent: once per (invoice, plan, position),
    whatever crashes (the unique key)."""

    __tablename__ = "dunning_notices"
    __table_args__ = (
        UniqueConstraint("invoice_id", "plan_id", "position"),
        Index("ix_dunning_notices_message_id", "message_id"),
        Index("ix_dunning_notices_customer_id", "customer_id"),
        CheckConstraint(NoticeStatus.sql_in("status"), name="status"),
        CheckConstraint(StepKind.sql_in("kind"), name="kind"),
        CheckConstraint(Channel.sql_in("channel"), name="channel"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    creditor_id: Mapped[int] = mapped_column(ForeignKey("creditors.id", ondelete="CASCADE"))
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    plan_id: Mapped[int] = mapped_column(ForeignKey("dunning_plans.id", ondelete="RESTRICT"))
    step_id: Mapped[int] = mapped_column(ForeignKey("dunning_steps.id", ondelete="RESTRICT"))
    position: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(24))
    status: Mapped[str] = mapped_column(String(16), default=NoticeStatus.SENT)
    channel: Mapped[str] = mapped_column(String(8))
    channel_index: Mapped[int] = mapped_column(Integer, default=0)  # how many channels failed before this one
    message_id: Mapped[int | None] = mapped_column(ForeignKey("dunning_messages.id", ondelete="SET NULL"))
    decided_on: Mapped[date] = mapped_column(Date)  # the creditor's local date
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime())
    deadline: Mapped[date | None] = mapped_column(Date)  # the payment deadline the notice gave
    fee: Mapped[int] = mapped_column(BigInteger, default=0)  # charges added with it (fee, flat fee)
    interest: Mapped[int] = mapped_column(BigInteger, default=0)  # default interest added with it


class Message(Model):
    """One message to a customer (by SMS, e-mail or letter) carrying one notice or several
    (consolidated). Its text is kept as rendered (without the link's token) for the timeline."""

    __tablename__ = "dunning_messages"
    __table_args__ = (
        Index("ix_dunning_messages_customer_id_created_at", "customer_id", "created_at"),
        Index("ix_dunning_messages_link_id", "link_id"),
        Index("ix_dunning_messages_creditor_id_created_at", "creditor_id", "created_at"),  # analytics: a week's
        CheckConstraint(MessageStatus.sql_in("status"), name="status"),
        CheckConstraint(Channel.sql_in("channel"), name="channel"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    creditor_id: Mapped[int] = mapped_column(ForeignKey("creditors.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(8))
    recipient: Mapped[str | None] = mapped_column(String(254))  # e-mail or number; letters: None (the address)
    locale: Mapped[str] = mapped_column(String(8))
    outbox_message_id: Mapped[int | None] = mapped_column(ForeignKey("outbox_messages.id", ondelete="SET NULL"),
                                                          index=True)
    replaces_id: Mapped[int | None] = mapped_column(ForeignKey("dunning_messages.id", ondelete="SET NULL"))
    # The signed link the message carried (issued at delivery): its first opening marks the message opened.
    link_id: Mapped[int | None] = mapped_column(ForeignKey("access_links.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(12), default=MessageStatus.QUEUED)
    failure: Mapped[str | None] = mapped_column(String(300))  # why it did not reach the customer
    subject: Mapped[str | None] = mapped_column(String(300))
    body: Mapped[str | None] = mapped_column(Text)
    # The key of the step's text variant it carried (an experiment on the step's wording); None: no variants.
    variant: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    status_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Letter(Model):
    """A letter to print and post: a message by letter. The address is kept as it was when the
    letter was decided. The print batch (`flask letters batch`, `dunning.letters`) prints it: each
    printing is a `letters.models.LetterPrint`; batch, pages, sha256 and printed_at here are the
    latest one's. An agent may ask for it to be printed again (pending again, with who asked)."""

    __tablename__ = "letters"
    __table_args__ = (
        Index("ix_letters_status_creditor_id", "status", "creditor_id"),
        CheckConstraint(LetterStatus.sql_in("status"), name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    creditor_id: Mapped[int] = mapped_column(ForeignKey("creditors.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    message_id: Mapped[int] = mapped_column(ForeignKey("dunning_messages.id", ondelete="CASCADE"), unique=True)
    status: Mapped[str] = mapped_column(String(10), default=LetterStatus.PENDING)
    address: Mapped[dict] = mapped_column(JSON, default=dict)  # name, lines, postcode, city, country
    batch: Mapped[date | None] = mapped_column(Date)
    pages: Mapped[int | None] = mapped_column(Integer)
    sha256: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    printed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reprint_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reprint_requested_by: Mapped[str | None] = mapped_column(String(64))


class ContactChange(Model):
    """A customer's new e-mail address or mobile number, used only once the code sent to it is
    confirmed. (Written and confirmed by a later change; the table is here with the rest.)"""

    __tablename__ = "contact_changes"
    __table_args__ = (
        Index("ix_contact_changes_customer_id", "customer_id"),
        CheckConstraint(ContactKind.sql_in("kind"), name="kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    creditor_id: Mapped[int] = mapped_column(ForeignKey("creditors.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(8))
    value: Mapped[str] = mapped_column(String(254))
    code_hash: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
