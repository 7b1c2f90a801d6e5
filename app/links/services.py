"""Issue, resolve and revoke signed access links."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from blinker import signal
from flask import Flask, current_app
from sqlalchemy import CursorResult, Select, bindparam, func, select, update
from sqlalchemy.orm import aliased

from app.billing.models import Customer, Invoice, InvoiceStatus
from app.billing.services import OWING_SQL, record_event
from app.core.loading import linked
from app.core.validation import clean_phone, is_e164, is_email
from app.creditors.models import Creditor
from app.errors import InvalidData
from app.extensions import db
from app.links.models import CHANNELS, AccessLink
from app.links.signer import LinkSigner, hash_key
from app.models import utcnow
from app.outbox.models import OutboxMessage
from app.outbox.services import enqueue
from app.readpath import ReadQuery

#: A link opened for the first time (sender: the AccessLink; `at`): the dunning message that carried
#: it counts as opened (connected by the app factory).
link_opened = signal("link-opened")

if TYPE_CHECKING:
    from app.links.codes import CodeLink

MAX_TTL_DAYS = 365
NOTICE_KIND = "link.reissued"  # rendered by app.links.notices


def get_signer() -> LinkSigner:
    """The app's signer, built once per app from its configuration."""
    return signer_of(current_app)


def signer_of(app: Flask) -> LinkSigner:
    """`get_signer` for a given app, outside its context (the forged link's gate, `portal.gate`)."""
    signer = app.extensions.get("link_signer")
    if signer is None:
        cfg = app.config
        signer = LinkSigner(cfg["LINK_SIGNING_KEYS"], cfg["LINK_MAX_AGE_DAYS"] * 86400)
        app.extensions["link_signer"] = signer
    return signer


def link_url(creditor: Creditor, token: str, base_url: str) -> str:
    """Built from configuration (the creditor's portal domain or PORTAL_BASE_URL), never the Host header."""
    return f"{(creditor.portal_base_url or base_url).rstrip('/')}/l/{token}"


@dataclass
class IssuedLink:
    url: str
    token: str
    link: AccessLink


def issue_link(
    invoice: Invoice, *, channel: str, ttl_days: int, signer: LinkSigner, base_url: str, actor: str,
    purpose: str = "bill", now: datetime | None = None,
) -> IssuedLink:
    errors = {}
    if channel not in CHANNELS:
        errors["channel"] = f"one of {', '.join(CHANNELS)}"
    if not isinstance(ttl_days, int) or isinstance(ttl_days, bool) or not 1 <= ttl_days <= MAX_TTL_DAYS:
        errors["ttl_days"] = f"a whole number of days from 1 to {MAX_TTL_DAYS}"
    if invoice.is_closed:
        errors["invoice"] = f"the invoice is {invoice.status}"
    if errors:
        raise InvalidData(errors)
    now = now or utcnow()
    max_age_days = signer.max_age_seconds // 86400
    key = signer.new_key()
    link = AccessLink(
        key_hash=hash_key(key), invoice_id=invoice.id, purpose=purpose, channel=channel, created_at=now,
        expires_at=now + timedelta(days=min(ttl_days, max_age_days)),
    )
    db.session.add(link)
    db.session.flush()
    record_event(invoice, "link_issued", actor, link_id=link.id, channel=channel,
                 expires_at=link.expires_at.isoformat())
    token = signer.sign(key, purpose)
    return IssuedLink(url=link_url(invoice.creditor, token, base_url), token=token, link=link)


def end_grants(invoice: Invoice) -> None:
    """Every browser's grant to this bill ends at its next request: a grant carries the invoice's
    `link_revocations` it was given under (access.grants), and the bill's access read compares it.
    Raised in SQL, so two revocations at once both count."""
    invoice.link_revocations = Invoice.link_revocations + 1


def revoke_links(invoice: Invoice, *, actor: str, now: datetime | None = None) -> int:
    """Revoke every live link of the invoice; every grant a link of it gave ends too."""
    now = now or utcnow()
    result = cast(CursorResult[Any], db.session.execute(  # an UPDATE's result: it has a rowcount
        update(AccessLink)
        .where(AccessLink.invoice_id == invoice.id, AccessLink.revoked_at.is_(None))
        .values(revoked_at=now)
    ))
    end_grants(invoice)
    record_event(invoice, "links_revoked", actor, count=result.rowcount)
    db.session.flush()
    return result.rowcount


