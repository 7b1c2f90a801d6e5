"""Agent (a person at a creditor's support desk), their roles per creditor, the audit log, and
what agents keep for themselves: marks on inbox items, internal notes, reply templates."""

from __future__ import annotations

from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core.enums import Labelled
from app.extensions import Model
from app.models import UTCDateTime, utcnow


class Role(Labelled):
    """An agent's role at one creditor."""

    AGENT = "agent"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"
    # Runs the creditor's account in the console (brand, payment providers and keys, rules, API keys)
    # and sees no customer's data: not a case-working role (CASEWORK).
    CREDITOR_ADMIN = "creditor_admin"
    # Writes the creditor's content blocks in the console (and reads their leads and results); sees no
    # customer's case and no other part of the console.
    CONTENT_EDITOR = "content_editor"

    @classmethod
    def words(cls) -> dict[str, str]:
        return {cls.AGENT: _("Agent"), cls.SUPERVISOR: _("Supervisor"), cls.ADMIN: _("Admin"),
                cls.CREDITOR_ADMIN: _("Creditor admin"), cls.CONTENT_EDITOR: _("Content editor")}


#: The roles that work on customers' cases: the inbox, cases, searches, letters. A creditor admin is not one.
CASEWORK: tuple[str, ...] = (Role.AGENT, Role.SUPERVISOR, Role.ADMIN)
#: The roles that may use the creditor console.
CONSOLE: tuple[str, ...] = (Role.CREDITOR_ADMIN,)
#: The roles that may write content blocks: a content editor, and a creditor admin.
CONTENT: tuple[str, ...] = (Role.CREDITOR_ADMIN, Role.CONTENT_EDITOR)


class Agent(Model):
    __tablename__ = "agents"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)  # stored lower-case
    name: Mapped[str] = mapped_column(String(100))
    password_hash: Mapped[str] = mapped_column(String(200))  # argon2id
    # The TOTP secret, encrypted with DATA_ENCRYPTION_KEYS (app.crypto), set once enrolment is confirmed.
    totp_secret_encrypted: Mapped[str | None] = mapped_column(Text)
    # Before migration 0009 the secret was stored in clear here; it is encrypted (and this emptied) at
    # the agent's next sign-in or by `flask agents encrypt-secrets`. Nothing writes it any more.
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    # The secret being enrolled (shown on the enrolment page, never put in the session cookie), encrypted.
    totp_pending_encrypted: Mapped[str | None] = mapped_column(Text)
    totp_last_step: Mapped[int | None] = mapped_column(Integer)  # a code is accepted once
    # After a reset of the second factor, a new one is enrolled only with a one-time code sent to the
    # agent (or shown to the operator): its argon2 hash, single use, until it expires.
    enrolment_code_required: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    enrolment_code_hash: Mapped[str | None] = mapped_column(String(200))
    enrolment_code_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Wrong second-factor codes in a row (reached only with the right password), and the lock they set.
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Part of the session's identity: raising it signs the agent out everywhere.
    session_version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_sign_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    roles: Mapped[list[AgentRole]] = relationship(back_populates="agent", cascade="all, delete-orphan")

    # Flask-Login's user interface.
    is_anonymous = False

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_active(self) -> bool:
        return self.disabled_at is None

    @property
    def has_second_factor(self) -> bool:
        return bool(self.totp_secret_encrypted or self.totp_secret)

    def get_id(self) -> str:
        return f"{self.id}:{self.session_version}"

    def creditor_ids(self) -> list[int]:
        return sorted(role.creditor_id for role in self.roles)

    def role_for(self, creditor_id: int) -> str | None:
        return next((role.role for role in self.roles if role.creditor_id == creditor_id), None)


class AgentRole(Model):
    __tablename__ = "agent_roles"
    __table_args__ = (
        UniqueConstraint("agent_id", "creditor_id"),
        CheckConstraint(Role.sql_in("role"), name="role"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    creditor_id: Mapped[int] = mapped_column(ForeignKey("creditors.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(20))

    agent: Mapped[Agent] = relationship(back_populates="roles")


class AgentSession(Model):
    """One signed-in session of an agent, known to the server: the session cookie carries its random
    key (only the key's SHA-256 is stored), and every back-office request finds it here, open and
    younger than BACKOFFICE_SESSION_HOURS. Signing out closes it, so a copy of the cookie is worthless."""

    __tablename__ = "agent_sessions"
    __table_args__ = (Index("ix_agent_sessions_agent_id", "agent_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class RecoveryCode(Model):
    """One of an agent's one-time recovery codes: given at enrolment (or regenerated), shown once, usable
    at sign-in instead of an authenticator code, once. Only the code's SHA-256 is stored: a code is 80
    random bits, so its digest cannot be searched back (as for the session keys above)."""

    __tablename__ = "agent_recovery_codes"
    __table_args__ = (Index("ix_agent_recovery_codes_agent_id", "agent_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class InboxMark(Model):
    """An agent's hand on one inbox item: who took it ("assign to me"), and since when we wait on
    the customer. The item itself (a contact request, a dispute, a bank entry...) stays the truth
    of whether it is done; see `backoffice.inbox`."""

    __tablename__ = "inbox_marks"
    __table_args__ = (
        UniqueConstraint("kind", "record_id"),
        Index("ix_inbox_marks_creditor_id_assignee_id", "creditor_id", "assignee_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    creditor_id: Mapped[int] = mapped_column(ForeignKey("creditors.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))  # backoffice.inbox.KINDS
    record_id: Mapped[int] = mapped_column(Integer)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    waiting_since: Mapped[datetime | None] = mapped_column(UTCDateTime())  # set: waiting on the customer
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class Note(Model):
    """An agent's internal note on a customer (and maybe one of their bills). Never shown to customers."""

    __tablename__ = "agent_notes"
    __table_args__ = (Index("ix_agent_notes_customer_id_created_at", "customer_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    creditor_id: Mapped[int] = mapped_column(ForeignKey("creditors.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id", ondelete="CASCADE"))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    agent: Mapped[Agent | None] = relationship()


class ReplyTemplate(Model):
    """A saved answer in one language, with placeholders filled from the bill ({customer}, {invoice},
    {balance}, {due_date}, {creditor}) when an agent picks it."""

    __tablename__ = "reply_templates"
    __table_args__ = (UniqueConstraint("creditor_id", "locale", "title"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    creditor_id: Mapped[int] = mapped_column(ForeignKey("creditors.id", ondelete="CASCADE"))
    locale: Mapped[str] = mapped_column(String(8))
    title: Mapped[str] = mapped_column(String(100))
    body: Mapped[str] = mapped_column(Text)
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
