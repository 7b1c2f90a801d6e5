"""The customer's own say over how reminders reach them: the bill page's "Your contact details" and the
unsubscribe link of reminder e-mails.

- What the page shows: `shown_email`, `shown_phone` (masked: someone holding only a link learns
  which address is on file, never the address itself).
- A new e-mail address or mobile number is used only after the 6-digit code sent to it is typed
  back: `request_change` (checked, rate-limited, the code stored as an HMAC with an expiry, sent by
  the outbox to the new address or number, never to the old) and `confirm_change` (attempts
  limited; on the right code the customer's contact point changes through
  `services.update_contact_points`, the channel is allowed again and its unsubscribe or stop
  cleared, and the bill's timeline records it). Nothing changes until then.
- `save_preferences`: the preferred channel and the consents (e-mail, SMS, electronic legal
  notices; letters are always allowed), at once: they change no address.
- `unsubscribe_token` / `read_unsubscribe_token` / `unsubscribe`: the signed address of a reminder
  e-mail's unsubscribe link (not the bill's link: its own salt; it opens no bill) and what it does,
  at once and idempotent. Legally required notices carry no such link (`messages`).
- `render_email`, `render_sms`: the outbox renderers of "contact.code" (the code and the creditor's
  name, no link), registered by the app factory.

Every function adds and flushes; the view commits. Every query is scoped to the bill's customer and
creditor.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from flask_babel import gettext as _
from itsdangerous import BadData, URLSafeTimedSerializer
from sqlalchemy import func, select, update

from app.billing.models import Customer, Invoice
from app.billing.services import record_event
from app.core.validation import clean_email, clean_phone, is_e164, is_email, mask_email
from app.crypto import SecretUnreadable, decrypt, encrypt
from app.dunning.engine import postal_address
from app.dunning.models import Channel, ContactChange, ContactKind
from app.dunning.services import update_contact_points
from app.errors import InvalidData
from app.extensions import db
from app.i18n import normalise_locale
from app.models import utcnow
from app.outbox.base import DeliveryError
from app.outbox.email import Notice, RenderedEmail, notice_email
from app.outbox.models import OutboxMessage
from app.outbox.services import enqueue

ACTOR = "customer"
KIND = "contact.code"  # the outbox kind of a confirmation code
CODE_DIGITS = 6
CODE_TTL = timedelta(minutes=15)
MAX_ATTEMPTS = 5  # wrong codes before the change is dead (a new code must be asked for)
RESEND_AFTER = timedelta(seconds=60)  # between two codes to one customer
CODES_PER_HOUR = 5  # codes a customer may have sent in an hour
CODES_PER_ADDRESS_PER_DAY = 5  # codes one address or number receives in a day, whoever asks

#: The customer's column of each kind, its consent, and the flag its unsubscribe or STOP sets.
FIELDS = {ContactKind.EMAIL: ("email", "email_allowed", "email_unsubscribed_at"),
          ContactKind.SMS: ("phone", "sms_allowed", "sms_stopped_at")}


# --- what the page shows ------------------------------------------------------------------------------


def shown_email(address: str | None) -> str | None:
    """An address as the page shows it: "k***@example.no" (the domain, and one or two letters)."""
    return mask_email(address) if address else None


def shown_phone(number: str | None) -> str | None:
    """A number as the page shows it: "+47 *** ** 567" (the country code's two digits and the last three)."""
    digits = (clean_phone(number) or "").lstrip("+")
    if len(digits) < 6:
        return "***" if number else None
    hidden = "*" * (len(digits) - 5)
    return f"+{digits[:2]} {hidden[:3]} {hidden[3:]} {digits[-3:]}".replace("  ", " ")


def shown(kind: str, value: str | None) -> str | None:
    return shown_email(value) if kind == ContactKind.EMAIL else shown_phone(value)


@dataclass(frozen=True)
class Details:
    """The contact details as the page shows them."""

    email: str | None
    phone: str | None
    has_address: bool
    preferred_channel: str | None
    email_allowed: bool  # allowed and not unsubscribed
    sms_allowed: bool  # allowed and not stopped
    electronic_notices_allowed: bool
    email_unsubscribed: bool
    sms_stopped: bool


def details_of(customer: Customer) -> Details:
    return Details(
        email=shown_email(customer.email), phone=shown_phone(customer.phone),
        has_address=postal_address(customer) is not None, preferred_channel=customer.preferred_channel,
        email_allowed=bool(customer.email_allowed and customer.email_unsubscribed_at is None),
        sms_allowed=bool(customer.sms_allowed and customer.sms_stopped_at is None),
        electronic_notices_allowed=bool(customer.electronic_notices_allowed),
        email_unsubscribed=customer.email_unsubscribed_at is not None, sms_stopped=customer.sms_stopped_at is not None)


# --- a new address or number, confirmed by a code ------------------------------------------------------------


def _code_hash(secret: str, *, customer_id: int, kind: str, value: str, code: str) -> str:
    """The code as stored: an HMAC keyed with the app's secret and bound to the customer and the new
    value (a leaked table gives no code; a code confirms nothing else)."""
    message = f"{customer_id}:{kind}:{value}:{code}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def clean_value(kind: str, raw: str | None) -> str:
    """The typed address or number in the form we store it, or InvalidData naming the field's problem
    ("invalid")."""
    if kind == ContactKind.EMAIL:
        value = clean_email(raw)
        if value is None or not is_email(value):
            raise InvalidData({"email": "invalid"})
        return value
    number = clean_phone(raw)
    if number is not None and number.startswith("00"):
        number = "+" + number[2:]
    if number is None or not is_e164(number):
        raise InvalidData({"phone": "invalid"})
    return number


def pending_change(customer: Customer, kind: str, now: datetime) -> ContactChange | None:
    """The customer's latest change of this kind still waiting for its code (not expired, attempts left)."""
    return db.session.scalar(
        select(ContactChange).where(
            ContactChange.customer_id == customer.id, ContactChange.creditor_id == customer.creditor_id,
            ContactChange.kind == kind, ContactChange.confirmed_at.is_(None), ContactChange.expires_at > now,
            ContactChange.attempts < MAX_ATTEMPTS)
        .order_by(ContactChange.id.desc()).limit(1))


def request_change(invoice: Invoice, kind: str, raw: str | None, *, now: datetime, secret: str,
                   locale: str | None = None) -> ContactChange:
    """Send a code to a new e-mail address or mobile number of the bill's customer. InvalidData, with
    nothing sent, for a value that is not an address or E.164 number ("invalid"), the one on file
    already ("same"), too soon after the last code ("wait"), or too many codes for the customer or the
    address ("too_many"). An earlier code of the same kind stops working."""
    field = FIELDS[ContactKind(kind)][0]
    value = clean_value(kind, raw)
    customer = invoice.customer
    current = getattr(customer, field)
    if current is not None and current.lower() == value.lower() \
            and getattr(customer, FIELDS[ContactKind(kind)][2]) is None:
        raise InvalidData({field: "same"})
    scope = (ContactChange.customer_id == customer.id, ContactChange.creditor_id == customer.creditor_id)
    last = db.session.scalar(select(func.max(ContactChange.created_at)).where(*scope))
    if last is not None and now - last < RESEND_AFTER:
        raise InvalidData({field: "wait"})
    sent_hour = db.session.scalar(select(func.count(ContactChange.id)).where(
        *scope, ContactChange.created_at > now - timedelta(hours=1))) or 0
    sent_to = db.session.scalar(select(func.count(ContactChange.id)).where(
        func.lower(ContactChange.value) == value.lower(), ContactChange.created_at > now - timedelta(days=1))) or 0
    if sent_hour >= CODES_PER_HOUR or sent_to >= CODES_PER_ADDRESS_PER_DAY:
        raise InvalidData({field: "too_many"})
    db.session.execute(update(ContactChange).where(
        *scope, ContactChange.kind == kind, ContactChange.confirmed_at.is_(None), ContactChange.expires_at > now)
        .values(expires_at=now).execution_options(synchronize_session=False))
    code = f"{secrets.randbelow(10 ** CODE_DIGITS):0{CODE_DIGITS}d}"
    change = ContactChange(creditor_id=customer.creditor_id, customer_id=customer.id, kind=kind, value=value,
                           code_hash=_code_hash(secret, customer_id=customer.id, kind=kind, value=value,
                                                code=code),
                           expires_at=now + CODE_TTL, attempts=0, created_at=now)
    db.session.add(change)
    db.session.flush()
    language = normalise_locale(locale) or normalise_locale(customer.preferred_locale) \
        or normalise_locale(invoice.creditor.default_locale) or "en"
    # The code travels encrypted in the payload (the renderer needs it; the table keeps only its HMAC),
    # and the renderer takes it out once the message is on its way.
    enqueue(kind, KIND, value, {"change_id": change.id, "code": encrypt(code)},
            idempotency_key=f"contact-code:{change.id}", creditor_id=customer.creditor_id, locale=language, now=now,
            livemode=invoice.livemode)
    record_event(invoice, "contact_change_requested", ACTOR, channel=kind, to=shown(kind, value))
    db.session.flush()
    return change


def confirm_change(invoice: Invoice, change_id: Any, code: str | None, *, now: datetime,
                   secret: str) -> ContactChange:
    """Confirm the bill's customer's change `change_id` with the code typed. InvalidData (the customer
    unchanged) for an unknown change or another customer's ("unknown"), one expired or superseded
    ("expired"), attempts used up ("attempts") or a wrong code ("wrong": the attempt is counted; the
    caller commits it). On the right code: the new address or number is the customer's, the channel
    allowed (a past unsubscribe or STOP cleared), the bill's timeline says so."""
    try:
        key = int(change_id)
    except (TypeError, ValueError):
        raise InvalidData({"code": "unknown"}) from None
    customer = invoice.customer
    change = db.session.scalar(select(ContactChange).where(
        ContactChange.id == key, ContactChange.customer_id == customer.id,
        ContactChange.creditor_id == invoice.creditor_id).with_for_update())
    if change is None or change.confirmed_at is not None:
        raise InvalidData({"code": "unknown"})
    if change.attempts >= MAX_ATTEMPTS:
        raise InvalidData({"code": "attempts"})
    if change.expires_at <= now:
        raise InvalidData({"code": "expired"})
    typed = "".join(ch for ch in (code or "") if not ch.isspace())
    expected = _code_hash(secret, customer_id=customer.id, kind=change.kind, value=change.value, code=typed)
    if not (typed.isdigit() and len(typed) == CODE_DIGITS and hmac.compare_digest(expected, change.code_hash)):
        change.attempts += 1
        db.session.flush()
        raise InvalidData({"code": "attempts" if change.attempts >= MAX_ATTEMPTS else "wrong"})
    field, consent, flag = FIELDS[ContactKind(change.kind)]
    before = getattr(customer, field)
    update_contact_points(customer, {field: change.value, consent: True})
    setattr(customer, flag, None)
    change.confirmed_at = now
    record_event(invoice, "contact_changed", ACTOR, channel=change.kind, to=shown(change.kind, change.value),
                 was=shown(change.kind, before))
    db.session.flush()
    return change


# --- the preferred channel and the consents ------------------------------------------------------------------

PREFERENCES = ("email_allowed", "sms_allowed", "electronic_notices_allowed")


def save_preferences(invoice: Invoice, *, preferred_channel: str | None, email_allowed: bool, sms_allowed: bool,
                     electronic_notices_allowed: bool, now: datetime) -> list[str]:
    """The customer's preferred channel and consents, at once (no address changes). InvalidData
    ("no_email", "no_phone", "no_address", "not_allowed") for a preferred channel that cannot reach
    them. Turning e-mail or SMS on again clears a past unsubscribe or STOP. The names of what
    changed (none: nothing recorded)."""
    customer = invoice.customer
    if preferred_channel not in (None, *Channel.values()):
        raise InvalidData({"preferred_channel": "invalid"})
    if preferred_channel == Channel.EMAIL and not is_email(customer.email):
        raise InvalidData({"preferred_channel": "no_email"})
    if preferred_channel == Channel.SMS and not is_e164(customer.phone):
        raise InvalidData({"preferred_channel": "no_phone"})
    if preferred_channel == Channel.LETTER and postal_address(customer) is None:
        raise InvalidData({"preferred_channel": "no_address"})
    if (preferred_channel == Channel.EMAIL and not email_allowed) or \
            (preferred_channel == Channel.SMS and not sms_allowed):
        raise InvalidData({"preferred_channel": "not_allowed"})
    was = details_of(customer)
    wanted = {"preferred_channel": preferred_channel, "email_allowed": email_allowed, "sms_allowed": sms_allowed,
              "electronic_notices_allowed": electronic_notices_allowed}
    changed = [name for name, value in wanted.items() if getattr(was, name) != value]
    if not changed:
        return []
    update_contact_points(customer, wanted)
    if email_allowed:
        customer.email_unsubscribed_at = None
    if sms_allowed:
        customer.sms_stopped_at = None
    record_event(invoice, "contact_preferences_changed", ACTOR, **{name: wanted[name] for name in changed})
    db.session.flush()
    return changed


# --- the unsubscribe link --------------------------------------------------------------------------------------

UNSUBSCRIBE_SALT = "portal.unsubscribe.v1"


def _serializer() -> URLSafeTimedSerializer:
    keys = list(reversed(current_app.config["LINK_SIGNING_KEYS"]))  # itsdangerous signs with the last
    return URLSafeTimedSerializer(keys, salt=UNSUBSCRIBE_SALT, signer_kwargs={"digest_method": hashlib.sha256})


def unsubscribe_token(customer_id: int, invoice_id: int, channel: str = Channel.EMAIL) -> str:
    """The signed part of an unsubscribe address: the customer, the bill it came with (its timeline),
    the channel. It opens no bill."""
    return _serializer().dumps([customer_id, invoice_id, channel[0]])


def read_unsubscribe_token(token: str) -> tuple[int, int, str] | None:
    """(customer id, invoice id, channel) of a genuine token younger than LINK_MAX_AGE_DAYS, else None."""
    if not token or len(token) > 200:
        return None
    try:
        data = _serializer().loads(token, max_age=current_app.config["LINK_MAX_AGE_DAYS"] * 86400)
    except (BadData, UnicodeError, ValueError):
        return None
    if not (isinstance(data, list) and len(data) == 3 and all(isinstance(n, int) for n in data[:2])
            and data[2] in ("e",)):
        return None
    return data[0], data[1], Channel.EMAIL


def unsubscribe_url(customer_id: int, invoice_id: int) -> str:
    base = current_app.config["PORTAL_BASE_URL"].rstrip("/")
    return f"{base}/unsubscribe/{unsubscribe_token(customer_id, invoice_id)}"


def token_customer(token: str) -> tuple[Customer, Invoice | None] | None:
    """The customer (and the bill, if it is still theirs) a genuine token names, else None."""
    found = read_unsubscribe_token(token)
    if found is None:
        return None
    customer = db.session.get(Customer, found[0])
    if customer is None:
        return None
    invoice = db.session.get(Invoice, found[1])
    if invoice is not None and (invoice.customer_id != customer.id or invoice.creditor_id != customer.creditor_id):
        invoice = None
    return customer, invoice


def unsubscribe(customer: Customer, invoice: Invoice | None, *, now: datetime, how: str) -> bool:
    """No more reminder e-mails to the customer, at once (legally required notices then go by letter).
    Idempotent: False when they had unsubscribed already (nothing changes)."""
    if customer.email_unsubscribed_at is not None:
        return False
    customer.email_unsubscribed_at = now
    customer.email_allowed = False
    if customer.preferred_channel == Channel.EMAIL:
        customer.preferred_channel = None
    if invoice is not None:
        record_event(invoice, "email_unsubscribed", ACTOR, how=how)
    db.session.flush()
    return True


# --- the code's message ---------------------------------------------------------------------------------------


def _change_and_code(message: OutboxMessage) -> tuple[ContactChange, str]:
    if message.kind != KIND:
        raise DeliveryError(f"no text for {message.kind!r}", permanent=True)
    payload = message.payload or {}
    change = db.session.get(ContactChange, payload.get("change_id") or 0)
    if change is None:
        raise DeliveryError("the contact change no longer exists", permanent=True)
    if change.confirmed_at is not None or change.expires_at <= utcnow():
        raise DeliveryError("the code expired or was replaced before it went out", permanent=True)
    try:
        code = decrypt(payload.get("code") or "")
    except SecretUnreadable:
        raise DeliveryError("the code cannot be read (sent already, or a key was dropped)", permanent=True) from None
    # Once on its way the code leaves the outbox (a failure rolls this back: a retry still has it).
    message.payload = {"change_id": change.id}
    return change, code


def render_email(message: OutboxMessage) -> RenderedEmail:
    change, code = _change_and_code(message)
    customer = db.session.get(Customer, change.customer_id)
    assert customer is not None  # kept by the foreign key
    creditor = customer.creditor
    minutes = int(CODE_TTL.total_seconds() // 60)
    notice = Notice(
        subject=_("Your code for %(creditor)s: %(code)s", creditor=creditor.name, code=code),
        heading=_("Your code is %(code)s", code=code),
        paragraphs=[_("Type this code on the bill page of %(creditor)s to confirm this e-mail address for its "
                      "messages to you. It works for %(minutes)d minutes.", creditor=creditor.name, minutes=minutes),
                    _("If you did not ask for it, ignore this e-mail: nothing changes.")],
        why=_("You receive this e-mail because someone typed this address as theirs on a bill page of "
              "%(creditor)s.", creditor=creditor.name),
        reply_to=creditor.support_email,
    )
    return notice_email(notice, creditor, locale=message.locale)


def render_sms(message: OutboxMessage) -> str:
    change, code = _change_and_code(message)
    customer = db.session.get(Customer, change.customer_id)
    assert customer is not None  # kept by the foreign key
    minutes = int(CODE_TTL.total_seconds() // 60)
    return _("%(code)s is your code to confirm this number for %(creditor)s. It works for %(minutes)d minutes. "
             "Did not ask for it? Ignore this message.", code=code, creditor=customer.creditor.name, minutes=minutes)
