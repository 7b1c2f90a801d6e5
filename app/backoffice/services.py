"""Agents: creation, passwords (argon2id), the second factor (TOTP), lockout, the audit log, and
the one helper that scopes every back-office query to the agent's creditors.

Plain functions: they add and flush; the view or command commits."""

from __future__ import annotations

import io
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

import pyotp
import segno
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import Select, select

from app.backoffice.models import ROLES, Agent, AgentRole, AuditEntry
from app.creditors.models import Creditor
from app.errors import InvalidData
from app.extensions import db
from app.models import utcnow

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MIN_PASSWORD = 12
MAX_FAILURES = 5  # wrong passwords or codes in a row before the account locks
LOCK_MINUTES = 15
ISSUER = "Payment portal back office"

@lru_cache(maxsize=1)
def _hasher() -> PasswordHasher:
    """argon2id with the library's current recommended parameters."""
    return PasswordHasher()


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    """Verified for unknown e-mail addresses, so that "no such agent" takes as long as "wrong password"."""
    return _hasher().hash(secrets.token_urlsafe(16))


# --- agents ------------------------------------------------------------------------------------------


def find_agent(email: str) -> Agent | None:
    return db.session.scalar(select(Agent).where(Agent.email == (email or "").strip().lower()))


def check_password(password: str) -> None:
    if len(password or "") < MIN_PASSWORD:
        raise InvalidData({"password": f"at least {MIN_PASSWORD} characters"})


def create_agent(email: str, name: str, password: str, creditor: Creditor, role: str) -> Agent:
    """A new agent with a role at one creditor (more with `grant_role`). The second factor is set
    up at the first sign-in."""
    errors = {}
    email = (email or "").strip().lower()
    if not EMAIL.match(email):
        errors["email"] = "not an e-mail address"
    elif find_agent(email) is not None:
        errors["email"] = "an agent with this e-mail address exists"
    if not (name or "").strip():
        errors["name"] = "required"
    try:
        check_password(password)
    except InvalidData as exc:
        errors.update(exc.errors)
    if role not in ROLES:
        errors["role"] = f"one of {', '.join(ROLES)}"
    if errors:
        raise InvalidData(errors)
    agent = Agent(email=email, name=name.strip()[:100], password_hash=_hasher().hash(password))
    agent.roles.append(AgentRole(creditor_id=creditor.id, role=role))
    db.session.add(agent)
    db.session.flush()
    return agent


def grant_role(agent: Agent, creditor: Creditor, role: str) -> AgentRole:
    if role not in ROLES:
        raise InvalidData({"role": f"one of {', '.join(ROLES)}"})
    existing = next((r for r in agent.roles if r.creditor_id == creditor.id), None)
    if existing is not None:
        existing.role = role
        return existing
    granted = AgentRole(creditor_id=creditor.id, role=role)
    agent.roles.append(granted)
    db.session.flush()
    return granted


# --- signing in ----------------------------------------------------------------------------------------


class SignInRefused(Exception):
    """Wrong e-mail, password or code, or a locked or disabled account: the same words for all."""

    def __init__(self, reason: str, agent: Agent | None = None):
        super().__init__(reason)
        self.reason = reason  # unknown | password | code | locked | disabled
        self.agent = agent


def is_locked(agent: Agent, now: datetime) -> bool:
    return agent.locked_until is not None and agent.locked_until > now


def _failed(agent: Agent, now: datetime) -> None:
    agent.failed_attempts += 1
    if agent.failed_attempts >= MAX_FAILURES:
        agent.locked_until = now + timedelta(minutes=LOCK_MINUTES)
        agent.failed_attempts = 0
    db.session.flush()


def check_credentials(email: str, password: str, now: datetime) -> Agent:
    """The first step: the agent whose password this is, or SignInRefused (counted on the agent)."""
    agent = find_agent(email)
    if agent is None:
        try:
            _hasher().verify(_dummy_hash(), password or "")
        except (VerificationError, InvalidHashError):
            pass
        raise SignInRefused("unknown")
    if agent.disabled_at is not None:
        raise SignInRefused("disabled", agent)
    if is_locked(agent, now):
        raise SignInRefused("locked", agent)
    try:
        _hasher().verify(agent.password_hash, password or "")
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        _failed(agent, now)
        raise SignInRefused("password", agent) from None
    if _hasher().check_needs_rehash(agent.password_hash):
        agent.password_hash = _hasher().hash(password)
    return agent


