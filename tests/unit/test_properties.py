"""Properties (hypothesis), each over a bounded number of generated examples, derandomized: money parsed,
formatted and rounded without losing a minor unit; KID (MOD10, MOD11) and RF references that validate
and catch any single changed digit. (The invoice state machine's property runs against the database:
tests/functional/test_invoice_state_machine.py.)"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from app.billing.schemas import line_amounts
from app.creditors.references import is_valid_reference, make_reference, rf_check_digits
from app.money import exponent, format_money, from_decimal, parse_amount, to_decimal

PROPERTIES = settings(max_examples=150, derandomize=True, database=None, deadline=None)
CURRENCIES = st.sampled_from(["NOK", "EUR", "SEK", "GBP", "JPY", "KWD", "CHF"])  # 2, 0 and 3 decimals
AMOUNTS = st.integers(min_value=0, max_value=10**14 - 1)  # up to 12 integer digits in any of them


# --- money -------------------------------------------------------------------------------------------


@PROPERTIES
@given(amount=AMOUNTS, currency=CURRENCIES, comma=st.booleans(), grouped=st.booleans())
def test_an_amount_written_as_a_person_would_parses_back_to_the_same_minor_units(amount, currency, comma, grouped):
    text = format(to_decimal(amount, currency), "f")
    whole, _, fraction = text.partition(".")
    assume(len(whole) <= 12)
    if grouped:  # "1 234 567", with the spaces Norwegian and French write (plain or non-breaking)
        whole = re.sub(r"(?<=\d)(?=(\d{3})+$)", "\u00a0", whole)
    written = whole + ((("," if comma else ".") + fraction) if fraction else "")
    assert parse_amount(written, currency) == amount


@PROPERTIES
@given(amount=AMOUNTS, currency=CURRENCIES, locale=st.sampled_from(["en", "nb", "de"]))
def test_formatting_shows_every_minor_unit_and_no_more(amount, currency, locale):
    shown = format_money(amount, currency, locale)
    digits = re.sub(r"\D", "", shown)
    assert int(digits) == amount
    decimals = exponent(currency)
    if decimals:  # the minor units are the last digits, after the locale's decimal sign
        assert re.search(rf"[.,]\d{{{decimals}}}(?!\d)", shown)


@PROPERTIES
@given(value=st.decimals(min_value=0, max_value=10**9, places=6, allow_nan=False, allow_infinity=False),
       currency=CURRENCIES)
def test_rounding_to_minor_units_is_half_up_and_never_off_by_more_than_half(value, currency):
    minor = from_decimal(value, currency)
    exact = value.scaleb(exponent(currency))
    assert abs(Decimal(minor) - exact) <= Decimal("0.5")
    if exact - exact.to_integral_value(rounding="ROUND_FLOOR") == Decimal("0.5"):
        assert minor == exact.to_integral_value(rounding=ROUND_HALF_UP)  # a tie goes up
    assert to_decimal(minor, currency) == Decimal(minor).scaleb(-exponent(currency))


@PROPERTIES
@given(amount=AMOUNTS, currency=st.sampled_from(["NOK", "EUR", "JPY"]), extra=st.integers(1, 9))
def test_more_decimals_than_the_currency_has_are_refused_not_rounded(amount, currency, extra):
    text = format(to_decimal(amount, currency), "f")
    assume(len(text.partition(".")[0]) <= 12 and exponent(currency) < 3)
    written = text + ("" if "." in text else ".") + "0" * (2 - exponent(currency)) + str(extra)
    with pytest.raises(ValueError, match="too many decimals"):
        parse_amount(written, currency)


@PROPERTIES
@given(quantity=st.decimals(min_value=0, max_value=100000, places=3, allow_nan=False, allow_infinity=False),
       unit_price=st.integers(0, 10**9), vat_rate=st.integers(0, 10000))
def test_a_line_adds_up_net_plus_vat_each_rounded_half_up(quantity, unit_price, vat_rate):
    net, vat, gross = line_amounts(quantity, unit_price, vat_rate)
    assert gross == net + vat and net >= 0 and vat >= 0
    assert abs(Decimal(net) - quantity * unit_price) <= Decimal("0.5")
    assert abs(Decimal(vat) - Decimal(net) * vat_rate / 10000) <= Decimal("0.5")
    assert vat <= net  # VAT rates are at most 100 %


# --- references ----------------------------------------------------------------------------------------

DIGITS = "0123456789"
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _changed(text: str, position: int, by: int, alphabet: str) -> str:
    """`text` with the character at `position` replaced by another one of the same alphabet."""
    old = alphabet.index(text[position])
    return text[:position] + alphabet[(old + by) % len(alphabet)] + text[position + 1:]


@PROPERTIES
@given(scheme=st.sampled_from(["kid_mod10", "kid_mod11"]), base=st.text(DIGITS, min_size=1, max_size=24),
       where=st.integers(min_value=0), by=st.integers(1, 9))
def test_a_kid_validates_and_any_single_changed_digit_is_caught(scheme, base, where, by):
    kid = make_reference(scheme, base)
    assert is_valid_reference(scheme, kid) and kid.startswith(base) and len(kid) == len(base) + 1
    position = where % len(kid)
    if kid[position] == "-":  # MOD11's check value 10: any digit there is wrong
        changed = kid[:position] + str(by)
    else:
        changed = _changed(kid, position, by, DIGITS)
    assert not is_valid_reference(scheme, changed), (kid, changed)


@PROPERTIES
@given(body=st.text(DIGITS + LETTERS, min_size=1, max_size=21), where=st.integers(min_value=0),
       by=st.integers(1, 25))
def test_an_rf_reference_validates_and_any_single_changed_character_is_caught(body, where, by):
    reference = make_reference("rf", body)
    assert reference == f"RF{rf_check_digits(body)}{body}" and is_valid_reference("rf", reference)
    position = 2 + where % (len(reference) - 2)  # a check digit or a character of the body
    alphabet = DIGITS if reference[position].isdigit() else LETTERS
    changed = _changed(reference, position, by if alphabet is LETTERS else by % 9 + 1, alphabet)
    assert not is_valid_reference("rf", changed), (reference, changed)
