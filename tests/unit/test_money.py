from decimal import Decimal

import pytest

from app.money import Money, exponent, format_money, format_rate, from_decimal, is_currency, to_decimal


def test_formatting_per_locale():
    assert format_money(123450, "NOK", "nb_NO") == "1\u00a0234,50\u00a0kr"
    assert format_money(123450, "EUR", "de_DE") == "1.234,50\u00a0€"
    assert format_money(123450, "EUR", "en_GB") == "€1,234.50"


def test_a_currency_code_is_spaced_from_the_digits_as_cldr_says():
    """An agent reading English saw "NOK0.00" and "NOK2,283.92": CLDR's currency spacing puts a no-break
    space where a symbol made of letters meets a digit, on either side; symbols such as € and US$ stay close."""
    assert format_money(0, "NOK", "en_GB") == "NOK\u00a00.00"
    assert format_money(-228392, "NOK", "en_GB") == "-NOK\u00a02,283.92"
    assert format_money(123450, "USD", "en_GB") == "US$1,234.50"
    assert format_money(123450, "SEK", "de_DE") == "1.234,50\u00a0SEK"
    assert format_money(123450, "NOK", "nb_NO").count("\u00a0") == 2


def test_minor_units_follow_the_currency():
    assert exponent("NOK") == 2 and exponent("JPY") == 0
    assert to_decimal(1234, "JPY") == Decimal(1234)
    assert to_decimal(1234, "EUR") == Decimal("12.34")
    assert from_decimal(Decimal("12.345"), "EUR") == 1235


def test_money_is_integer_and_single_currency():
    assert Money(100, "EUR") + Money(50, "EUR") == Money(150, "EUR")
    with pytest.raises(TypeError):
        Money(1.5, "EUR")
    with pytest.raises(ValueError):
        Money(1, "EUR") + Money(1, "NOK")
    with pytest.raises(ValueError):
        Money(1, "XYZ")
    assert not is_currency("XYZ") and is_currency("NOK")


def test_rates():
    assert format_rate(2500, "nb_NO") == "25\u00a0%"
    assert format_rate(1250, "en_GB") == "12.5\u00a0%"
