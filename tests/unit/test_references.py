import pytest

from app.creditors.references import (
    ReferenceError,
    format_reference,
    is_valid_reference,
    kid_mod11_check_digit,
    make_reference,
    reference_base,
)


@pytest.mark.parametrize(
    ("base", "expected"),
    [("1234567", "12345674"), ("2345676", "23456767"), ("100000", "1000009")],
)
def test_kid_mod10(base, expected):
    assert make_reference("kid_mod10", base) == expected
    assert is_valid_reference("kid_mod10", expected)


def test_kid_mod11_known_value():
    # Digits from the right 7,6,5,4,3,2,1 times weights 2,3,4,5,6,7,2:
    # 14+18+20+20+18+14+2 = 106; 106 % 11 = 7; 11 - 7 = 4.
    assert kid_mod11_check_digit("1234567") == "4"
    assert make_reference("kid_mod11", "1234567") == "12345674"
    assert is_valid_reference("kid_mod11", "12345674")
    assert not is_valid_reference("kid_mod11", "12345675")


def test_kid_mod11_remainder_cases():
    # a base whose weighted sum is a multiple of 11 gets 0
    assert kid_mod11_check_digit("0") == "0"
    # find a base that gives check value 10 and expect '-'
    def check_value(n: int) -> int:  # MOD11: weights 2..7 from the right
        return 11 - sum(int(d) * (2 + i % 6) for i, d in enumerate(reversed(str(n)))) % 11

    base = next(str(n) for n in range(1, 1000) if check_value(n) == 10)
    assert kid_mod11_check_digit(base) == "-"
    assert is_valid_reference("kid_mod11", base + "-")


def test_rf_reference_matches_iso11649_examples():
    # ISO 11649 example: RF18 5390 0754 7034
    assert make_reference("rf", "539007547034") == "RF18539007547034"
    assert is_valid_reference("rf", "RF18539007547034")
    assert not is_valid_reference("rf", "RF19539007547034")
    assert format_reference("rf", "RF18539007547034") == "RF18 5390 0754 7034"


def test_rf_accepts_letters_and_strips_separators():
    ref = make_reference("rf", "inv-2026/001")
    assert ref.startswith("RF") and ref.endswith("INV2026001")
    assert is_valid_reference("rf", ref)


@pytest.mark.parametrize(("scheme", "base"), [
    ("kid_mod10", "12a"), ("kid_mod10", ""), ("kid_mod10", "1" * 25), ("rf", "x" * 22), ("rf", "--"), ("xyz", "1"),
])
def test_bad_bases_are_refused(scheme, base):
    with pytest.raises(ReferenceError):
        make_reference(scheme, base)


def test_reference_base_uses_numeric_invoice_numbers_for_kid_and_id_otherwise():
    assert reference_base("20261001", 7, "kid_mod10") == "20261001"
    assert reference_base("INV-1", 7, "kid_mod10") == "00000007"
    assert reference_base("INV-1", 7, "rf") == "INV1"


@pytest.mark.parametrize("bad", ["", "1", "abc", None, "RF", "1234567a"])
def test_invalid_references(bad):
    assert not is_valid_reference("kid_mod10", bad)
