"""Contact details as every feature checks them: e-mail addresses, phone numbers, web addresses; and
their masked forms for logs and the audit trail."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

#: An address with one @, something before it and a dot after it: what a form can check.
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
EMAIL_MAX = 254

#: "+", then 8 to 15 digits, the first not 0: a number an SMS can go to (E.164).
E164 = re.compile(r"\+[1-9][0-9]{7,14}")

#: What a customer may type as a number to call back: digits, a leading + optional.
PHONE = re.compile(r"^\+?[0-9]{6,15}$")


def clean_email(value: str | None) -> str | None:
    """The address without surrounding spaces; None when empty."""
    return (value or "").strip() or None


def clean_phone(value: str | None) -> str | None:
    """The number without spaces, dashes, dots and brackets: +47 (912) 34-567 -> +4791234567."""
    return re.sub(r"[\s\-().]", "", value or "") or None


def is_email(value: str | None) -> bool:
    if not value:
        return False
    return len(value) <= EMAIL_MAX and EMAIL.match(value) is not None


def is_e164(value: str | None) -> bool:
    if not value:
        return False
    return E164.fullmatch(value) is not None


def web_address_problem(url: str, *, allow_http: bool = False) -> str | None:
    """Why `url` cannot be a web address we link to or build on, or None: an absolute https:// URL
    with a host (http:// too where `allow_http`: outside production, for local tools), no spaces or
    control characters, no user name or password. `javascript:`, `data:` and every other scheme
    are refused, and so is a scheme-relative `//host`."""
    if not url or any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        return "a web address without spaces"
    try:
        parts = urlsplit(url)
        host, _port = parts.hostname, parts.port
    except ValueError:
        return "not a web address"
    schemes = ("https", "http") if allow_http else ("https",)
    if parts.scheme.lower() not in schemes:
        return "an http:// or https:// address" if allow_http else "an https:// address"
    if not host:
        return "a web address with a host, such as https://example.com"
    if parts.username is not None or parts.password is not None:
        return "a web address without a user name or password"
    return None


def safe_web_address(url: str | None) -> str:
    """`url` if it is an http(s) address to link to, else "": for addresses stored before they were
    checked, so that no page ever carries a `javascript:` link."""
    return url if url and web_address_problem(url, allow_http=True) is None else ""


def mask_email(address: str) -> str:
    """An address as the audit log keeps it: enough to tell which, not enough to write to it
    ("kari.nordmann@example.com" -> "ka***@example.com")."""
    local, _at, domain = address.strip().rpartition("@")
    if not _at:
        return "***"
    return f"{local[:2] if len(local) > 2 else local[:1]}***@{domain}"


def mask_phone(number: str) -> str:
    """A number as the audit log keeps it: its country code's digits and the last three
    ("+4791234567" -> "+47*****567")."""
    digits = clean_phone(number) or ""
    plus, digits = ("+", digits[1:]) if digits.startswith("+") else ("", digits)
    if len(digits) <= 5:
        return plus + "*" * len(digits)
    return f"{plus}{digits[:2]}{'*' * (len(digits) - 5)}{digits[-3:]}"