@dataclass(frozen=True)
class Resolution:
    """What a token leads to. The link's and invoice's fields are set only when access is
    granted; `creditor` is set whenever it is known, so the neutral page can show its contact."""

    ok: bool
    link_id: int | None = None
    channel: str | None = None
    expires_at: datetime | None = None
    last_opened_at: datetime | None = None
    invoice_id: int | None = None
    public_id: str | None = None
    creditor: Creditor | None = None
    link_revocations: int | None = None  # the invoice's, for the grant (access.grants)
    customer_id: int | None = None
    other_bills: int = 0  # the customer's other bills owed to the creditor: the grant covers them too
    # The invoice a genuine link names, whatever the link's state: set with `creditor` when access is
    # refused (expired, revoked, closed), for the neutral page's "send me a new link".
    named_invoice_id: int | None = None


def resolution_select() -> Select:
    """What resolving a link reads of it and its bill, in one statement: the caller adds which link."""
    other = aliased(Invoice)
    other_bills = select(func.count(other.id)).where(
        other.customer_id == Invoice.customer_id, other.id != Invoice.id, other.status.in_(OWING_SQL),
        other.total > other.amount_paid).scalar_subquery()
    return (
        select(
            AccessLink.id, AccessLink.channel, AccessLink.expires_at, AccessLink.last_opened_at,
            AccessLink.revoked_at, Invoice.id, Invoice.public_id, Invoice.status, Invoice.creditor_id,
            Invoice.link_revocations, Invoice.customer_id, other_bills,
        )
        .join(Invoice, AccessLink.invoice_id == Invoice.id)
    )


def _resolve_statement() -> Select:
    return resolution_select().where(AccessLink.key_hash == bindparam("key_hash"),
                                     AccessLink.purpose == bindparam("purpose"))


_RESOLVE = ReadQuery(_resolve_statement)


def resolve_token(token: str, *, signer: LinkSigner, purpose: str = "bill", now: datetime | None = None,
                  verified_key: str | None = None) -> Resolution:
    """Signature and age first (no database work for a forged token), then one statement for the row.
    `verified_key`: the token's key, when its signature and age were checked for this purpose already
    (`portal.gate`)."""
    key = verified_key if verified_key is not None else signer.unsign(token, purpose)
    if key is None:
        return Resolution(ok=False)
    return resolution_of(read_link(key, purpose), now=now)


def read_link(key: str, purpose: str = "bill") -> Any:
    """The row `resolution_select` reads for the link with this (verified) key, or None: one statement
    on the driver (`app.readpath`)."""
    return _RESOLVE.first(key_hash=hash_key(key), purpose=purpose)


def resolution_of(row: Any, *, now: datetime | None = None) -> Resolution:
    """The Resolution of a row `resolution_select` read (None: no such link)."""
    if row is None:
        return Resolution(ok=False)
    resolution = live_resolution(row, now=now)
    if resolution is None:
        return Resolution(ok=False, creditor=db.session.get(Creditor, row[8]), named_invoice_id=row[5])
    return resolution


def live_resolution(row: Any, *, now: datetime | None = None) -> Resolution | None:
    """The granting Resolution of a row `resolution_select` read, if the link may be used now (not
    revoked, not expired, its bill not closed); None otherwise (or no row). Reads nothing more."""
    if row is None:
        return None
    (link_id, channel, expires_at, last_opened_at, revoked_at, invoice_id, public_id, status, _creditor_id,
     link_revocations, customer_id, other_bills) = row
    now = now or utcnow()
    if revoked_at is not None or expires_at <= now or status in InvoiceStatus.CLOSED:
        return None
    return Resolution(
        ok=True, link_id=link_id, channel=channel, expires_at=expires_at, last_opened_at=last_opened_at,
        invoice_id=invoice_id, public_id=public_id, link_revocations=link_revocations, customer_id=customer_id,
        other_bills=int(other_bills or 0),
    )


