"""The contract every gateway adapter keeps, whatever the provider: one row per provider.

Each row plays the provider's side with its own tools (the simulator's hosted-page choice,
localstripe with the official `stripe` SDK, the local Adyen Checkout server) and checks the
same promises: a checkout that is pending and payable, idempotent creation, a status read
from the provider, a signed notification translated into our event and anything not
genuine refused, methods that fit the bill's currency and country, and purity (no
database, no Flask).
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import hmac
import inspect
import json
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
import stripe

from app.payments import gateways as registry
from app.payments.gateways import adyen as adyen_module
from app.payments.gateways import simulator as simulator_module
from app.payments.gateways import stripe as stripe_module
from app.payments.gateways.adyen import AdyenConfig, AdyenGateway
from app.payments.gateways.base import (
    Checkout,
    CheckoutRequest,
    Gateway,
    GatewayError,
    Party,
    PaymentStatus,
    WebhookError,
    check_event,
)
from app.payments.gateways.simulator import SimulatedPayment, SimulatorConfig, SimulatorGateway
from app.payments.gateways.stripe import StripeConfig, StripeGateway
from tests.support.adyen_server import AdyenServer
from tests.support.localstripe_server import LocalStripe

STRIPE_SECRET, STRIPE_PUBLISHABLE, STRIPE_WEBHOOK = "sk_test_" + "c" * 24, "pk_test_" + "c" * 24, "whsec_" + "c" * 32
ADYEN_KEY, ADYEN_HMAC = "contract_api_key", "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056"


class MemoryStore:
    """The simulator's records in a dict (the app keeps them in its database)."""

    def __init__(self) -> None:
        self.payments: dict[str, SimulatedPayment] = {}

    def by_idempotency_key(self, key: str) -> SimulatedPayment | None:
        return next((p for p in self.payments.values() if p.idempotency_key == key), None)

    def get(self, ref: str) -> SimulatedPayment | None:
        return self.payments.get(ref)

    def create(self, payment: SimulatedPayment) -> None:
        self.payments[payment.ref] = payment

    def update(self, ref: str, **changes) -> None:
        given = {k: v for k, v in changes.items() if v is not None}
        self.payments[ref] = dataclasses.replace(self.payments[ref], **given)


@dataclass
class Provider:
    """One provider's row: its gateway, and how its customer pays and how it notifies us."""

    gateway: Gateway
    pay: Callable[[Checkout], None]  # the customer pays successfully at the provider
    notification: Callable[[Checkout], tuple[bytes, dict[str, str]]]  # the provider's signed "succeeded"
    module: object


@pytest.fixture(scope="module")
def localstripe() -> Iterator[str]:
    with LocalStripe() as server:
        yield server.api_base


@pytest.fixture(scope="module")
def adyen_server() -> Iterator[AdyenServer]:
    with AdyenServer(api_key=ADYEN_KEY) as server:
        yield server


def simulator_row(_request) -> Provider:
    gateway = SimulatorGateway(SimulatorConfig(secret="s" * 32, page_base_url="https://portal.example"), MemoryStore())
    signed: dict[str, tuple[bytes, dict[str, str]]] = {}

    def pay(checkout: Checkout) -> None:
        _payment, body, headers = gateway.choose(checkout.provider_ref, "succeed")
        signed[checkout.provider_ref] = (body, headers)

    return Provider(gateway, pay, lambda checkout: signed[checkout.provider_ref], simulator_module)


