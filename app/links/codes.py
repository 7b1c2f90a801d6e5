"""Short codes: a letter's link, typed from paper (`pay.example.com/k/7KQ2M-9XDAB`).

A signed link (`/l/<token>`, 73 characters) cannot be typed from a letter. A letter carries a
short code instead: 10 characters of Crockford's base32 (50 bits), printed in two groups of five,
read without regard to case, with O read as 0, I and L as 1, and spaces and hyphens ignored. The
address `/k/<code>` then does what `/l/<token>` does (`portal.views.codes`), and a revoked or
expired code, or one that never was, gets the same neutral answer.

Nothing that would open the bill is stored. The link row keeps the code's keyed hash
(HMAC-SHA256 under a key derived from the newest LINK_SIGNING_KEYS entry), so that a copy of the
database gives neither the codes nor a way to try the 2^50 of them offline. The code is itself
derived from the link's id under another derived key: the print run can print the same letter
again byte for byte (`flask letters batch --reprint-batch`) without the code ever having been
kept. After a key rotation, codes made under an older key are found under it (each lookup tries
every listed key, as the signer does), as long as the key stays listed, which it does for the
longest life of a link.

Short codes are few enough to guess at (50 bits against the signed link's 128 and a MAC): the
address is rate-limited per client (CODE_RATE_LIMIT), every code's link expires and can be revoked
like any other, and a creditor's step-up applies after it as after a signed link.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select

from app.billing.models import Invoice
from app.billing.services import record_event
from app.creditors.models import Creditor
from app.errors import InvalidData
from app.extensions import db
from app.links.models import AccessLink
from app.links.services import Resolution, end_grants, resolution_of, resolution_select
from app.links.signer import hash_key
from app.models import utcnow

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford's base32: no I, L, O, U
LENGTH = 10  # 50 bits
GROUP = 5  # shown as two groups of five: 7KQ2M-9XDAB
ATTEMPTS = 8  # derivations tried for a link before giving up (a clash with a live code is rare: 1 in 2^50 a code)
PREFIX = "/k/"
_READ_AS = str.maketrans({"O": "0", "I": "1", "L": "1"})
_IGNORED = re.compile(r"[\s\-‐-―]+")  # spaces and hyphens (ASCII and typographic)
EXTENSION = "link_codes"


def normalise(raw: str | None) -> str | None:
    """The code as stored and derived (10 characters of the alphabet), or None when `raw` cannot be one."""
    if not raw or len(raw) > 40:
        return None
    code = _IGNORED.sub("", raw).upper().translate(_READ_AS)
    if len(code) != LENGTH or any(char not in ALPHABET for char in code):
        return None
    return code


def display(code: str) -> str:
    """The code as printed: two groups of five joined by a hyphen."""
    return f"{code[:GROUP]}-{code[GROUP:]}"


class CodeKeys:
    """The keys codes are derived and hashed with: two derived from each signing key, newest first."""

    def __init__(self, signing_keys: list[str]):
        if not signing_keys:
            raise ValueError("at least one signing key is needed")
        self._keys = [(hmac.new(key.encode(), b"portal.link.code.derive", hashlib.sha256).digest(),
                       hmac.new(key.encode(), b"portal.link.code.hash", hashlib.sha256).digest())
                      for key in signing_keys]

    def __len__(self) -> int:
        return len(self._keys)

    def code(self, link_id: int, attempt: int = 0, key: int = 0) -> str:
        """The code of a link: the first 50 bits of an HMAC of its id (and the attempt) in the alphabet."""
        digest = hmac.new(self._keys[key][0], f"{link_id}:{attempt}".encode(), hashlib.sha256).digest()
        number = int.from_bytes(digest[:8], "big") >> (64 - 5 * LENGTH)
        return "".join(ALPHABET[(number >> (5 * (LENGTH - 1 - i))) & 31] for i in range(LENGTH))

    def hash(self, code: str, key: int = 0) -> str:
        return hmac.new(self._keys[key][1], code.encode(), hashlib.sha256).hexdigest()

    def hashes(self, code: str) -> list[str]:
        """The code's hash under every key (a lookup matches any: codes made before a rotation)."""
        return [self.hash(code, key) for key in range(len(self._keys))]


def get_code_keys() -> CodeKeys:
    """The app's code keys, made once per app from LINK_SIGNING_KEYS."""
    keys = current_app.extensions.get(EXTENSION)
    if keys is None:
        keys = current_app.extensions[EXTENSION] = CodeKeys(current_app.config["LINK_SIGNING_KEYS"])
    return keys


