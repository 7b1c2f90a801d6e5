"""Cancelling an invoice stops its payments under way, here and at the provider (the simulator, Stripe
through localstripe, Adyen's payment link on the local Checkout server); a success that arrives for a
cancelled invoice anyway is recorded as money owed back, never as a payment of the cancelled bill."""

from __future__ import annotations

import json
import logging
import re
import socket
import time

import pytest
import stripe
from sqlalchemy import select

from app.billing.models import InvoiceStatus
from app.billing.services import transition
from app.creditors.services import create_api_key
from app.extensions import db
from app.payments.gateways.base import PaymentStatus
from app.payments.gateways.simulator import sign
from app.payments.models import CreditorGateway, Payment, PaymentAttempt, SimulatorRecord
from app.payments.providers import simulator_secret
from tests.factories import make_creditor, make_invoice
from tests.functional.helpers import open_bill
from tests.support.adyen_server import AdyenServer
from tests.support.localstripe_server import LocalStripe

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
STRIPE = {"secret_key": "sk_test_" + "e" * 24, "publishable_key": "pk_test_" + "e" * 24,
          "webhook_secret": "whsec_" + "e" * 32}
ADYEN_KEY, ADYEN_HMAC = "cancel_api_key", "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056"
EN = {"Accept-Language": "en"}


@pytest.fixture(scope="module")
def localstripe():
    with LocalStripe() as server:
        yield server.api_base


@pytest.fixture(scope="module")
def adyen():
    with AdyenServer(api_key=ADYEN_KEY) as server:
        yield server


@pytest.fixture
def configure(app, monkeypatch):
    monkeypatch.setitem(app.config, "PAYMENT_GATEWAYS", {})
    app.extensions.pop("payment_gateways", None)
    app.extensions.pop("creditor_ids", None)

    def give(creditor, provider, methods, settings, flow=None):
        db.session.add(CreditorGateway(creditor_id=creditor.id, provider=provider, methods=list(methods), flow=flow))
        db.session.commit()
        app.config["PAYMENT_GATEWAYS"].setdefault(creditor.slug, {})[provider] = settings

    yield give
    app.extensions.pop("payment_gateways", None)
    app.extensions.pop("creditor_ids", None)


def started(client, app, invoice, provider):
    """The bill opened and a payment started with `provider`: (the bill's path, the attempt, the answer)."""
    url = open_bill(client, app, invoice)
    token = CSRF.search(client.get(url).text).group(1)
    answer = client.post(f"{url}/pay", data={"csrf_token": token, "provider": provider})
    assert answer.status_code == 303, answer.text
    attempt = db.session.scalar(select(PaymentAttempt).where(PaymentAttempt.invoice_id == invoice.id))
    return url, attempt, answer


def cancel(client, creditor, invoice):
    key = create_api_key(creditor)
    db.session.commit()
    answer = client.post(f"/api/v1/invoices/{invoice.number}/cancel", json={"reason": "Sent in error"},
                         headers={"Authorization": f"Bearer {key}"})
    assert answer.status_code == 200, answer.text
    assert invoice.status == InvoiceStatus.CANCELLED
    return answer


def test_the_simulators_payment_stops_and_a_late_success_is_owed_back(client, app, session):
    creditor = make_creditor("NO")
    invoice = make_invoice(creditor, lines=2)
    _url, attempt, answer = started(client, app, invoice, "simulator")
    hosted = answer.headers["Location"].replace(app.config["PORTAL_BASE_URL"], "")
    cancel(client, creditor, invoice)
    assert (attempt.status, attempt.failure_reason) == (PaymentStatus.CANCELLED, "invoice cancelled")
    record = db.session.scalar(select(SimulatorRecord).where(SimulatorRecord.ref == attempt.provider_ref))
    assert record.status == PaymentStatus.CANCELLED  # at the provider too
    assert "payments_stopped" in [e.kind for e in invoice.events]

    page = client.get(hosted, headers=EN)
    assert "already finished" in page.text
    chosen = client.post(hosted, data={"csrf_token": CSRF.search(page.text).group(1), "outcome": "succeed"})
    assert chosen.status_code == 303
    assert db.session.scalar(select(Payment).where(Payment.invoice_id == invoice.id)) is None

    # the provider's success arrives anyway (it had taken the money before it heard): owed back in full
    body = json.dumps({"id": "evt_late", "type": "payment.succeeded", "created": int(time.time()),
                       "data": {"ref": attempt.provider_ref, "status": "succeeded", "amount": attempt.amount,
                                "currency": "NOK"}}).encode()
    with app.app_context():
        signature = sign(simulator_secret(creditor), body)
    late = client.post(f"/webhooks/simulator/{creditor.slug}", data=body,
                       headers={"Content-Type": "application/json", "Simulator-Signature": signature})
    assert late.status_code == 200 and late.json["outcomes"] == ["applied"]
    payment = db.session.scalar(select(Payment).where(Payment.invoice_id == invoice.id))
    assert (payment.amount, payment.refund_due) == (attempt.amount, attempt.amount)
    assert (invoice.status, invoice.amount_paid) == (InvoiceStatus.CANCELLED, 0)
    kinds = [e.kind for e in invoice.events]
    assert "payment_to_refund" in kinds and "payment_recorded" not in kinds


