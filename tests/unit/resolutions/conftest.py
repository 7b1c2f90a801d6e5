"""Fixtures for the resolution tests: an app context (services translate fee lines and render
e-mails), a Norwegian creditor with known rules, and one of its invoices."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from tests.factories import make_creditor, make_invoice

TODAY = date(2026, 11, 23)
TOTAL = 37508  # three lines: 100.01, 100.02 and 100.03, each + 25 % VAT rounded half up


@pytest.fixture
def ctx(app, session):
    with app.test_request_context():
        yield


@pytest.fixture
def creditor(ctx):
    creditor = make_creditor("NO")
    creditor.promise_max_days, creditor.grace_days = 14, 3
    creditor.deferral_max_days, creditor.deferral_max_count, creditor.deferral_fee = 14, 1, 5000
    creditor.plan_max_months, creditor.plan_min_instalment = 6, 10000
    creditor.plan_fee, creditor.plan_interest_bp = 9900, 1200
    return creditor


@pytest.fixture
def invoice(creditor):
    """Three lines, TOTAL in all, due in five days."""
    return make_invoice(creditor, lines=3, issue_date=(TODAY - timedelta(days=10)).isoformat(),
                        due_date=(TODAY + timedelta(days=5)).isoformat())
