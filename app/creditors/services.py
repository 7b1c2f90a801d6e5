"""Creating and updating creditors, their brand and their API keys."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from flask import current_app, has_app_context
from sqlalchemy import select
from stdnum import bic as stdnum_bic
from stdnum import iban as stdnum_iban
from stdnum.no import kontonr

from app.core.hours import hours_text, parse_hours
from app.core.images import RASTER, raster_kind
from app.core.loading import linked
from app.core.orgnumbers import vat_id
from app.core.validation import E164, is_email, web_address_problem
from app.creditors.brand import contrast_ratio, ensure_contrast, parse_hex, to_hex
from app.creditors.models import REFERENCE_SCHEMES, STEP_UP_MODES, ApiKey, Creditor
from app.errors import InvalidData
from app.extensions import db
from app.i18n import SUPPORTED_LOCALES
from app.models import note_use, utcnow
from app.money import is_current_currency

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # no line breaks or other control characters in a one-line field
API_KEY_PREFIX = "pk_"
API_KEY_LABEL_MAX = 100
API_KEY_MODES = ("live", "test")
API_KEY_SHOWN = 16  # how much of a key is kept in clear (its prefix): pk_test_<slug…>
LOGO_MAX_BYTES = 200 * 1024
#: Germany's Steuernummer as the tax office writes it (21/815/08150, 2181508150, 93815/08152): digits with
#: single slashes or spaces between them.
TAX_NUMBER = re.compile(r"[0-9]+(?:[/ ][0-9]+)*")


@dataclass
class CreditorInput:
    slug: str
    name: str
    country: str
    default_locale: str
    currency: str
    legal_name: str | None = None
    brand_primary: str = "#1f4b99"
    brand_accent: str = "#0b6e4f"
    support_email: str | None = None
    support_phone: str | None = None
    support_hours: str | None = None
    callback_hours: str | None = None
    support_url: str | None = None
    org_number: str | None = None
    vat_id: str | None = None
    tax_number: str | None = None
    address: str | None = None
    iban: str | None = None
    bic: str | None = None
    bank_account_no: str | None = None
    reference_scheme: str = "rf"
    portal_base_url: str | None = None
    step_up_mode: str = "none"
    email_sender_name: str | None = None
    email_reply_to: str | None = None
    notes: list[str] = field(default_factory=list)


def _clean(value: str | None) -> str | None:
    value = value.strip() if isinstance(value, str) else value
    return value or None


def validate_creditor(data: CreditorInput) -> CreditorInput:
    """Check every field, collect every problem; adjust brand colours that fail WCAG AA."""
    errors: dict[str, str] = {}
    data.slug = (data.slug or "").strip().lower()
    if not SLUG.match(data.slug):
        errors["slug"] = "2-63 lower-case letters, digits or hyphens"
    if not _clean(data.name):
        errors["name"] = "required"
    data.country = (data.country or "").strip().upper()
    if not re.fullmatch(r"[A-Z]{2}", data.country):
        errors["country"] = "an ISO 3166 two-letter country code"
    if data.default_locale not in SUPPORTED_LOCALES:
        errors["default_locale"] = f"one of {', '.join(SUPPORTED_LOCALES)}"
    data.currency = (data.currency or "").strip().upper()
    if not is_current_currency(data.currency):
        errors["currency"] = "an ISO 4217 currency code"
    if data.reference_scheme not in REFERENCE_SCHEMES:
        errors["reference_scheme"] = f"one of {', '.join(REFERENCE_SCHEMES)}"
    if data.step_up_mode not in STEP_UP_MODES:
        errors["step_up_mode"] = f"one of {', '.join(STEP_UP_MODES)}"
    for name in ("legal_name", "support_hours", "support_url", "org_number", "address"):
        setattr(data, name, _clean(getattr(data, name)))
    data.vat_id = _clean(data.vat_id)
    if data.vat_id:
        try:
            data.vat_id = vat_id(data.country, data.vat_id)
        except ValueError as exc:
            errors["vat_id"] = str(exc)
    data.tax_number = _clean(data.tax_number)
    if data.tax_number and (len(data.tax_number) > 20 or not TAX_NUMBER.fullmatch(data.tax_number)):
        errors["tax_number"] = "digits with single spaces or slashes between them, at most 20 characters"
    data.callback_hours = _clean(data.callback_hours)
    if data.callback_hours:
        try:
            data.callback_hours = hours_text(parse_hours(data.callback_hours))
        except ValueError as exc:
            errors["callback_hours"] = str(exc)
    problem = web_address_problem(data.support_url) if data.support_url else None
    if problem:
        errors["support_url"] = problem
    data.support_email = _clean(data.support_email)
    if data.support_email and not is_email(data.support_email):
        errors["support_email"] = "not an e-mail address"
    data.email_reply_to = _clean(data.email_reply_to)
    if data.email_reply_to and not is_email(data.email_reply_to):
        errors["email_reply_to"] = "not an e-mail address"
    data.email_sender_name = _clean(data.email_sender_name)
    if data.email_sender_name and (len(data.email_sender_name) > 100 or CONTROL.search(data.email_sender_name)):
        errors["email_sender_name"] = "at most 100 characters on one line"
    for name, most in (("legal_name", 200), ("support_hours", 200), ("org_number", 32), ("address", 500)):
        value = getattr(data, name)
        if value and (len(value) > most or (name != "address" and CONTROL.search(value))):
            errors[name] = f"at most {most} characters" + ("" if name == "address" else " on one line")
    data.support_phone = _clean(data.support_phone)
    if data.support_phone and not E164.fullmatch(data.support_phone.replace(" ", "")):
        errors["support_phone"] = "an E.164 number such as +4722334455"
    data.iban = _clean(data.iban)
    if data.iban:
        if not stdnum_iban.is_valid(data.iban):
            errors["iban"] = "not a valid IBAN"
        else:
            data.iban = stdnum_iban.compact(data.iban)
    data.bic = _clean(data.bic)
    if data.bic:
        if not stdnum_bic.is_valid(data.bic):
            errors["bic"] = "not a valid BIC"
        else:
            data.bic = stdnum_bic.compact(data.bic)
    data.bank_account_no = _clean(data.bank_account_no)
    if data.bank_account_no:
        if not kontonr.is_valid(data.bank_account_no):
            errors["bank_account_no"] = "not a valid Norwegian account number"
        else:
            data.bank_account_no = kontonr.compact(data.bank_account_no)
    if data.reference_scheme.startswith("kid") and not data.bank_account_no:
        errors.setdefault("bank_account_no", "a KID reference needs a Norwegian account number")
    if data.reference_scheme == "rf" and not data.iban:
        errors.setdefault("iban", "an RF reference needs an IBAN")
    data.portal_base_url = _clean(data.portal_base_url)
    if data.portal_base_url:
        # http:// only in an app outside production (a development server); https:// otherwise
        allow_http = has_app_context() and current_app.config["PORTAL_ENV"] != "production"
        problem = web_address_problem(data.portal_base_url, allow_http=allow_http)
        parts = urlsplit(data.portal_base_url.rstrip("/"))
        if problem or parts.path or parts.query or parts.fragment or "?" in data.portal_base_url:
            errors["portal_base_url"] = (f"a scheme and host, such as https://pay.example.com"
                                         f"{'' if allow_http else ' (https:// in production)'}")
    for name in ("brand_primary", "brand_accent"):
        value = getattr(data, name)
        try:
            parse_hex(value)
        except ValueError:
            errors[name] = "a colour such as #1f4b99"
            continue
        normalised = to_hex(parse_hex(value))
        adjusted = ensure_contrast(normalised)
        if adjusted != normalised:
            data.notes.append(
                f"{name} {normalised} has contrast {contrast_ratio(normalised, '#ffffff'):.2f}:1 on white, "
                f"below WCAG AA 4.5:1; adjusted to {adjusted}"
            )
        setattr(data, name, adjusted)
    if errors:
        raise InvalidData(errors)
    return data


def create_creditor(data: CreditorInput) -> Creditor:
    data = validate_creditor(data)
    if db.session.scalar(select(Creditor.id).where(Creditor.slug == data.slug)) is not None:
        raise InvalidData({"slug": "already taken"})
    creditor = Creditor()
    _apply(creditor, data)
    db.session.add(creditor)
    db.session.flush()
    return creditor


def update_creditor(creditor: Creditor, data: CreditorInput) -> Creditor:
    data = validate_creditor(data)
    _apply(creditor, data)
    db.session.flush()
    return creditor


def _apply(creditor: Creditor, data: CreditorInput) -> None:
    for name in CreditorInput.__dataclass_fields__:
        if name != "notes":
            setattr(creditor, name, getattr(data, name))


def sniff_logo(content: bytes) -> str:
    """The logo's MIME type from its content (PNG, JPEG or SVG), or InvalidData: a PNG or JPEG must be
    one whole image as Pillow reads it; an SVG must be plain drawing (`svg_problem`)."""
    if len(content) > LOGO_MAX_BYTES:
        raise InvalidData({"logo": "at most 200 KB"})
    if not content:
        raise InvalidData({"logo": "a PNG, JPEG or SVG image"})
    if content.startswith(tuple(magic for magic, _mime, _fmt in RASTER)):
        mime = raster_kind(content)
        if mime is None:
            raise InvalidData({"logo": "a PNG, JPEG or SVG image"})
        return mime
    head = content[:512].lstrip().lower()
    if head.startswith(b"<svg") or (head.startswith(b"<?xml") and b"<svg" in content[:2048].lower()):
        problem = svg_problem(content)
        if problem:
            raise InvalidData({"logo": f"an SVG without scripts or outside references ({problem})"})
        return "image/svg+xml"
    raise InvalidData({"logo": "a PNG, JPEG or SVG image"})


#: SVG elements that run code, embed other documents or draw from elsewhere
SVG_REFUSED = {"script", "foreignobject", "iframe", "embed", "object", "handler", "listener", "animate", "set",
               "animatemotion", "animatetransform"}


def svg_problem(content: bytes) -> str | None:
    """Why an SVG is not a plain drawing (None: it is): a DOCTYPE or entities, a script, an event
    handler attribute, an element that embeds a document, or a reference outside the file (only `#id`
    and `data:image/png|jpeg` are allowed in href, and `url(#id)` in styles)."""
    from xml.etree.ElementTree import ParseError

    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import fromstring

    lowered = content.lower()
    if b"<!doctype" in lowered or b"<!entity" in lowered:
        return "a DOCTYPE or entity"
    try:
        root = fromstring(content, forbid_dtd=True)
    except (ParseError, DefusedXmlException):
        return "not well-formed XML"
    if root.tag.rpartition("}")[2].lower() != "svg":
        return "not an SVG document"
    for element in root.iter():
        tag = str(element.tag).rpartition("}")[2].lower()
        if tag in SVG_REFUSED:
            return f"a <{tag}> element"
        for name, value in element.attrib.items():
            local = name.rpartition("}")[2].lower()
            compact = re.sub(r"\s+", "", value).lower()
            if local.startswith("on"):
                return f"an {local} attribute"
            if local == "href" and not compact.startswith(("#", "data:image/png", "data:image/jpeg")):
                return "a reference outside the file"
            if "javascript:" in compact or ("url(" in compact and "url(#" not in compact):
                return "a reference outside the file"
        if tag == "style" and element.text and ("@import" in element.text.lower() or
                                                re.search(r"url\((?!\s*['\"]?#)", element.text, re.I)):
            return "a reference outside the file"
    return None


def set_logo(creditor: Creditor, content: bytes) -> None:
    creditor.logo_mime = sniff_logo(content)
    creditor.logo = content
    creditor.logo_version = hashlib.sha256(content).hexdigest()[:12]
    db.session.flush()


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_api_key(creditor: Creditor, label: str | None = None, *, mode: str = "live") -> str:
    """Create a key and return it in clear text: the only time it is ever shown. `mode` is "live" or
    "test" (a test key sees and makes only test data); the key says which: pk_live_… or pk_test_…."""
    if label is not None and len(label) > API_KEY_LABEL_MAX:
        raise InvalidData({"label": f"at most {API_KEY_LABEL_MAX} characters"})
    if mode not in API_KEY_MODES:
        raise InvalidData({"mode": "live or test"})
    secret = secrets.token_urlsafe(32)
    key = f"{API_KEY_PREFIX}{mode}_{creditor.slug[:8]}_{secret}"
    db.session.add(ApiKey(creditor_id=creditor.id, prefix=key[:API_KEY_SHOWN], key_hash=hash_api_key(key),
                          label=label, livemode=mode == "live"))
    db.session.flush()
    return key


def api_key_for(key: str) -> ApiKey | None:
    """The unrevoked key with this text (its creditor loaded), its last use now (to the minute); None for
    any other.
    Keys made before test mode (pk_<slug>_…, without a mode) are live keys and keep working."""
    if not key or not key.startswith(API_KEY_PREFIX) or len(key) > 200:
        return None
    api_key = linked(db.session.execute(  # its creditor read with it, and held by it
        select(ApiKey, Creditor)
        .join(Creditor, ApiKey.creditor_id == Creditor.id)
        .where(ApiKey.key_hash == hash_api_key(key), ApiKey.revoked_at.is_(None))
    ).first(), "creditor")
    if api_key is None:
        return None
    note_use(api_key)
    return api_key


def creditor_for_api_key(key: str) -> Creditor | None:
    found = api_key_for(key)
    return found.creditor if found is not None else None


def revoke_api_key(creditor: Creditor, key_id: int) -> ApiKey | None:
    """Revoke one of the creditor's keys (None if it has no such key; a revoked key stays revoked)."""
    key = db.session.scalar(select(ApiKey).where(ApiKey.id == key_id, ApiKey.creditor_id == creditor.id))
    if key is not None and key.revoked_at is None:
        key.revoked_at = utcnow()
        db.session.flush()
    return key


def revoke_api_keys(creditor: Creditor) -> int:
    now = utcnow()
    keys = [k for k in creditor.api_keys if k.revoked_at is None]
    for k in keys:
        k.revoked_at = now
    db.session.flush()
    return len(keys)


def portal_origins() -> list[str]:
    """Every creditor's own portal base URL (the hosts its links and forms are on, besides PORTAL_BASE_URL)."""
    return list(db.session.scalars(select(Creditor.portal_base_url).where(Creditor.portal_base_url.is_not(None))
                                   .distinct()))
