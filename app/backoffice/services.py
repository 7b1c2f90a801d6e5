"""Agents: creation, passwords (argon2id), the second factor (TOTP), lockout, the audit log, the
one helper that scopes every back-office query to the agent's creditors, internal notes, reply
templates, and what admins change about agents.

Plain functions: they add and flush; the view or command commits."""

from __future__ import annotations

import contextlib
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
from flask_babel import force_locale
from sqlalchemy import Select, select

from app.backoffice.models import Agent, AgentRole, AuditEntry, Note, ReplyTemplate, Role
from app.billing.models import Invoice
from app.core.validation import is_email
from app.creditors.models import Creditor
from app.errors import InvalidData
from app.extensions import db
from app.i18n import SUPPORTED_LOCALES
from app.models import utcnow
from app.templating import date_filter, money

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
    if not is_email(email):
        errors["email"] = "not an e-mail address"
    elif find_agent(email) is not None:
        errors["email"] = "an agent with this e-mail address exists"
    if not (name or "").strip():
        errors["name"] = "required"
    try:
        check_password(password)
    except InvalidData as exc:
        errors.update(exc.errors)
    if role not in Role.values():
        errors["role"] = f"one of {', '.join(Role)}"
    if errors:
        raise InvalidData(errors)
    agent = Agent(email=email, name=name.strip()[:100], password_hash=_hasher().hash(password))
    agent.roles.append(AgentRole(creditor_id=creditor.id, role=role))
    db.session.add(agent)
    db.session.flush()
    return agent


def grant_role(agent: Agent, creditor: Creditor, role: str) -> AgentRole:
    if role not in Role.values():
        raise InvalidData({"role": f"one of {', '.join(Role)}"})
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
        with contextlib.suppress(VerificationError, InvalidHashError):  # the same work as a known agent's
            _hasher().verify(_dummy_hash(), password or "")
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


def qr_svg(uri: str, title: str) -> str:
    """A QR code of `uri` as inline SVG: an authenticator's enrolment, a letter's link."""
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

    def select(self, model, *columns) -> Select:
        """`select(model)` (or of `columns` from it) limited to the agent's creditors: by the model's
        creditor_id, or, for a model that has none (a payment), by its invoice's."""
        query = select(*columns).select_from(model) if columns else select(model)
        if "creditor_id" in model.__table__.c:
            return query.where(model.creditor_id.in_(self.creditor_ids))
        return query.join(Invoice, model.invoice_id == Invoice.id).where(Invoice.creditor_id.in_(self.creditor_ids))

    def get(self, model, ident) -> Any:
        """One record by id, or None when it belongs to another creditor (the caller answers 404)."""
        if not isinstance(ident, int) or isinstance(ident, bool):
            return None
        return db.session.scalar(self.select(model).where(model.id == ident))

    def allows(self, creditor_id: int | None) -> bool:
        return creditor_id in self.creditor_ids


def scope_of(agent: Agent, roles: tuple[str, ...] = tuple(Role)) -> Scope:
    """The creditors where the agent holds one of `roles` (any role by default)."""
    return Scope(tuple(sorted(role.creditor_id for role in agent.roles if role.role in roles)))


SUPERVISING = (Role.SUPERVISOR, Role.ADMIN)


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


# --- what agents keep: internal notes, reply templates ---------------------------------------------

NOTE_MAX = 4000


def add_note(agent: Agent, customer, body: str, *, invoice=None) -> Note:
    """An internal note on the customer (and one of their bills): agents see it, customers never."""
    body = (body or "").strip()
    if not body:
        raise InvalidData({"body": "required"})
    if len(body) > NOTE_MAX:
        raise InvalidData({"body": "too_long"})
    if invoice is not None and invoice.customer_id != customer.id:
        raise InvalidData({"invoice": "other_customer"})
    note = Note(creditor_id=customer.creditor_id, customer_id=customer.id, invoice_id=invoice.id if invoice else None,
                agent_id=agent.id, body=body, created_at=utcnow())
    db.session.add(note)
    db.session.flush()
    return note


