"""Organisation numbers of business customers, checked per country: the formats as data, each with its
source (docs/debt-collection.md, "Organisation numbers"). A number is stored in its normal form (no
spaces; Norway's nine digits without "NO" or "MVA"), so that the same company is written one way.

- Norway: the organisasjonsnummer of Enhetsregisteret, nine digits, the last a MOD11 check digit
  with weights 3 2 7 6 5 4 3 2 (Brønnøysundregistrene).
- Germany: no single company number exists; either the VAT id (USt-IdNr., "DE" and nine digits, the
  last a check digit by ISO 7064 MOD 11,10, as the Bundeszentralamt für Steuern checks it), or the
  commercial register's number (HRA, HRB, GnR, PR, VR and up to six digits, an optional letter suffix).
- Ireland: the Companies Registration Office number (up to six digits), or the VAT number ("IE",
  seven digits, one or two letters).
- Elsewhere: 2 to 20 letters, digits, spaces, dots, slashes and dashes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

NO_WEIGHTS = (3, 2, 7, 6, 5, 4, 3, 2)
MAX_LENGTH = 20


def no_check_digit(first_eight: str) -> int | None:
    """The MOD11 check digit of a Norwegian organisation number's first eight digits (None: none exists)."""
    remainder = sum(int(d) * w for d, w in zip(first_eight, NO_WEIGHTS, strict=True)) % 11
    check = (11 - remainder) % 11
    return None if check == 10 else check


def de_vat_check_digit(first_eight: str) -> int:
    """ISO 7064 MOD 11,10: the check digit of a German VAT id's eight digits."""
    product = 10
    for digit in first_eight:
        total = (int(digit) + product) % 10 or 10
        product = (2 * total) % 11
    return (11 - product) % 10


def _norway(value: str) -> str | None:
    digits = re.sub(r"\s", "", value.upper()).removeprefix("NO").removesuffix("MVA")
    if not re.fullmatch(r"[89][0-9]{8}", digits):
        return None
    return digits if no_check_digit(digits[:8]) == int(digits[8]) else None


def _germany(value: str) -> str | None:
    compact = re.sub(r"\s", "", value.upper())
    if re.fullmatch(r"DE[0-9]{9}", compact):
        return compact if de_vat_check_digit(compact[2:10]) == int(compact[10]) else None
    register = re.fullmatch(r"(HRA|HRB|GNR|PR|VR)([0-9]{1,6})([A-Z]{0,2})", compact)
    if register is None:
        return None
    kind = {"GNR": "GnR"}.get(register[1], register[1])
    return f"{kind} {register[2]}" + (f" {register[3]}" if register[3] else "")


def _ireland(value: str) -> str | None:
    compact = re.sub(r"\s", "", value.upper())
    return compact if re.fullmatch(r"[0-9]{1,6}|IE[0-9]{7}[A-W][A-IW]?", compact) else None


def _elsewhere(value: str) -> str | None:
    compact = re.sub(r"\s+", " ", value.strip().upper())
    return compact if re.fullmatch(r"[A-Z0-9][A-Z0-9 ./-]{1,19}", compact) else None


@dataclass(frozen=True)
class Format:
    normalise: Callable[[str], str | None]
    says: str  # what a valid number looks like, for an error message


FORMATS: dict[str, Format] = {
    "NO": Format(_norway, "nine digits with a valid check digit (Enhetsregisteret's organisasjonsnummer)"),
    "DE": Format(_germany, "a VAT id (DE and nine digits) or a commercial register number such as HRB 12345"),
    "IE": Format(_ireland, "a CRO number (up to six digits) or a VAT number (IE1234567T)"),
}
ELSEWHERE = Format(_elsewhere, "2 to 20 letters, digits, spaces, dots, slashes or dashes")


def org_number(country: str | None, value: str) -> str:
    """The organisation number in its normal form for `country` (ISO 3166 alpha-2), or ValueError
    saying what a valid one looks like."""
    rule = FORMATS.get((country or "").upper(), ELSEWHERE)
    found = rule.normalise(value) if len(value) <= 3 * MAX_LENGTH else None
    if found is None or len(found) > MAX_LENGTH:
        raise ValueError(f"not an organisation number of {country or 'its country'}: {rule.says}")
    return found


# --- VAT ids ------------------------------------------------------------------------------------------
# A VAT id is checked by its own country prefix (the customer's or creditor's country when it has none),
# with python-stdnum's rules: the EU's VIES formats and check digits per member state (stdnum.eu.vat;
# Greece writes EL), Norway's organisasjonsnummer with "MVA" (merverdiavgiftsloven § 14-1,
# Merverdiavgiftsregisteret; stdnum.no.mva), Switzerland's UID with MWST/TVA/IVA (stdnum.ch.vat), the UK
# (stdnum.gb.vat). Elsewhere: two letters and 2 to 13 letters or digits. Stored compact: NO923609016MVA,
# DE136695976. The sources: docs/invoice-law.md.

VAT_ID_SAYS = ("a VAT id with its country prefix and valid check digits (DE136695976, NO923609016MVA, "
               "IE6388047V)")


def _vat_country(compact: str, country: str | None) -> tuple[str, str]:
    """(country, the id with its prefix) for a compacted id: its own prefix, else `country`'s."""
    prefix = compact[:2]
    if re.fullmatch(r"[A-Z]{2}", prefix):
        return ("GR" if prefix == "EL" else prefix), compact
    own = (country or "").upper()
    return own, ("EL" if own == "GR" else own) + compact


def vat_id(country: str | None, value: str) -> str:
    """A VAT id in its normal form (compact, with its prefix), or ValueError saying what one looks like."""
    from stdnum import exceptions as stdnum_errors
    from stdnum.ch import vat as ch_vat
    from stdnum.eu import vat as eu_vat
    from stdnum.gb import vat as gb_vat
    from stdnum.no import mva

    compact = re.sub(r"[\s.\-]", "", value.upper())
    if not compact or len(compact) > MAX_LENGTH:
        raise ValueError(f"not a VAT id: {VAT_ID_SAYS}")
    where, full = _vat_country(compact, country)
    try:
        if where == "NO":
            digits = full.removeprefix("NO").removesuffix("MVA")
            found = "NO" + mva.validate(f"NO{digits}MVA").removeprefix("NO").removesuffix("MVA") + "MVA"
        elif where == "CH":
            found = ch_vat.validate(full)
        elif where == "GB":
            found = "GB" + gb_vat.validate(full).removeprefix("GB")
        elif where.lower() in eu_vat.MEMBER_STATES:
            found = eu_vat.validate(full)
        elif re.fullmatch(r"[A-Z]{2}[A-Z0-9]{2,13}", full):
            found = full
        else:
            raise ValueError
    except (stdnum_errors.ValidationError, ValueError):
        raise ValueError(f"not a VAT id of {where or 'its country'}: {VAT_ID_SAYS}") from None
    if len(found) > MAX_LENGTH:
        raise ValueError(f"not a VAT id: {VAT_ID_SAYS}")
    return str(found)
