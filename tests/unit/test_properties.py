"""Properties (hypothesis), each over a bounded number of generated examples, derandomized: money parsed,
formatted and rounded without losing a minor unit; KID (MOD10, MOD11) and RF references that validate
and catch any single changed digit; and the invoice state machine, driven by random sequences of the
billing services' actions, never in a state its rules forbid, its amounts always adding up."""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from sqlalchemy import select

from app.billing.models import InvoiceEvent, InvoiceStatus
from app.billing.schemas import line_amounts
from app.billing.services import (
    PAUSED,
    TRANSITIONS,
    cancel_invoice,
    hold,
    payable_status,
    record_payment,
    release,
    transition,
)
from app.creditors.references import is_valid_reference, make_reference, rf_check_digits
from app.errors import IllegalTransition, InvalidData
from app.extensions import db
from app.money import exponent, format_money, from_decimal, parse_amount, to_decimal
from tests.factories import make_creditor, make_invoice

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


# --- the invoice state machine --------------------------------------------------------------------------


class InvoiceLife(RuleBasedStateMachine):
    """One invoice, and whatever the billing services may be asked to do to it, in any order. An action
    the rules refuse raises IllegalTransition (or InvalidData) and changes nothing."""

    app = None  # set by the test

    def __init__(self):
        super().__init__()
        self.creditor = make_creditor()
        self.invoice = make_invoice(self.creditor, lines=2)
        self.paid = 0

    def _attempt(self, action) -> bool:
        before = (self.invoice.status, self.invoice.amount_paid, self._events())
        try:
            action()
        except (IllegalTransition, InvalidData):
            assert (self.invoice.status, self.invoice.amount_paid, self._events()) == before
            return False
        return True

    def _events(self) -> int:
        db.session.flush()
        return len(db.session.scalars(select(InvoiceEvent.id).where(InvoiceEvent.invoice_id == self.invoice.id))
                   .all())

    @rule(share=st.integers(1, 100))
    def pay(self, share):
        amount = max(1, self.invoice.total * share // 100)
        if self._attempt(lambda: record_payment(self.invoice, amount, actor="test", paid_on=self.invoice.issue_date,
                                                method="card")):
            self.paid += amount

    @rule(status=st.sampled_from([InvoiceStatus.DISPUTED, InvoiceStatus.IN_COLLECTION, InvoiceStatus.WRITTEN_OFF]))
    def move(self, status):
        self._attempt(lambda: transition(self.invoice, status, actor="test"))

    @rule()
    def cancel(self):
        self._attempt(lambda: cancel_invoice(self.invoice, actor="test"))

    @rule()
    def hold(self):
        self._attempt(lambda: hold(self.invoice, until=None, actor="test", reason="test"))

    @precondition(lambda self: self.invoice.status in PAUSED)
    @rule()
    def release(self):
        assert self._attempt(lambda: release(self.invoice, actor="test"))

    @invariant()
    def the_status_is_one_the_rules_allow(self):
        invoice = self.invoice
        assert invoice.status in InvoiceStatus.values()
        if invoice.status in (InvoiceStatus.OPEN, InvoiceStatus.PARTIALLY_PAID, InvoiceStatus.PAID):
            assert invoice.status == payable_status(invoice)
        if invoice.status == InvoiceStatus.CANCELLED:
            assert invoice.amount_paid == 0
        if invoice.balance <= 0:
            closed_or_paid = (InvoiceStatus.PAID, InvoiceStatus.WRITTEN_OFF, InvoiceStatus.CANCELLED)
            assert invoice.status in closed_or_paid, invoice.status

    @invariant()
    def the_amounts_add_up(self):
        invoice = self.invoice
        assert invoice.amount_paid == self.paid >= 0
        assert invoice.balance == invoice.total - invoice.amount_paid
        assert invoice.total == sum(line.gross for line in invoice.lines)
        events = db.session.scalars(select(InvoiceEvent).where(InvoiceEvent.invoice_id == invoice.id)
                                    .order_by(InvoiceEvent.id)).all()
        assert sum(e.data["amount"] for e in events if e.kind == "payment_recorded") == invoice.amount_paid
        status = InvoiceStatus.OPEN
        for event in (e for e in events if e.kind == "status_changed"):
            assert event.data["from"] == status and event.data["to"] in TRANSITIONS[status], event.data
            status = event.data["to"]
        assert status == invoice.status


def test_no_sequence_of_actions_breaks_the_invoice_state_machine(app, session):
    with app.test_request_context():
        InvoiceLife.TestCase.settings = settings(max_examples=40, stateful_step_count=12, derandomize=True,
                                                 database=None, deadline=None,
                                                 suppress_health_check=list(HealthCheck))
        InvoiceLife.TestCase().runTest()
