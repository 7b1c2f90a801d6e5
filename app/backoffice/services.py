"""Agents: creation, passwords (argon2id), the second factor (TOTP), lockout, the audit log, the
one helper that scopes every back-office query to the agent's creditors, internal notes, reply
templates, and what admins change about agents.

Plain functions: they add and flush; the view or command commits."""

from __future__ import annotations

import hashlib
import io
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

import pyotp
import segno
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask_babel import force_locale
from sqlalchemy import Select, and_, delete, exists, or_, select, update

from app.audit import AuditEntry, AuditEntryCreditor, AuditScope
from app.backoffice.models import (
    CASEWORK,
    Agent,
    AgentRole,
    AgentSession,
    Note,
    RecoveryCode,
    ReplyTemplate,
    Role,
)
from app.billing.models import Invoice
from app.core.validation import is_email
from app.creditors.models import Creditor
from app.crypto import SecretUnreadable, decrypt, encrypt
from app.errors import InvalidData
from app.extensions import db, limiter
from app.i18n import SUPPORTED_LOCALES
from app.models import utcnow
from app.outbox.services import enqueue
from app.ratelimit import Backoff
from app.templating import date_filter, money

log = logging.getLogger(__name__)

MIN_PASSWORD = 12
MAX_FAILURES = 5  # wrong second-factor (or enrolment) codes in a row before the account locks
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
    """Wrong e-mail, password or code, or a locked, throttled or disabled account. An unknown
    address, a wrong password and a disabled account get the same words and take as long."""

    def __init__(self, reason: str, agent: Agent | None = None):
        super().__init__(reason)
        # unknown | password | disabled | throttled | locked | code | enrolment_code | unreadable
        self.reason = reason
        self.agent = agent


#: Wrong passwords per (typed address, client address): five free, then a wait from 30 s doubling to
#: 15 min; the count starts again a day after the first failure, or at a right password.
ACCOUNT_BACKOFF = Backoff(free=5, base=30, cap=900, window=86400)
#: Wrong passwords per client address, whatever the address typed: more room (an office behind one
#: address), the same growing waits.
CLIENT_BACKOFF = Backoff(free=20, base=30, cap=900, window=86400)


def _backoff_keys(email: str, ip: str | None) -> tuple[str, str]:
    account = hashlib.sha256((email or "").strip().lower().encode()).hexdigest()[:32]
    client = ip or "unknown"
    return f"bo-sign-in/{account}/{client}", f"bo-sign-in/*/{client}"


def sign_in_wait(email: str, ip: str | None) -> int:
    """Seconds this client must wait before trying a password for this address (0: now). Counted by
    the address typed, known or not: the answer says nothing of whether an agent has it."""
    return max(limiter.backoff_wait(key) for key in _backoff_keys(email, ip))


def sign_in_failed(email: str, ip: str | None) -> None:
    account, client = _backoff_keys(email, ip)
    limiter.backoff_failed(account, ACCOUNT_BACKOFF)
    limiter.backoff_failed(client, CLIENT_BACKOFF)


def sign_in_succeeded(email: str, ip: str | None) -> None:
    """The right password from this client: its failures for this address are forgotten (the
    client's own count stays, so an attacker cannot clear it with an account of their own)."""
    limiter.backoff_clear(_backoff_keys(email, ip)[0])


def is_locked(agent: Agent, now: datetime) -> bool:
    return agent.locked_until is not None and agent.locked_until > now


def _failed(agent: Agent, now: datetime) -> None:
    """A wrong second-factor or enrolment code: reached only with the right password, so counting
    it on the agent (and locking) cannot be done by someone who merely knows the address."""
    agent.failed_attempts += 1
    if agent.failed_attempts >= MAX_FAILURES:
        agent.locked_until = now + timedelta(minutes=LOCK_MINUTES)
        agent.failed_attempts = 0
    db.session.flush()


def count_failure(agent: Agent, now: datetime) -> None:
    """A wrong code of another kind (a recovery code), counted as a wrong second-factor code."""
    _failed(agent, now)


