"""Agent (a person at a creditor's support desk), their roles per creditor, and the audit log."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models import UTCDateTime, utcnow

ROLES = ("agent", "supervisor", "admin")


class Agent(db.Model):
    __tablename__ = "agents"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)  # stored lower-case
    name: Mapped[str] = mapped_column(String(100))
    password_hash: Mapped[str] = mapped_column(String(200))  # argon2id
    totp_secret: Mapped[str | None] = mapped_column(String(64))  # set once enrolment is confirmed
    totp_last_step: Mapped[int | None] = mapped_column(Integer)  # a code is accepted once
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

    def get_id(self) -> str:
        return f"{self.id}:{self.session_version}"

    def creditor_ids(self) -> list[int]:
        return sorted(role.creditor_id for role in self.roles)

    def role_for(self, creditor_id: int) -> str | None:
        return next((role.role for role in self.roles if role.creditor_id == creditor_id), None)


class AgentRole(db.Model):
    __tablename__ = "agent_roles"
    __table_args__ = (UniqueConstraint("agent_id", "creditor_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    creditor_id: Mapped[int] = mapped_column(ForeignKey("creditors.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(12))

    agent: Mapped[Agent] = relationship(back_populates="roles")


class AuditEntry(db.Model):
    """One thing an agent did or looked at. Append-only: nothing updates or deletes these rows."""

    __tablename__ = "audit_entries"
    __table_args__ = (
        Index("ix_audit_entries_creditor_id_at", "creditor_id", "at"),
        Index("ix_audit_entries_agent_id_at", "agent_id", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    creditor_id: Mapped[int | None] = mapped_column(ForeignKey("creditors.id", ondelete="SET NULL"))
    action: Mapped[str] = mapped_column(String(48))
    record_type: Mapped[str | None] = mapped_column(String(32))
    record_id: Mapped[str | None] = mapped_column(String(64))
    ip: Mapped[str | None] = mapped_column(String(45))
    detail: Mapped[dict] = mapped_column(JSON, default=dict)