def new_totp_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(agent: Agent, secret: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=agent.email, issuer_name=ISSUER)


def provisioning_qr_svg(uri: str, title: str) -> str:
    qr = segno.make(uri, error="m")
    out = io.BytesIO()
    qr.save(out, kind="svg", scale=5, border=4, title=title, xmldecl=False, svgns=True, nl=False)
    return out.getvalue().decode()


def _code_step(secret: str, code: str, now: datetime, last_step: int | None) -> int | None:
    """The time step the code belongs to (this one or its neighbours, for clock drift), or None.
    A step at or before `last_step` is refused: a code works once."""
    code = re.sub(r"\s", "", code or "")
    if not re.fullmatch(r"\d{6}", code):
        return None
    totp = pyotp.TOTP(secret)
    step_now = totp.timecode(now)
    for step in (step_now - 1, step_now, step_now + 1):
        if last_step is not None and step <= last_step:
            continue
        if pyotp.utils.strings_equal(totp.generate_otp(step), code):
            return step
    return None


def check_code(agent: Agent, code: str, now: datetime, *, secret: str | None = None) -> None:
    """The second step: the code from the agent's app (or, while enrolling, from `secret`)."""
    if is_locked(agent, now):
        raise SignInRefused("locked", agent)
    key = secret or agent.totp_secret
    step = _code_step(key, code, now, None if secret else agent.totp_last_step) if key else None
    if step is None:
        _failed(agent, now)
        raise SignInRefused("code", agent)
    if secret:
        agent.totp_secret = secret
    agent.totp_last_step = step
    agent.failed_attempts = 0
    agent.last_sign_in_at = now
    db.session.flush()


def sign_out_everywhere(agent: Agent) -> None:
    """Every session of the agent ends at its next request (the session carries the version)."""
    agent.session_version += 1
    db.session.flush()


# --- the audit log and the scope of every query ------------------------------------------------------


def audit(agent: Agent | None, action: str, *, creditor_id: int | None = None, record_type: str | None = None,
          record_id: Any = None, ip: str | None = None, **detail) -> AuditEntry:
    entry = AuditEntry(
        at=utcnow(), agent_id=agent.id if agent else None, creditor_id=creditor_id, action=action,
        record_type=record_type, record_id=str(record_id) if record_id is not None else None,
        ip=(ip or "")[:45] or None, detail=detail,
    )
    db.session.add(entry)
    return entry


@dataclass(frozen=True)
class Scope:
    """The creditors an agent may see. Every back-office query goes through `select()`."""

    creditor_ids: tuple[int, ...]

    def select(self, model) -> Select:
        """`select(model)` limited to the agent's creditors (the model has a creditor_id column)."""
        return select(model).where(model.creditor_id.in_(self.creditor_ids))

    def get(self, model, ident) -> Any:
        """One record by id, or None when it belongs to another creditor (the caller answers 404)."""
        return db.session.scalar(self.select(model).where(model.id == ident))


def scope_of(agent: Agent, roles: tuple[str, ...] = ROLES) -> Scope:
    """The creditors where the agent holds one of `roles` (any role by default)."""
    return Scope(tuple(sorted(role.creditor_id for role in agent.roles if role.role in roles)))


SUPERVISING = ("supervisor", "admin")


def audit_entries(scope: Scope, *, before_id: int | None = None, limit: int = 100) -> list[AuditEntry]:
    """The audit log a supervisor may read, newest first: what happened at their creditors, and
    what the agents working there did (their sign-ins carry no creditor)."""
    agents_here = select(AgentRole.agent_id).where(AgentRole.creditor_id.in_(scope.creditor_ids))
    query = (
        select(AuditEntry)
        .where(AuditEntry.creditor_id.in_(scope.creditor_ids)
               | (AuditEntry.creditor_id.is_(None) & AuditEntry.agent_id.in_(agents_here)))
        .order_by(AuditEntry.id.desc()).limit(limit)
    )
    if before_id is not None:
        query = query.where(AuditEntry.id < before_id)
    return list(db.session.scalars(query))