def check_credentials(email: str, password: str, now: datetime) -> Agent:
    """The first step: the agent whose password this is, or SignInRefused.

    Every attempt verifies one argon2 hash, the agent's or a dummy one, before anything is decided,
    so an unknown address, a wrong password and a disabled account take as long, and get the same
    answer. Nothing is counted on the agent: wrong passwords slow the client down instead
    (`sign_in_failed`), so nobody can lock an agent out by typing their address."""
    agent = find_agent(email)
    right: bool
    try:
        right = _hasher().verify(agent.password_hash if agent is not None else _dummy_hash(), password or "")
    except (VerificationError, InvalidHashError):
        right = False
    if agent is None:
        raise SignInRefused("unknown")
    if not right:
        raise SignInRefused("password", agent)
    if agent.disabled_at is not None:
        raise SignInRefused("disabled", agent)
    if is_locked(agent, now):  # wrong codes: only someone with the password gets this far
        raise SignInRefused("locked", agent)
    if _hasher().check_needs_rehash(agent.password_hash):
        agent.password_hash = _hasher().hash(password)
    return agent


# --- sessions -------------------------------------------------------------------------------------------


def _key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def start_session(agent: Agent, now: datetime, *, max_hours: int) -> str:
    """A new session of the agent: its key (for the session cookie; only its hash is stored). The
    agent's sessions that ended or are past `max_hours` are forgotten meanwhile."""
    db.session.execute(delete(AgentSession).where(
        AgentSession.agent_id == agent.id,
        AgentSession.ended_at.is_not(None) | (AgentSession.created_at < now - timedelta(hours=max_hours)),
    ))
    key = secrets.token_urlsafe(32)
    db.session.add(AgentSession(agent_id=agent.id, key_hash=_key_hash(key), created_at=now))
    db.session.flush()
    return key


def session_agent(agent_id: int, version: int, key: str, now: datetime, *, max_hours: int) -> Agent | None:
    """The agent of a session cookie, in one statement: enabled, not signed out everywhere since
    (the version), and the session itself open on the server and younger than `max_hours`."""
    if not key or len(key) > 64:
        return None
    return db.session.scalar(
        select(Agent).join(AgentSession, AgentSession.agent_id == Agent.id).where(
            Agent.id == agent_id, Agent.session_version == version, Agent.disabled_at.is_(None),
            AgentSession.key_hash == _key_hash(key), AgentSession.ended_at.is_(None),
            AgentSession.created_at > now - timedelta(hours=max_hours),
        )
    )


def end_session(key: str, now: datetime) -> None:
    """This session is over, on the server: a copy of its cookie no longer signs anyone in."""
    db.session.execute(update(AgentSession).where(AgentSession.key_hash == _key_hash(key),
                                                   AgentSession.ended_at.is_(None)).values(ended_at=now))
    db.session.flush()


def sign_out_everywhere(agent: Agent, now: datetime | None = None) -> None:
    """Every session of the agent ends: closed on the server, and the session version moves."""
    agent.session_version += 1
    db.session.execute(update(AgentSession).where(AgentSession.agent_id == agent.id,
                                                   AgentSession.ended_at.is_(None)).values(ended_at=now or utcnow()))
    db.session.flush()


# --- the second factor -----------------------------------------------------------------------------------


def provisioning_uri(agent: Agent, secret: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=agent.email, issuer_name=ISSUER)


def qr_svg(uri: str, title: str, *, fluid: bool = False) -> str:
    """A QR code of `uri` as inline SVG: an authenticator's enrolment, a letter's link. `fluid`: no fixed
    size, a viewBox instead, so that CSS fits it to a narrow screen (a long enrolment address makes a
    QR code wider than a 320 px phone at a fixed scale)."""
    qr = segno.make(uri, error="m")
    out = io.BytesIO()
    qr.save(out, kind="svg", scale=5, border=4, title=title, xmldecl=False, svgns=True, nl=False, omitsize=fluid)
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


def second_factor_secret(agent: Agent) -> str | None:
    """The agent's TOTP secret: decrypted, or (set before migration 0009, not yet encrypted) as stored."""
    if agent.totp_secret_encrypted:
        return decrypt(agent.totp_secret_encrypted)
    return agent.totp_secret


