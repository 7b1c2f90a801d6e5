"""A provider's decline code or refusal reason in the customer's words; the receipt number."""

from __future__ import annotations

import re

import pytest
from flask_babel import force_locale

from app.payments.declines import REASONS, decline_kind, decline_words
from app.payments.receipts import receipt_number


@pytest.mark.parametrize(("reason", "kind"), [
    ("insufficient_funds", "funds"), ("Not enough balance", "funds"), ("NOT ENOUGH BALANCE", "funds"),
    ("expired_card", "expired"), ("Expired Card", "expired"),
    ("incorrect_cvc", "details"), ("CVC Declined", "details"),
    ("authentication_required", "authentication"), ("3D Not Authenticated", "authentication"),
    ("card_velocity_exceeded", "limit"), ("Withdrawal amount exceeded", "limit"),
    ("currency_not_supported", "not_supported"), ("Transaction Not Permitted", "not_supported"),
    ("processing_error", "try_later"), ("Issuer Unavailable", "try_later"),
    # never told to the customer as such: lost, stolen, fraud; and what we do not know
    ("stolen_card", "declined"), ("FRAUD", "declined"), ("card declined", "declined"), ("Refused", "declined"),
    ("brand_new_code", "declined"), ("", "declined"), (None, "declined"),
])
def test_reasons_map_to_kinds(reason, kind):
    assert decline_kind(reason) == kind


def test_every_kind_has_its_own_words_in_every_language(app):
    kinds = sorted(set(REASONS.values()) | {"declined"})
    sample = {kind: next((r for r, k in REASONS.items() if k == kind), "unknown") for kind in kinds}
    with app.test_request_context():
        english = {kind: decline_words(reason) for kind, reason in sample.items()}
        assert len(set(english.values())) == len(kinds)
        for lang in ("nb", "de"):
            with force_locale(lang):
                words = {kind: decline_words(reason) for kind, reason in sample.items()}
            assert len(set(words.values())) == len(kinds)
            assert not set(words.values()) & set(english.values()), lang  # translated, every one


def test_receipt_numbers_are_short_grouped_and_unambiguous():
    numbers = {receipt_number(f"ref-{i}") for i in range(2000)}
    assert len(numbers) == 2000
    for number in numbers:
        assert re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{5}-[0-9A-HJKMNP-TV-Z]{5}", number)
    assert receipt_number("abc") == receipt_number("abc") != receipt_number("abd")