PLACEHOLDER = re.compile(r"\{(\w+)\}")
BRACED = re.compile(r"\{([^{}]*)\}")  # anything in braces: each must be a known placeholder
PLACEHOLDERS = ("customer", "invoice", "balance", "due_date", "creditor", "reference")
TEMPLATE_TITLE_MAX = 100
TEMPLATE_BODY_MAX = 4000


def save_template(agent: Agent, creditor_id: int, *, locale: str, title: str, body: str,
                  template: ReplyTemplate | None = None) -> ReplyTemplate:
    """A new saved answer, or changes to one. Placeholders other than PLACEHOLDERS are refused, so
    that an agent sees a typo before a customer does."""
    title, body = (title or "").strip(), (body or "").strip()
    errors = {}
    if locale not in SUPPORTED_LOCALES:
        errors["locale"] = "choose"
    if not title:
        errors["title"] = "required"
    elif len(title) > TEMPLATE_TITLE_MAX:
        errors["title"] = "too_long"
    if not body:
        errors["body"] = "required"
    elif len(body) > TEMPLATE_BODY_MAX:
        errors["body"] = "too_long"
    elif any(name not in PLACEHOLDERS for name in BRACED.findall(body)):
        errors["body"] = "placeholder"
    if not errors:
        clash = db.session.scalar(select(ReplyTemplate.id).where(
            ReplyTemplate.creditor_id == creditor_id, ReplyTemplate.locale == locale, ReplyTemplate.title == title))
        if clash is not None and (template is None or clash != template.id):
            errors["title"] = "taken"
    if errors:
        raise InvalidData(errors)
    if template is None:
        template = ReplyTemplate(creditor_id=creditor_id)
        db.session.add(template)
    template.locale, template.title, template.body, template.updated_by = locale, title, body, agent.id
    template.updated_at = utcnow()
    db.session.flush()
    return template


def templates_for(scope: Scope, creditor_id: int, locale: str | None = None) -> list[ReplyTemplate]:
    query = scope.select(ReplyTemplate).where(ReplyTemplate.creditor_id == creditor_id)
    if locale:
        query = query.where(ReplyTemplate.locale == locale)
    return list(db.session.scalars(query.order_by(ReplyTemplate.locale, ReplyTemplate.title)))


def fill_template(template: ReplyTemplate, invoice, *, reference: str | None = None) -> str:
    """The template's text with the bill's facts, formatted in the template's language. Only the
    known placeholders are replaced (a template is never run as a format string)."""
    with force_locale(template.locale):
        values = {
            "customer": invoice.customer.name, "invoice": invoice.number,
            "balance": money(max(invoice.balance, 0), invoice.currency), "due_date": date_filter(invoice.due_date),
            "creditor": invoice.creditor.name, "reference": reference or "",
        }
    return PLACEHOLDER.sub(lambda match: values.get(match.group(1), match.group(0)), template.body)


# --- admins: the agents of their creditors -------------------------------------------------------------


def agents_of(scope: Scope) -> list[tuple[Agent, AgentRole]]:
    """Each agent with a role at one of the scope's creditors, with that role (one row per role)."""
    return [(agent, role) for agent, role in db.session.execute(
        select(Agent, AgentRole).join(AgentRole, AgentRole.agent_id == Agent.id)
        .where(AgentRole.creditor_id.in_(scope.creditor_ids)).order_by(Agent.name, AgentRole.creditor_id)
    )]


def set_disabled(agent: Agent, disabled: bool) -> None:
    """Disable (every session ends at once) or enable an agent."""
    agent.disabled_at = utcnow() if disabled else None
    if disabled:
        agent.session_version += 1
    db.session.flush()


def reset_second_factor(agent: Agent) -> None:
    """A lost phone: the agent sets up a new authenticator at the next sign-in; every session ends."""
    agent.totp_secret, agent.totp_last_step = None, None
    agent.session_version += 1
    db.session.flush()


def remove_role(agent: Agent, creditor_id: int) -> None:
    role = next((r for r in agent.roles if r.creditor_id == creditor_id), None)
    if role is not None:
        agent.roles.remove(role)
        agent.session_version += 1
        db.session.flush()