def pending_secret(agent: Agent) -> str:
    """The secret the agent is enrolling: kept on the agent's row, encrypted, until confirmed (never in
    the session cookie); a new one when there is none, or none readable."""
    if agent.totp_pending_encrypted:
        try:
            return decrypt(agent.totp_pending_encrypted)
        except SecretUnreadable:
            pass
    secret = pyotp.random_base32()
    agent.totp_pending_encrypted = encrypt(secret)
    db.session.flush()
    return secret


def check_code(agent: Agent, code: str, now: datetime, *, enrolling: bool = False) -> None:
    """The second step: the code from the agent's app, or, while enrolling, from the pending secret
    (which becomes the agent's on success, and any enrolment code is used up)."""
    if is_locked(agent, now):
        raise SignInRefused("locked", agent)
    try:
        key = pending_secret(agent) if enrolling else second_factor_secret(agent)
    except SecretUnreadable:  # a key dropped from DATA_ENCRYPTION_KEYS too early: an operator resets
        log.error("agent %s: no DATA_ENCRYPTION_KEYS key decrypts the second factor's secret", agent.id)
        raise SignInRefused("unreadable", agent) from None
    step = _code_step(key, code, now, None if enrolling else agent.totp_last_step) if key else None
    if step is None:
        _failed(agent, now)
        raise SignInRefused("code", agent)
    if enrolling:
        agent.totp_secret_encrypted, agent.totp_pending_encrypted = agent.totp_pending_encrypted, None
        agent.enrolment_code_required = False
        agent.enrolment_code_hash = agent.enrolment_code_expires_at = None
        agent.totp_secret = None
    elif agent.totp_secret:  # in clear since before migration 0009: encrypted from now on
        agent.totp_secret_encrypted, agent.totp_secret = encrypt(agent.totp_secret), None
    agent.totp_last_step = step
    agent.failed_attempts = 0
    agent.last_sign_in_at = now
    db.session.flush()


def encrypt_clear_secrets() -> int:
    """Encrypt every second-factor secret still stored in clear (from before migration 0009); the
    number encrypted. `flask agents encrypt-secrets` runs it once after the upgrade."""
    agents = list(db.session.scalars(select(Agent).where(Agent.totp_secret.is_not(None))))
    for agent in agents:
        if not agent.totp_secret_encrypted and agent.totp_secret is not None:
            agent.totp_secret_encrypted = encrypt(agent.totp_secret)
        agent.totp_secret = None
    db.session.flush()
    return len(agents)


# --- resetting the second factor: a one-time enrolment code -------------------------------------------

ENROLMENT_CODE_HOURS = 72
ENROLMENT_KIND = "agent.enrolment_code"  # rendered by app.backoffice.emails
_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read from a screen or a phone call


def _normalised_code(code: str) -> str:
    return re.sub(r"[\s-]", "", code or "").upper()


def reset_second_factor(agent: Agent, now: datetime | None = None) -> None:
    """A lost phone: the second factor is gone, every session ends, and the next sign-in asks for a
    one-time enrolment code (`issue_enrolment_code`) before a new factor can be set up. The
    password alone never enrols one."""
    agent.totp_secret = agent.totp_secret_encrypted = agent.totp_pending_encrypted = None
    agent.totp_last_step = None
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.agent_id == agent.id))  # new ones with the new factor
    agent.enrolment_code_required = True
    agent.enrolment_code_hash = agent.enrolment_code_expires_at = None
    sign_out_everywhere(agent, now)


def issue_enrolment_code(agent: Agent, now: datetime) -> str:
    """A new one-time enrolment code for an agent whose factor was reset (an earlier one stops
    working): shown once, stored as an argon2 hash, valid ENROLMENT_CODE_HOURS, used up by the
    enrolment it allows. Raises InvalidData when no reset waits for one."""
    if not agent.enrolment_code_required or agent.has_second_factor:
        raise InvalidData({"agent": "no reset of the second factor waits for a code"})
    code = "".join(secrets.choice(_CODE_ALPHABET) for _i in range(12))  # 60 bits
    agent.enrolment_code_hash = _hasher().hash(code)
    agent.enrolment_code_expires_at = now + timedelta(hours=ENROLMENT_CODE_HOURS)
    db.session.flush()
    return "-".join(code[i:i + 4] for i in range(0, len(code), 4))