def code_url(creditor: Creditor, code: str, base_url: str) -> str:
    """The address a code opens: the creditor's portal domain or PORTAL_BASE_URL, never the Host header."""
    return f"{(creditor.portal_base_url or base_url).rstrip('/')}{PREFIX}{display(code)}"


def typed_address(url: str) -> str:
    """The address as a person types it: without the scheme (`pay.example.com/k/7KQ2M-9XDAB`)."""
    return re.sub(r"^https?://", "", url)


@dataclass
class CodeLink:
    code: str
    url: str  # https://pay.example.com/k/7KQ2M-9XDAB (the QR code)
    typed: str  # pay.example.com/k/7KQ2M-9XDAB (printed)
    link: AccessLink


def _taken(hashes: list[str]) -> bool:
    return db.session.scalar(select(AccessLink.id).where(AccessLink.code_hash.in_(hashes)).limit(1)) is not None


def issue_code_link(invoice: Invoice, *, ttl_days: int, actor: str, base_url: str,
                    now: datetime | None = None) -> CodeLink:
    """A new link to the bill, opened by a short code (for a letter). Adds and flushes; refused with
    InvalidData for a closed bill. The link row's own key is random and never given out."""
    if invoice.is_closed:
        raise InvalidData({"invoice": f"the invoice is {invoice.status}"})
    if not isinstance(ttl_days, int) or isinstance(ttl_days, bool) or not 1 <= ttl_days <= 365:
        raise InvalidData({"ttl_days": "a whole number of days from 1 to 365"})
    now = now or utcnow()
    ttl_days = min(ttl_days, current_app.config["LINK_MAX_AGE_DAYS"])
    link = AccessLink(key_hash=hash_key(secrets.token_urlsafe(16)), invoice_id=invoice.id, purpose="bill",
                      channel="letter", created_at=now, expires_at=now + timedelta(days=ttl_days))
    db.session.add(link)
    db.session.flush()
    keys = get_code_keys()
    for attempt in range(ATTEMPTS):
        code = keys.code(link.id, attempt)
        if not _taken(keys.hashes(code)):
            break
    else:  # pragma: no cover - eight clashes in a row with live codes: 2^-400
        raise RuntimeError("no free short code")
    link.code_hash = keys.hash(code)
    db.session.flush()
    record_event(invoice, "link_issued", actor, link_id=link.id, channel="letter", short_code=True,
                 expires_at=link.expires_at.isoformat())
    url = code_url(invoice.creditor, code, base_url)
    return CodeLink(code, url, typed_address(url), link)


def code_of(link: AccessLink) -> str | None:
    """The code a link was issued with (derived again: never stored), or None for a link without one."""
    if not link.code_hash:
        return None
    keys = get_code_keys()
    for key in range(len(keys)):
        for attempt in range(ATTEMPTS):
            code = keys.code(link.id, attempt, key)
            if hmac.compare_digest(keys.hash(code, key), link.code_hash):
                return code
    return None  # its key is no longer listed


def code_link(link: AccessLink, base_url: str) -> CodeLink | None:
    """The link's code and addresses again (to print a letter again exactly), or None."""
    code = code_of(link)
    if code is None:
        return None
    url = code_url(link.invoice.creditor, code, base_url)
    return CodeLink(code, url, typed_address(url), link)


def resolve_code(raw: str, *, now: datetime | None = None) -> Resolution:
    """What a typed code leads to, as `links.services.resolve_token` answers for a token: granted only
    for a live, unrevoked link of an open bill; the creditor named when the code was genuine."""
    code = normalise(raw)
    if code is None:
        return Resolution(ok=False)
    row = db.session.execute(resolution_select().where(
        AccessLink.code_hash.in_(get_code_keys().hashes(code)), AccessLink.purpose == "bill")).first()
    return resolution_of(row, now=now)


def revoke_link(link: AccessLink, *, actor: str, reason: str, now: datetime | None = None) -> bool:
    """Revoke one link (a letter printed again replaces the earlier print's): every grant to the bill
    ends at its next request, as after `links.services.revoke_links`. False when it was revoked before."""
    if link.revoked_at is not None:
        return False
    link.revoked_at = now or utcnow()
    end_grants(link.invoice)
    record_event(link.invoice, "link_revoked", actor, link_id=link.id, channel=link.channel, reason=reason)
    db.session.flush()
    return True
