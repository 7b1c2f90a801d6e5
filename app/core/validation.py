"""Contact details as every feature checks them: e-mail addresses and phone numbers."""

from __future__ import annotations

import re

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