def opened_recently(resolution: Resolution, *, interval_minutes: int, now: datetime) -> bool:
    """Whether the row read says the link was opened within `interval_minutes`: opening it again
    records nothing (`record_open`)."""
    last = resolution.last_opened_at
    return last is not None and now - last < timedelta(minutes=interval_minutes)


def record_open(resolution: Resolution, *, interval_minutes: int, now: datetime | None = None) -> bool:
    """Record that the link was opened, at most once per `interval_minutes` per link, so that
    reloads and mail-scanner prefetches do not flood the timeline. Returns True if recorded."""
    now = now or utcnow()
    interval = timedelta(minutes=interval_minutes)
    if opened_recently(resolution, interval_minutes=interval_minutes, now=now):
        return False  # decided on the row already read: a reopened link loads and writes nothing
    # The link with its bill and the bill's customer (the events of the opening carry both), in one statement.
    link = linked(db.session.execute(
        select(AccessLink, Invoice, Customer).join(Invoice, Invoice.id == AccessLink.invoice_id)
        .join(Customer, Customer.id == Invoice.customer_id).where(AccessLink.id == resolution.link_id)
    ).first(), "invoice", "customer")
    assert link is not None  # the link the customer has just opened
    if link.last_opened_at is not None and now - link.last_opened_at < interval:
        return False
    first = link.open_count == 0
    link.last_opened_at = now
    link.open_count += 1
    record_event(link.invoice, "link_opened", "customer", link_id=link.id, channel=link.channel)
    db.session.flush()
    if first:
        link_opened.send(link, at=now)
    return True


def record_step_up_failure(link: AccessLink, *, max_attempts: int) -> bool:
    """Count a failed step-up; returns True when the link is now locked (revoked: the grants of the
    invoice's links end with it, the one being answered included)."""
    link.step_up_failures += 1
    if link.step_up_failures >= max_attempts and link.revoked_at is None:
        link.revoked_at = utcnow()
        end_grants(link.invoice)
        record_event(link.invoice, "link_locked", "customer", link_id=link.id, reason="step_up_attempts")
    db.session.flush()
    return link.revoked_at is not None


REISSUE_CHANNELS = ("email", "sms", "letter")


def reissue(invoice: Invoice, channel: str, *, to: str | None, locale: str, key: str, actor: str,
            ttl_days: int, signer: LinkSigner, base_url: str, revoke: bool = True) -> CodeLink | None:
    """Revoke every live link of the invoice and send a new one by `channel`: by e-mail or SMS
    through the outbox (the link is issued when the message goes out, so the token never waits in
    the database), or, for a letter, issued now with a short code and returned to be printed (shown
    once, only its keyed hash stored). `key` (the form's one-time key) makes a double submit one message.
    `revoke=False` sends a new link and leaves the live ones (the customer asked for one: whoever asks
    cannot end the customer's links)."""
    errors = {}
    if channel not in REISSUE_CHANNELS:
        errors["channel"] = "choose"
    to = (to or "").strip() or None
    if channel == "email" and not is_email(to):
        errors["to"] = "email"
    if channel == "sms":
        to = clean_phone(to)
        if not is_e164(to):
            errors["to"] = "phone"
    if invoice.is_closed:
        errors["invoice"] = f"the invoice is {invoice.status}"
    if not key or len(key) > 64:
        errors["key"] = "missing"
    if errors:
        raise InvalidData(errors)
    idempotency_key = f"{NOTICE_KIND}:{key}"
    if channel != "letter" and db.session.scalar(
            select(OutboxMessage.id).where(OutboxMessage.idempotency_key == idempotency_key)):
        return None  # this submit was done already
    if revoke:
        revoke_links(invoice, actor=actor)
    if channel == "letter":  # typed from paper: a short code (links.codes), not a 73-character token
        from app.links.codes import issue_code_link  # codes builds on this module

        return issue_code_link(invoice, ttl_days=ttl_days, actor=actor, base_url=base_url)
    assert to is not None  # an e-mail address or a number, checked above
    enqueue(channel, NOTICE_KIND, to, {"invoice_id": invoice.id}, idempotency_key=idempotency_key,
            creditor_id=invoice.creditor_id, locale=locale, livemode=invoice.livemode)
    record_event(invoice, "link_sent", actor, channel=channel)
    db.session.flush()
    return None
