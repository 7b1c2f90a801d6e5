"""Structured payment references: Norwegian KID (MOD10 or MOD11) and ISO 11649 RF."""

from __future__ import annotations

import re

from stdnum import iso11649, luhn

KID_MAX_LENGTH = 25
RF_MAX_BODY = 21


class ReferenceError(ValueError):
    """A reference or its base does not fit the scheme."""


def kid_mod10_check_digit(base: str) -> str:
    return luhn.calc_check_digit(base)


def kid_mod11_check_digit(base: str) -> str:
    """Weights 2..7 from the right; remainder 0 gives 0, a check value of 10 gives '-' (Nets)."""
    total = sum(int(d) * (2 + i % 6) for i, d in enumerate(reversed(base)))
    check = 11 - total % 11
    if check == 11:
        return "0"
    if check == 10:
        return "-"
    return str(check)


def rf_check_digits(body: str) -> str:
    numeric = "".join(str(int(c, 36)) for c in body + "RF00")
    return f"{98 - int(numeric) % 97:02d}"


def make_reference(scheme: str, base: str) -> str:
    """Append check digits to `base` following `scheme`."""
    if scheme in ("kid_mod10", "kid_mod11"):
        if not base.isdigit() or not 1 <= len(base) < KID_MAX_LENGTH:
            raise ReferenceError("a KID base is 1 to 24 digits")
        check = kid_mod10_check_digit(base) if scheme == "kid_mod10" else kid_mod11_check_digit(base)
        return base + check
    if scheme == "rf":
        body = re.sub(r"[^0-9A-Za-z]", "", base).upper()
        if not 1 <= len(body) <= RF_MAX_BODY:
            raise ReferenceError("an RF reference body is 1 to 21 letters or digits")
        return f"RF{rf_check_digits(body)}{body}"
    raise ReferenceError(f"unknown reference scheme {scheme!r}")


def reference_base(invoice_number: str, fallback_id: int, scheme: str) -> str:
    """The invoice number's digits (KID) or characters (RF) when they fit, else the internal id."""
    if scheme.startswith("kid"):
        if invoice_number.isdigit() and len(invoice_number) < KID_MAX_LENGTH:
            return invoice_number
        return str(fallback_id).zfill(8)
    body = re.sub(r"[^0-9A-Za-z]", "", invoice_number)
    return body if 1 <= len(body) <= RF_MAX_BODY else str(fallback_id).zfill(8)


def is_valid_reference(scheme: str, reference: str) -> bool:
    if not isinstance(reference, str):
        return False
    if scheme in ("kid_mod10", "kid_mod11"):
        if not 2 <= len(reference) <= KID_MAX_LENGTH:
            return False
        base, check = reference[:-1], reference[-1]
        if not base.isdigit():
            return False
        expected = kid_mod10_check_digit(base) if scheme == "kid_mod10" else kid_mod11_check_digit(base)
        return check == expected
    if scheme == "rf":
        return iso11649.is_valid(reference)
    return False


def format_reference(scheme: str, reference: str) -> str:
    """Human-readable grouping: RF in blocks of four; KID as is (banks expect it unbroken)."""
    if scheme == "rf":
        return iso11649.format(reference)
    return reference
