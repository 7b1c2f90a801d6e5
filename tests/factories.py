"""Test data built through the real services (validation included)."""

from __future__ import annotations

import itertools
from datetime import date, timedelta

from app.billing.services import import_invoice
from app.core.dates import local_today
from app.creditors.services import CreditorInput, create_creditor
from app.models import utcnow

_seq = itertools.count(1)

CREDITORS = {
    "NO": {"country": "NO", "default_locale": "nb", "currency": "NOK", "reference_scheme": "kid_mod10",
           "bank_account_no": "15032080119", "name": "Fjordkraft Test AS", "org_number": "987 654 321"},
    "DE": {"country": "DE", "default_locale": "de", "currency": "EUR", "reference_scheme": "rf",
           "iban": "DE89370400440532013000", "bic": "COBADEFFXXX", "name": "Stadtwerke Test GmbH"},
    "IE": {"country": "IE", "default_locale": "en", "currency": "EUR", "reference_scheme": "rf",
           "iban": "IE29AIBK93115212345678", "bic": "AIBKIE2D", "name": "Shamrock Telecom Ltd"},
}


def make_creditor(kind: str = "NO", **overrides):
    n = next(_seq)
    fields = dict(CREDITORS[kind])
    fields.update(
        slug=f"test-{kind.lower()}-{n}", support_email="help@example.test", support_phone="+4722334455",
        support_hours="Mon–Fri 08–16", address="Street 1, 0150 Oslo",
    )
    fields.update(overrides)
    creditor = create_creditor(CreditorInput(**fields))
    # Plans for the small bills tests make; the currency's least balance is tested on its own.
    creditor.plan_min_balance = 1
    return creditor


def creditor_today(country: str) -> date:
    """Today where a creditor of this country is: the bill pages count days from it (near midnight
    UTC the server's date and Oslo's differ)."""
    return local_today(country, utcnow())


def invoice_payload(currency: str = "NOK", lines: int = 1, number: str | None = None, *, today: date | None = None,
                    **overrides) -> dict:
    today = today or date.today()
    body_lines = [
        {"description": f"Service {i}", "quantity": "1", "unit_price": 10000 + i, "vat_rate": 2500}
        for i in range(1, lines + 1)
    ]
    total = sum((10000 + i) + ((10000 + i) * 2500 + 5000) // 10000
                for i in range(1, lines + 1))
    payload = {
        "number": number or f"{100000 + next(_seq)}",
        "issue_date": (today - timedelta(days=10)).isoformat(),
        "due_date": (today + timedelta(days=5)).isoformat(),
        "currency": currency,
        "customer": {
            "external_ref": "C-1", "name": "Kari Nordmann", "email": "kari@example.test", "phone": "+4791234567",
            "address": {"line1": "Storgata 1", "postcode": "0150", "city": "Oslo", "country": "NO"},
            "date_of_birth": "1980-12-31",
        },
        "lines": body_lines,
        "total": total,
    }
    payload.update(overrides)
    return payload


def make_invoice(creditor, lines: int = 1, *, livemode: bool = True, **overrides):
    """An invoice of `creditor`, issued ten days ago and due in five, counted from its local date
    (`livemode=False`: a test bill, as a test API key makes)."""
    payload = invoice_payload(creditor.currency, lines, today=creditor_today(creditor.country), **overrides)
    invoice, _created = import_invoice(creditor, payload, actor="test", livemode=livemode)
    return invoice


#: Test-mode Stripe credentials that reach no server: enough for a creditor to have a configured provider.
STRIPE_KEYS = {"secret_key": "sk_test_" + "f" * 24, "publishable_key": "pk_test_" + "f" * 24,
               "webhook_secret": "whsec_" + "f" * 32}


def take_card_payments(app, creditor, methods=("card",)):
    """Give `creditor` a configured provider (Stripe, keys that reach no server) taking cards in any
    currency: invoices in a currency other than its bank account's can then be imported."""
    from app.extensions import db
    from app.payments.models import CreditorGateway
    from app.payments.providers import changed_gateways

    db.session.add(CreditorGateway(creditor_id=creditor.id, provider="stripe", methods=list(methods)))
    changed_gateways(creditor)  # as offering a provider does
    db.session.flush()
    app.config["PAYMENT_GATEWAYS"].setdefault(creditor.slug, {})["stripe"] = dict(STRIPE_KEYS)