def stripe_row(request) -> Provider:
    api_base = request.getfixturevalue("localstripe")
    gateway = StripeGateway(StripeConfig(STRIPE_SECRET, STRIPE_PUBLISHABLE, STRIPE_WEBHOOK, api_base=api_base))
    browser = stripe.StripeClient(STRIPE_SECRET, base_addresses={"api": api_base})

    def pay(checkout: Checkout) -> None:  # what Stripe.js does: a PaymentMethod, then confirm
        method = browser.v1.payment_methods.create(params={
            "type": "card", "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": "123"},
        })
        browser.v1.payment_intents.update(checkout.provider_ref, params={"payment_method": method.id})
        browser.v1.payment_intents.confirm(checkout.provider_ref)

    def notification(checkout: Checkout) -> tuple[bytes, dict[str, str]]:
        intent = browser.v1.payment_intents.retrieve(checkout.provider_ref).to_dict()
        body = json.dumps({
            "id": "evt_" + secrets.token_hex(12), "object": "event", "type": "payment_intent.succeeded",
            "created": int(time.time()), "livemode": False, "data": {"object": intent},
        }, default=str).encode()
        t = int(time.time())
        digest = hmac.new(STRIPE_WEBHOOK.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
        return body, {"Stripe-Signature": f"t={t},v1={digest}"}

    return Provider(gateway, pay, notification, stripe_module)


def adyen_row(request) -> Provider:
    server = request.getfixturevalue("adyen_server")
    gateway = AdyenGateway(AdyenConfig(
        api_key=ADYEN_KEY, merchant_account="ContractECOM", hmac_key=ADYEN_HMAC, client_key="test_CONTRACT",
        checkout_base_url=server.base_url, flow="link",
    ))
    return Provider(
        gateway, lambda checkout: server.complete(checkout.provider_ref),
        lambda checkout: (server.notification(checkout.provider_ref, ADYEN_HMAC), {}),
        adyen_module,
    )


ROWS = {"simulator": simulator_row, "stripe": stripe_row, "adyen": adyen_row}


def test_every_registered_provider_has_a_contract_row():
    assert set(registry.PROVIDERS) == set(ROWS)


@pytest.fixture(params=list(ROWS))
def provider(request) -> Provider:
    return ROWS[request.param](request)


def checkout_request(**changes) -> CheckoutRequest:
    ref = "att_" + secrets.token_urlsafe(9)
    values = {
        "attempt_ref": ref, "amount": 49_900, "currency": "NOK", "invoice_number": "2026-20001",
        "payment_reference": "1234567890128", "description": "2026-20001 · Fjordlys Energi AS",
        "payer": Party(name="Kari Nordmann", email="kari@example.no", country="NO"),
        "methods": ("card", "vipps"), "locale": "nb", "return_url": f"https://portal.example/b/x/paid/{ref}",
        "cancel_url": "https://portal.example/b/x", "idempotency_key": f"attempt-{ref}",
    }
    return CheckoutRequest(**(values | changes))


def test_checkout_is_pending_and_payable(provider: Provider):
    checkout = provider.gateway.create_checkout(checkout_request())
    assert checkout.provider == provider.gateway.name
    assert checkout.provider_ref
    assert checkout.status == PaymentStatus.PENDING
    assert checkout.redirect_url or checkout.client_secret or checkout.client_config  # somewhere to pay


def test_the_same_request_twice_is_one_payment(provider: Provider):
    request = checkout_request()
    first, second = provider.gateway.create_checkout(request), provider.gateway.create_checkout(request)
    assert first.provider_ref == second.provider_ref


def test_status_comes_from_the_provider(provider: Provider):
    request = checkout_request()
    checkout = provider.gateway.create_checkout(request)
    before = provider.gateway.fetch_status(checkout.provider_ref)
    assert before.status in (PaymentStatus.PENDING, PaymentStatus.REQUIRES_ACTION)
    provider.pay(checkout)
    after = provider.gateway.fetch_status(checkout.provider_ref)
    assert after.status == PaymentStatus.SUCCEEDED
    assert after.amount_received in (None, request.amount)  # None: the provider's status does not say


def test_signed_notification_names_the_payment(provider: Provider):
    request = checkout_request()
    checkout = provider.gateway.create_checkout(request)
    provider.pay(checkout)
    body, headers = provider.notification(checkout)
    events = provider.gateway.parse_webhook(body, headers)
    succeeded = [e for e in events if e.status == PaymentStatus.SUCCEEDED]
    assert len(succeeded) == 1
    event = succeeded[0]
    assert event.provider == provider.gateway.name and event.event_id
    assert event.provider_ref in (checkout.provider_ref, request.attempt_ref)  # how the app finds the attempt
    assert (event.amount, event.currency) == (request.amount, request.currency)
    for each in events:  # what the app checks before it stores an event: a genuine one passes
        check_event(each)


def test_anything_not_genuine_is_refused(provider: Provider):
    checkout = provider.gateway.create_checkout(checkout_request())
    provider.pay(checkout)
    body, headers = provider.notification(checkout)
    tampered = body.replace(b"49900", b"99900")
    assert tampered != body
    cases = [(tampered, headers), (b"not json", headers), (b"", {})]
    if headers:  # the signature travels in a header (Adyen signs inside the body: tampering covers it)
        cases.append((body, {}))
    for bad_body, bad_headers in cases:
        with pytest.raises(WebhookError):
            provider.gateway.parse_webhook(bad_body, bad_headers)


def test_methods_fit_the_currency_and_country(provider: Provider):
    gateway = provider.gateway
    wanted = ("card", "vipps", "ideal", "swish")
    assert gateway.methods_for("NOK", "NO", wanted) == ("card", "vipps")
    assert gateway.methods_for("EUR", "NL", wanted) == ("card", "ideal")
    assert gateway.methods_for("EUR", "DE", wanted) == ("card",)
    assert gateway.methods_for("NOK", "NO", ("no_such_method",)) == ()


def test_adapter_is_pure(provider: Provider):
    """No database, no Flask, no app state: only the provider's SDK and our own dataclasses."""
    tree = ast.parse(inspect.getsource(provider.module))
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    forbidden = {"flask", "sqlalchemy", "flask_sqlalchemy", "app.extensions", "app.models"}
    assert not {name for name in imported if name.split(".")[0] in forbidden or name in forbidden}
    assert all(name.startswith("app.payments.gateways") for name in imported if name.startswith("app"))


def test_cancel_stops_a_payment_not_yet_made(provider: Provider):
    """Our invoice was cancelled: the payment can no longer be made; again changes nothing; a payment
    already made cannot be cancelled (it is refunded instead)."""
    checkout = provider.gateway.create_checkout(checkout_request())
    provider.gateway.cancel(checkout.provider_ref)
    provider.gateway.cancel(checkout.provider_ref)  # cancelled already: nothing to do
    assert provider.gateway.fetch_status(checkout.provider_ref).status == PaymentStatus.CANCELLED
    paid = provider.gateway.create_checkout(checkout_request())
    provider.pay(paid)
    with pytest.raises(GatewayError) as error:
        provider.gateway.cancel(paid.provider_ref)
    assert error.value.code == "not_cancellable"
    assert provider.gateway.fetch_status(paid.provider_ref).status == PaymentStatus.SUCCEEDED
