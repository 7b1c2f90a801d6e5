"""The audit log: who did or looked at what, about which creditor. Append-only (the database refuses
updates and deletes). Written by the back office (agents' actions and sign-ins) and by operators'
commands (`flask agents`, `flask privacy`); read by the back office's audit page
(`backoffice.services.audit_entries`). Its own package, below every feature that writes it, so that
a feature's command line can audit without importing the back office."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core.enums import Codes
from app.extensions import Model, db
from app.models import UTCDateTime, utcnow


class AnAgent(Protocol):
    """An agent as the audit log knows one: by id (app.backoffice.models.Agent)."""

    id: int


class AuditActor(Codes):
    """Who made an audit entry."""

    AGENT = "agent"  # a signed-in agent (agent_id)
    OPERATOR = "operator"  # someone at the command line (flask agents ...)
    ANONYMOUS = "anonymous"  # a sign-in attempt with an address no agent has


class AuditScope(Codes):
    """Whose the facts of an audit entry are, and so who may read it."""

    CREDITOR = "creditor"  # one creditor's (creditor_id): its supervisors and admins
    CREDITORS = "creditors"  # several creditors' (audit_entry_creditors): only whoever may read every one
    AGENT = "agent"  # the agent's own signing in and out: the supervisors of any creditor the agent works for


class AuditEntry(Model):
    """One thing an agent did or looked at. Append-only: nothing updates or deletes these rows (the
    database refuses it), and neither its agent nor its creditors can be deleted while it exists."""

    __tablename__ = "audit_entries"
    __table_args__ = (
        Index("ix_audit_entries_creditor_id_at", "creditor_id", "at"),
        Index("ix_audit_entries_agent_id_at", "agent_id", "at"),
        CheckConstraint(AuditActor.sql_in("actor"), name="actor"),
        CheckConstraint(AuditScope.sql_in("scope"), name="scope"),
        # An agent's entry names the agent, and an entry of one creditor names it: never NULL there.
        CheckConstraint("(actor = 'agent') = (agent_id IS NOT NULL)", name="agent_of_actor"),
        CheckConstraint("(scope = 'creditor') = (creditor_id IS NOT NULL)", name="creditor_of_scope"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    actor: Mapped[str] = mapped_column(String(10))
    scope: Mapped[str] = mapped_column(String(10))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="RESTRICT"))
    creditor_id: Mapped[int | None] = mapped_column(ForeignKey("creditors.id", ondelete="RESTRICT"))
    action: Mapped[str] = mapped_column(String(48))
    record_type: Mapped[str | None] = mapped_column(String(32))
    record_id: Mapped[str | None] = mapped_column(String(64))
    ip: Mapped[str | None] = mapped_column(String(45))
    detail: Mapped[dict] = mapped_column(JSON, default=dict)

    creditors: Mapped[list[AuditEntryCreditor]] = relationship()


class AuditEntryCreditor(Model):
    """A creditor an entry of scope "creditors" concerns (an inbox viewed, a search, across several).
    Append-only like the entries."""

    __tablename__ = "audit_entry_creditors"
    __table_args__ = (Index("ix_audit_entry_creditors_creditor_id", "creditor_id"),)

    entry_id: Mapped[int] = mapped_column(ForeignKey("audit_entries.id", ondelete="RESTRICT"), primary_key=True)
    creditor_id: Mapped[int] = mapped_column(ForeignKey("creditors.id", ondelete="RESTRICT"), primary_key=True)


def audit(agent: AnAgent | None, action: str, *, creditor_id: int | None = None, creditor_ids: Any = None,
          operator: bool = False, record_type: str | None = None, record_id: Any = None, ip: str | None = None,
          **detail) -> AuditEntry:
    """An audit entry: by `agent` (or, without one, an operator at the command line, or an anonymous
    sign-in attempt), about one creditor (`creditor_id`), several (`creditor_ids`: the scope an agent
    worked in, an inbox or a search across creditors), or neither (the agent's own signing in and
    out). Who may read it follows from that (`audit_entries`)."""
    ids = (creditor_id,) if creditor_id is not None else (
        tuple(sorted(set(creditor_ids))) if creditor_ids is not None else None)
    if ids is None:
        scope = AuditScope.AGENT
    elif len(ids) == 1:
        scope, creditor_id = AuditScope.CREDITOR, ids[0]
    else:
        scope, creditor_id = AuditScope.CREDITORS, None
    actor = AuditActor.AGENT if agent is not None else AuditActor.OPERATOR if operator else AuditActor.ANONYMOUS
    entry = AuditEntry(
        at=utcnow(), actor=actor, scope=scope, agent_id=agent.id if agent else None, creditor_id=creditor_id,
        action=action, record_type=record_type, record_id=str(record_id) if record_id is not None else None,
        ip=(ip or "")[:45] or None, detail=detail,
    )
    if scope == AuditScope.CREDITORS and ids is not None:
        entry.creditors = [AuditEntryCreditor(creditor_id=one) for one in ids]
    db.session.add(entry)
    return entry
