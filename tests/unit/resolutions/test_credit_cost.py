"""The cost of an instalment plan (issue 16, customers 3): the total cost of credit and the APR by
the formula of Directive 2008/48/EC, Annex I; offers whose labels and totals match their schedule;
which bills plans fit (offer_rules)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from app.resolutions.credit_cost import annual_percentage_rate, credit_cost
from app.resolutions.instalments import plan_offer, plan_offers
from app.resolutions.offer_rules import PLAN_MIN_BALANCE, plan_min_balance, plans_fit
from tests.factories import make_invoice
from tests.unit.resolutions.conftest import TODAY

START = date(2026, 1, 1)


def test_one_repayment_after_a_year_is_its_simple_rate():
    assert annual_percentage_rate(100000, START, [(START + timedelta(days=365), 110000)]) == Decimal("10.0")


def test_a_repayment_after_a_year_and_a_half_is_compounded():
    # (1 + X) ** 1.5 = 1.2, X = 12.93 %
    assert annual_percentage_rate(100000, START, [(START + timedelta(days=547), 120000)]) == Decimal("12.9")


def test_monthly_instalments_discount_each_to_the_day_of_the_offer():
    schedule = [(START + timedelta(days=30 * k), 35000) for k in range(1, 4)]  # 1 050 for 1 000 over 3 months
    apr = annual_percentage_rate(100000, START, schedule)
    rate = float(apr) / 100
    present = sum(a * (1 + rate) ** (-(d - START).days / 365) for d, a in schedule)
    assert abs(present - 100000) < 100000 * 0.0005  # within the rounding to one decimal
    assert Decimal("34") < apr < Decimal("36")


def test_no_cost_is_zero_percent():
    assert annual_percentage_rate(9000, START, [(START + timedelta(days=30), 4500)] * 2) == Decimal("0.0")
    assert credit_cost(9000, START, [(START + timedelta(days=30), 4500)] * 2).cost == 0


def test_an_offer_with_a_remainder_says_so_and_its_total_is_its_schedule(creditor, invoice):
    creditor.plan_fee, creditor.plan_interest_bp = 0, 0
    invoice.total = invoice.subtotal = 18650  # 186,50: three instalments of 62,18 + 62,16 + 62,16
    invoice.vat_total = 0
    offer = plan_offer(invoice, 3, TODAY)
    assert [amount for _day, amount in offer.schedule] == [6218, 6216, 6216]
    assert (offer.first, offer.instalment, offer.even, offer.total) == (6218, 6216, False, 18650)
    assert offer.cost.cost == 0 and offer.cost.apr == Decimal("0.0")


def test_an_offer_shows_the_cost_of_credit_of_its_fee_and_interest(creditor, invoice):
    offer = plan_offer(invoice, 3, TODAY)  # fee 99,00, 12 % a year
    assert offer.total == sum(amount for _day, amount in offer.schedule) == offer.principal + offer.fee + offer.interest
    assert offer.cost.cost == offer.fee + offer.interest
    assert offer.cost.apr == annual_percentage_rate(offer.principal, TODAY, offer.schedule) > Decimal("12")


def test_plans_fit_neither_on_account_payments_nor_prepayments_nor_small_bills(creditor, invoice):
    assert plans_fit(invoice) and plan_offers(invoice, TODAY)
    for kind in ("on_account", "prepayment"):
        invoice.kind = kind
        assert not plans_fit(invoice) and plan_offers(invoice, TODAY) == []
    invoice.kind = "standard"
    creditor.plan_min_balance = 0  # the currency's: 1 000 kr
    assert plan_min_balance(creditor) == PLAN_MIN_BALANCE["NOK"] == 100000
    assert not plans_fit(invoice) and plan_offers(invoice, TODAY) == []  # 375,08 kr


@pytest.mark.parametrize(("currency", "least"), [("EUR", 10000), ("NOK", 100000), ("XAF", 10000)])
def test_the_least_balance_of_a_currency(creditor, currency, least):
    creditor.plan_min_balance = 0
    assert plan_min_balance(creditor, currency) == least


def test_an_on_account_payment_comes_through_the_api_and_offers_no_plan(creditor):
    invoice = make_invoice(creditor, lines=3, kind="on_account")
    assert invoice.kind == "on_account" and plan_offers(invoice, TODAY) == []
