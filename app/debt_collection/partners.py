"""Collection partners: adding one (its endpoint checked against the allowlist), its signing
secrets (encrypted at rest, two live during a rotation), its API keys (only hashes kept), and
each creditor's policy of when its bills go to which partner.

Plain functions: they add and flush; the CLI commits."""

from __future__ import annotations

import base64
import re
import secrets
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import select

from app.core.validation import web_address_problem
from app.creditors.models import Creditor
from app.creditors.services import hash_api_key
from app.crypto import decrypt, encrypt
from app.debt_collection.models import Partner, PartnerApiKey, PartnerSecret, Policy
from app.errors import InvalidData
from app.extensions import db
from app.models import note_use, utcnow
from app.outbox.webhooks import EndpointRefused, EndpointRules, check_endpoint

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{1,39}$")
SECRET_BYTES = 32  # at least 24, as the issue asks; Standard Webhooks suggests 24 to 64
MIN_SECRET_BYTES = 24
API_KEY_PREFIX = "pk_partner_"


def new_signing_secret() -> str:
    """A Standard Webhooks secret: `whsec_` and the base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def check_secret(secret: str) -> None:
    """A secret given by hand (a partner's own) must be `whsec_` + base64 of 24 bytes or more."""
    body = secret.removeprefix("whsec_")
    try:
        raw = base64.b64decode(body, validate=True)
    except ValueError:
        raise InvalidData({"secret": "not base64 (whsec_…)"}) from None
    if len(raw) < MIN_SECRET_BYTES:
        raise InvalidData({"secret": f"at least {MIN_SECRET_BYTES} bytes"})


def endpoint_problem(url: str) -> str | None:
    """Why `url` cannot be a partner's endpoint under this instance's rules, or None."""
    try:
        check_endpoint(url, EndpointRules.from_config(current_app.config))
    except EndpointRefused as exc:
        return str(exc)
    return None


@dataclass
class NewPartner:
    partner: Partner
    signing_secret: str  # shown once, to give to the partner
    api_key: str  # shown once


def add_partner(slug: str, name: str, endpoint_url: str, *, case_page_url: str | None = None,
                phone: str | None = None, email: str | None = None, website: str | None = None,
                signing_secret: str | None = None) -> NewPartner:
    errors = {}
    slug = (slug or "").strip().lower()
    if not SLUG.match(slug):
        errors["slug"] = "2-40 lower-case letters, digits and dashes"
    elif db.session.scalar(select(Partner.id).where(Partner.slug == slug)) is not None:
        errors["slug"] = "taken"
    if not (name or "").strip():
        errors["name"] = "required"
    problem = endpoint_problem(endpoint_url)
    if problem:
        errors["endpoint"] = problem
    allow_http = current_app.config["PORTAL_ENV"] != "production"
    case_page_url, website = (case_page_url or "").strip() or None, (website or "").strip() or None
    if case_page_url and "{reference}" not in case_page_url:
        errors["case_page_url"] = "must contain {reference}"
    elif case_page_url:
        problem = web_address_problem(case_page_url.replace("{reference}", "REF"), allow_http=allow_http)
        if problem:
            errors["case_page_url"] = problem
    problem = web_address_problem(website, allow_http=allow_http) if website else None
    if problem:
        errors["website"] = problem
    if signing_secret:
        try:
            check_secret(signing_secret)
        except InvalidData as exc:
            errors.update(exc.errors)
    if errors:
        raise InvalidData(errors)
    partner = Partner(slug=slug, name=name.strip()[:200], endpoint_url=endpoint_url.strip(),
                      case_page_url=(case_page_url or None), phone=phone or None, email=email or None,
                      website=website or None, enabled=True)
    secret = signing_secret or new_signing_secret()
    partner.secrets.append(PartnerSecret(encrypted=encrypt(secret)))
    db.session.add(partner)
    db.session.flush()
    return NewPartner(partner, secret, issue_api_key(partner))


def live_secrets(partner: Partner) -> list[str]:
    """The secrets every delivery is signed with, newest first (two during a rotation)."""
    return [decrypt(s.encrypted) for s in sorted(partner.secrets, key=lambda s: s.id, reverse=True)
            if s.retired_at is None]


def rotate_secret(partner: Partner) -> str:
    """A new signing secret, live next to the current one until `finish_rotation`. Returns it."""
    secret = new_signing_secret()
    partner.secrets.append(PartnerSecret(encrypted=encrypt(secret)))
    db.session.flush()
    return secret


def finish_rotation(partner: Partner) -> int:
    """Retire every secret but the newest; returns how many were retired."""
    live = sorted((s for s in partner.secrets if s.retired_at is None), key=lambda s: s.id)
    for old in live[:-1]:
        old.retired_at = utcnow()
    db.session.flush()
    return max(len(live) - 1, 0)


def issue_api_key(partner: Partner) -> str:
    """A new key to the partner API (256 bits); only its SHA-256 is kept."""
    key = API_KEY_PREFIX + secrets.token_urlsafe(32)
    db.session.add(PartnerApiKey(partner_id=partner.id, key_hash=hash_api_key(key), prefix=key[:16]))
    db.session.flush()
    return key


def partner_for_api_key(key: str) -> Partner | None:
    if not key or not key.startswith(API_KEY_PREFIX) or len(key) > 100:
        return None
    found = db.session.scalar(select(PartnerApiKey).where(PartnerApiKey.key_hash == hash_api_key(key),
                                                          PartnerApiKey.revoked_at.is_(None)))
    if found is None or not found.partner.enabled:
        return None
    note_use(found)
    return found.partner


def set_enabled(partner: Partner, enabled: bool, reason: str | None = None) -> None:
    partner.enabled = enabled
    partner.disabled_reason = None if enabled else (reason or "disabled by an operator")[:300]
    db.session.flush()


def find_partner(slug: str) -> Partner | None:
    return db.session.scalar(select(Partner).where(Partner.slug == (slug or "").strip().lower()))


def set_policy(creditor: Creditor, partner: Partner, *, min_balance: int | None = None,
               days_past_due: int | None = None, days_after_final_reminder: int | None = None,
               keep_payments: bool | None = None, enabled: bool | None = None) -> Policy:
    """The creditor's hand-off policy (created with defaults on first use; given values change it)."""
    errors = {}
    for name, value in (("min_balance", min_balance), ("days_past_due", days_past_due),
                        ("days_after_final_reminder", days_after_final_reminder)):
        if value is not None and (not isinstance(value, int) or value < 0):
            errors[name] = "a whole number, zero or more"
    if errors:
        raise InvalidData(errors)
    policy = db.session.scalar(select(Policy).where(Policy.creditor_id == creditor.id))
    if policy is None:
        policy = Policy(creditor_id=creditor.id, partner_id=partner.id, enabled=True, min_balance=0, days_past_due=30,
                        days_after_final_reminder=14, keep_payments=False)
        db.session.add(policy)
    policy.partner_id = partner.id
    for name, value in (("min_balance", min_balance), ("days_past_due", days_past_due),
                        ("days_after_final_reminder", days_after_final_reminder), ("keep_payments", keep_payments),
                        ("enabled", enabled)):
        if value is not None:
            setattr(policy, name, value)
    db.session.flush()
    return policy


def policy_of(creditor_id: int) -> Policy | None:
    return db.session.scalar(select(Policy).where(Policy.creditor_id == creditor_id))