def send_enrolment_code(agent: Agent, *, creditor_id: int | None, locale: str) -> None:
    """The enrolment code by e-mail to the agent's own address, through the outbox. The code is
    made when the e-mail goes out (only its hash is stored, so it cannot wait in the outbox)."""
    enqueue("email", ENROLMENT_KIND, agent.email, {"agent_id": agent.id},
            idempotency_key=f"{ENROLMENT_KIND}:{agent.id}:{agent.session_version}", creditor_id=creditor_id,
            locale=locale)


def check_enrolment_code(agent: Agent, code: str, now: datetime) -> None:
    """The code that lets an agent whose factor was reset enrol a new one; wrong codes count like
    wrong second-factor codes (and lock the account after MAX_FAILURES)."""
    if is_locked(agent, now):
        raise SignInRefused("locked", agent)
    valid = False
    if agent.enrolment_code_hash and agent.enrolment_code_expires_at and agent.enrolment_code_expires_at > now:
        try:
            valid = _hasher().verify(agent.enrolment_code_hash, _normalised_code(code))
        except (VerificationError, InvalidHashError):
            valid = False
    if not valid:
        _failed(agent, now)
        raise SignInRefused("enrolment_code", agent)


# --- the audit log and the scope of every query ------------------------------------------------------


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

    def covers(self, creditor_ids) -> bool:
        """Whether every one of `creditor_ids` is in the scope."""
        return set(creditor_ids) <= set(self.creditor_ids)


def scope_of(agent: Agent, roles: tuple[str, ...] = CASEWORK) -> Scope:
    """The creditors where the agent holds one of `roles` (any case-working role by default: a creditor
    admin sees no customer's data)."""
    return Scope(tuple(sorted(role.creditor_id for role in agent.roles if role.role in roles)))


SUPERVISING = (Role.SUPERVISOR, Role.ADMIN)


def audit_entries(scope: Scope, *, before_id: int | None = None, limit: int = 100) -> list[AuditEntry]:
    """The audit log a supervisor may read, newest first: the entries of one of their creditors; the
    entries of several creditors only when they may read every one of them (a search across another
    creditor's customers is that creditor's business too); and the signing in and out of the agents
    who work at one of their creditors (those carry no customer's data)."""
    ids = scope.creditor_ids
    agents_here = select(AgentRole.agent_id).where(AgentRole.creditor_id.in_(ids))
    listed = exists().where(AuditEntryCreditor.entry_id == AuditEntry.id)
    outside = exists().where(AuditEntryCreditor.entry_id == AuditEntry.id, AuditEntryCreditor.creditor_id.not_in(ids))
    query = (
        select(AuditEntry)
        .where(or_(
            and_(AuditEntry.scope == AuditScope.CREDITOR, AuditEntry.creditor_id.in_(ids)),
            and_(AuditEntry.scope == AuditScope.CREDITORS, listed, ~outside),
            and_(AuditEntry.scope == AuditScope.AGENT, AuditEntry.agent_id.in_(agents_here)),
        ))
        .order_by(AuditEntry.id.desc()).limit(limit)
    )
    if before_id is not None:
        query = query.where(AuditEntry.id < before_id)
    return list(db.session.scalars(query))


def entry_creditors(entries: list[AuditEntry]) -> dict[int, tuple[int, ...]]:
    """The creditors each entry concerns, by entry id (one query for the entries of several)."""
    several = [entry.id for entry in entries if entry.scope == AuditScope.CREDITORS]
    found: dict[int, list[int]] = {}
    if several:
        for entry_id, creditor_id in db.session.execute(
                select(AuditEntryCreditor.entry_id, AuditEntryCreditor.creditor_id)
                .where(AuditEntryCreditor.entry_id.in_(several)).order_by(AuditEntryCreditor.creditor_id)):
            found.setdefault(entry_id, []).append(creditor_id)
    return {entry.id: (tuple(found.get(entry.id, ())) if entry.scope == AuditScope.CREDITORS
                       else (entry.creditor_id,) if entry.creditor_id is not None else ()) for entry in entries}


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
        sign_out_everywhere(agent)
    db.session.flush()


def remove_role(agent: Agent, creditor_id: int) -> None:
    role = next((r for r in agent.roles if r.creditor_id == creditor_id), None)
    if role is not None:
        agent.roles.remove(role)
        sign_out_everywhere(agent)
