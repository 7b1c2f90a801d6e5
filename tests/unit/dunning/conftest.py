"""Fixtures for the dunning tests: an app context, creditors with the shipped plans, and bills."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from app.dunning import services, worker
from app.dunning.settings import save_settings
from app.extensions import db
from tests.factories import make_creditor, make_invoice

TODAY = date(2026, 12, 8)  # a Tuesday, no holiday in Norway or Germany


@pytest.fixture
def ctx(app, session):
    with app.test_request_context():
        yield


def creditor_with_plan(kind: str, jurisdiction: str):
    creditor = make_creditor(kind)
    save_settings(creditor, languages=["en", "nb", "de"])
    plan = services.save_plan(creditor, services.shipped_plan(jurisdiction), actor="test", today=TODAY)
    return creditor, plan


@pytest.fixture
def norway(ctx):
    return creditor_with_plan("NO", "NO")


@pytest.fixture
def germany(ctx):
    return creditor_with_plan("DE", "DE")


def customer(ref: str = "C-1", **overrides) -> dict:
    data = {"external_ref": ref, "name": f"Kari {ref}", "email": f"{ref.lower()}@example.test", "phone": "+4791234567",
            "address": {"line1": "Storgata 1", "postcode": "0150", "city": "Oslo", "country": "NO"}}
    data.update(overrides)
    return data


def bill(creditor, plan=None, *, due: date, ref: str = "C-1", on: date = TODAY, **customer_fields):
    """An invoice of `creditor` due on `due`, of customer `ref`, following `plan` from `on`."""
    invoice = make_invoice(creditor, issue_date=(due - timedelta(days=20)).isoformat(), due_date=due.isoformat(),
                           customer=customer(ref, **customer_fields))
    if plan is not None:
        services.assign_plan(invoice, plan, actor="test", today=on)
    return invoice


def run(creditor, on: date, **options) -> worker.RunReport:
    report = worker.run(on=on, slug=creditor.slug, **options)
    db.session.expire_all()
    return report
