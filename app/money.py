"""Money: integer minor units plus an ISO 4217 currency. Formatting goes through Babel only."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache

from babel import Locale
from babel.numbers import (
    format_currency,
    format_decimal,
    get_currency_precision,
    get_territory_currencies,
    list_currencies,
)


@lru_cache(maxsize=1)
def known_currencies() -> frozenset[str]:
    """Every ISO 4217 code Babel (CLDR) knows, withdrawn ones, funds, metals and test codes included."""
    return frozenset(list_currencies())


def is_currency(code: str) -> bool:
    """Any code Babel knows: for what others report (a bank file's entries)."""
    return isinstance(code, str) and code in known_currencies()


@lru_cache(maxsize=1)
def current_currencies() -> frozenset[str]:
    """The ISO 4217 codes of the currencies in use: legal tender in at least one territory today, by
    CLDR's data as Babel has it (about 155). Not withdrawn currencies (DEM, HRK), funds (CLF, BOV),
    metals (XAU), special drawing rights (XDR), nor the codes for testing and for no currency (XTS,
    XXX), which Babel also knows. Worked out once per process."""
    today = date.today()
    return frozenset(code for territory in Locale("en").territories
                     for code in get_territory_currencies(str(territory), start_date=today, tender=True))


def is_current_currency(code: str) -> bool:
    """A currency a bill can be in (see current_currencies): for invoices and creditors."""
    return isinstance(code, str) and code in current_currencies()


@lru_cache(maxsize=256)
def exponent(currency: str) -> int:
    """Number of minor-unit digits (2 for NOK and EUR, 0 for JPY)."""
    return get_currency_precision(currency)


def to_decimal(amount: int, currency: str) -> Decimal:
    return Decimal(amount).scaleb(-exponent(currency))


def from_decimal(value: Decimal, currency: str) -> int:
    """Major units (a Decimal) to minor units, rounding half up."""
    return int((value.scaleb(exponent(currency))).quantize(Decimal(1), rounding=ROUND_HALF_UP))


# CLDR's currency spacing (numbers/currencyFormats/currencySpacing, the same in every locale): where a
# currency symbol ending (or starting) with a letter meets a digit, a no-break space goes between them.
# Babel does not apply it, so English wrote "NOK2,283.92" where CLDR (and ICU) write "NOK 2,283.92".
_SPACING_BEFORE = re.compile(r"(?<=[^\W\d_])(?=\d)")
_SPACING_AFTER = re.compile(r"(?<=\d)(?=[^\W\d_])")


@lru_cache(maxsize=8192)
def format_money(amount: int, currency: str, locale: str) -> str:
    """'1 234,50 kr' in nb, '1.234,50 €' in de, '£1,234.50' or 'NOK 1,234.50' in en. Cached: the inputs
    are immutable."""
    formatted = format_currency(to_decimal(amount, currency), currency, locale=locale)
    return _SPACING_AFTER.sub("\u00a0", _SPACING_BEFORE.sub("\u00a0", formatted, count=1), count=1)


@lru_cache(maxsize=1024)
def format_quantity(quantity: Decimal, locale: str) -> str:
    return format_decimal(quantity.normalize() if quantity == quantity.to_integral() else quantity, locale=locale)


@lru_cache(maxsize=256)
def format_rate(basis_points: int, locale: str) -> str:
    """A VAT or interest rate given in basis points, as a percentage ('25 %', '7 %')."""
    return format_decimal(Decimal(basis_points) / 100, format="#,##0.##", locale=locale) + "\u00a0%"


def format_percent_1(percent: Decimal, locale: str) -> str:
    """A percentage with one decimal place, as an APR is shown ('12.7 %', '12,7 %')."""
    return format_decimal(percent, format="#,##0.0", locale=locale) + "\u00a0%"


AMOUNT_TYPED = re.compile(r"\d{1,12}([.,]\d{1,3})?")


def parse_amount(text: str | None, currency: str) -> int | None:
    """An amount typed by a person (`1 250,50`, `1250.50`, `1250`) in minor units; None when empty.
    Raises ValueError("not an amount" or "too many decimals") for anything else."""
    text = (text or "").replace("\u00a0", "").replace("\u202f", "").replace(" ", "")
    if not text:
        return None
    if not AMOUNT_TYPED.fullmatch(text):
        raise ValueError("not an amount")
    value = Decimal(text.replace(",", "."))
    minor = from_decimal(value, currency)
    if to_decimal(minor, currency) != value:
        raise ValueError("too many decimals")
    return minor


def round_half_up(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


@dataclass(frozen=True, slots=True)
class Money:
    amount: int
    currency: str

    def __post_init__(self) -> None:
        if not isinstance(self.amount, int) or isinstance(self.amount, bool):
            raise TypeError("Money amounts are integer minor units")
        if not is_currency(self.currency):
            raise ValueError(f"unknown currency {self.currency!r}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def _same(self, other: Money) -> None:
        if not isinstance(other, Money) or other.currency != self.currency:
            raise ValueError("cannot mix currencies")

    def format(self, locale: str) -> str:
        return format_money(self.amount, self.currency, locale)

    def decimal(self) -> Decimal:
        return to_decimal(self.amount, self.currency)