@pytest.mark.parametrize("flow", ["element", "checkout"])
def test_stripe_payment_intent_cancelled_and_checkout_session_expired(client, app, session, configure, localstripe,
                                                                      flow):
    creditor = make_creditor("NO")
    configure(creditor, "stripe", ["card"], {**STRIPE, "api_base": localstripe, "flow": flow}, flow=flow)
    invoice = make_invoice(creditor)
    _url, attempt, _answer = started(client, app, invoice, "stripe")
    cancel(client, creditor, invoice)
    assert attempt.status == PaymentStatus.CANCELLED
    stripe_client = stripe.StripeClient(STRIPE["secret_key"], base_addresses={"api": localstripe})
    if flow == "element":
        assert stripe_client.v1.payment_intents.retrieve(attempt.provider_ref).status == "canceled"
    else:
        assert stripe_client.v1.checkout.sessions.retrieve(attempt.provider_ref).status == "expired"


def test_adyen_payment_link_expired(client, app, session, configure, adyen):
    creditor = make_creditor("NO")
    settings = {"api_key": ADYEN_KEY, "merchant_account": "FjordlysECOM", "hmac_key": ADYEN_HMAC,
                "client_key": "test_CLIENT", "checkout_base_url": adyen.base_url}
    configure(creditor, "adyen", ["card"], settings, flow="link")
    invoice = make_invoice(creditor)
    _url, attempt, _answer = started(client, app, invoice, "adyen")
    cancel(client, creditor, invoice)
    assert attempt.status == PaymentStatus.CANCELLED
    assert adyen.links[attempt.provider_ref]["status"] == "expired"


def test_a_provider_out_of_reach_does_not_stop_the_cancellation(client, app, session, configure, localstripe,
                                                                caplog):
    creditor = make_creditor("NO")
    configure(creditor, "stripe", ["card"], {**STRIPE, "api_base": localstripe})
    invoice = make_invoice(creditor)
    _url, attempt, _answer = started(client, app, invoice, "stripe")
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{closed.getsockname()[1]}"
    app.config["PAYMENT_GATEWAYS"][creditor.slug]["stripe"] = {**STRIPE, "api_base": dead}
    app.extensions.pop("payment_gateways", None)
    caplog.set_level(logging.WARNING)
    cancel(client, creditor, invoice)
    assert attempt.status == PaymentStatus.CANCELLED and "could not cancel attempt" in caplog.text
    assert STRIPE["secret_key"] not in caplog.text


def test_a_bill_written_off_stops_its_payments_too(app, session):
    creditor = make_creditor("NO")
    invoice = make_invoice(creditor)
    from app.payments.providers import simulator_for
    from app.payments.services import start_payment

    with app.test_request_context():
        attempt = start_payment(invoice, simulator_for(creditor), amount=invoice.balance, locale="en",
                                methods=("card",), return_url=lambda ref: f"https://pay.example.test/r/{ref}",
                                cancel_url="https://pay.example.test/b")
        transition(invoice, InvoiceStatus.WRITTEN_OFF, actor="agent:1", reason="uncollectable")
    assert (attempt.status, attempt.failure_reason) == (PaymentStatus.CANCELLED, "invoice written_off")
