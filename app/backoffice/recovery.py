"""An agent's one-time recovery codes: the way in when the phone with the authenticator app is lost
or broken, without waiting for an admin's reset.

Ten codes are made at enrolment (and whenever the agent makes new ones, which ends the old ones),
shown once, stored as SHA-256 digests. At sign-in a recovery code is taken instead of the app's
six-digit code; each works once. A wrong one counts as a wrong code (the lock-out applies). The
views record every use in the audit log, with how many codes are left."""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, delete, func, select, update

from app.backoffice.models import Agent, RecoveryCode
from app.backoffice.services import SignInRefused, count_failure, is_locked
from app.extensions import db

COUNT = 10
GROUPS, GROUP = 4, 4  # 16 characters from 32: 80 random bits, read as ABCD-EFGH-JKLM-NPQR
ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I
SHAPE = re.compile(rf"[{ALPHABET}]{{{GROUPS * GROUP}}}")


def normalised(code: str) -> str:
    """What was typed, without spaces and dashes, in capitals (a code is read from paper)."""
    return re.sub(r"[\s-]", "", code or "").upper()


def looks_like_one(code: str) -> bool:
    """Whether the typed text has a recovery code's shape (else it is taken for an app's code)."""
    return SHAPE.fullmatch(normalised(code)) is not None


def _digest(code: str) -> str:
    return hashlib.sha256(normalised(code).encode()).hexdigest()


def grouped(text: str, size: int = GROUP) -> str:
    """A key or a code in groups for reading and typing: 'ABCD EFGH ...'."""
    return " ".join(text[i:i + size] for i in range(0, len(text), size))


def new_codes(agent: Agent, now: datetime) -> list[str]:
    """Ten new codes for the agent (every earlier one stops working): the codes themselves, to be shown
    once; only their digests are kept."""
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.agent_id == agent.id))
    codes = ["-".join("".join(secrets.choice(ALPHABET) for _ in range(GROUP)) for _ in range(GROUPS))
             for _ in range(COUNT)]
    db.session.add_all(RecoveryCode(agent_id=agent.id, code_hash=_digest(code), created_at=now) for code in codes)
    db.session.flush()
    return codes


def codes_left(agent: Agent) -> int:
    return db.session.scalar(select(func.count()).select_from(RecoveryCode).where(
        RecoveryCode.agent_id == agent.id, RecoveryCode.used_at.is_(None))) or 0


def drop_codes(agent: Agent) -> None:
    """Every code of the agent gone (their second factor was reset: new codes come with the new one)."""
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.agent_id == agent.id))
    db.session.flush()


def use_code(agent: Agent, code: str, now: datetime) -> int:
    """Sign in with a recovery code instead of the app's: the code is used up (at once, in one UPDATE,
    so two requests with the same code cannot both pass). The number of codes left; SignInRefused
    ("locked" or "recovery_code") otherwise, a wrong code counted like a wrong app code."""
    if is_locked(agent, now):
        raise SignInRefused("locked", agent)
    used = cast(CursorResult[Any], db.session.execute(  # an UPDATE's result: it has a rowcount
        update(RecoveryCode)
        .where(RecoveryCode.agent_id == agent.id, RecoveryCode.code_hash == _digest(code),
               RecoveryCode.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )).rowcount
    if not used:
        count_failure(agent, now)
        raise SignInRefused("recovery_code", agent)
    agent.failed_attempts = 0
    agent.last_sign_in_at = now
    db.session.flush()
    return codes_left(agent)
