"""The Stripe adapter against localstripe, a fake Stripe API run in a subprocess on 127.0.0.1.

localstripe's Stripe.js stand-in has no card form and its API takes card details and
confirmations with the secret key only, so the `customer` client plays the browser the way
Stripe.js does it: a PaymentMethod from the card details, set on the intent, then confirm.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import queue
import secrets
import socket
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
import stripe

from app.payments.gateways.base import (
    CheckoutRequest,
    GatewayError,
    GatewayEvent,
    Party,
    PaymentStatus,
    WebhookError,
)
from app.payments.gateways.stripe import StripeConfig, StripeGateway
from tests.support.localstripe_server import LocalStripe
from tests.support.serving import serve_in_thread, stop_serving

SECRET_KEY = "sk_test_" + "k" * 24
PUBLISHABLE_KEY = "pk_test_" + "p" * 24
WEBHOOK_SECRET = "whsec_" + "w" * 32
VISA = "4242424242424242"
DECLINED = "4000000000000002"


@pytest.fixture(scope="module")
def api_base() -> Iterator[str]:
    with LocalStripe() as server:
        yield server.api_base


@pytest.fixture
def gateway(api_base: str) -> StripeGateway:
    return StripeGateway(StripeConfig(SECRET_KEY, PUBLISHABLE_KEY, WEBHOOK_SECRET, api_base=api_base))


@pytest.fixture
def customer(api_base: str) -> stripe.StripeClient:
    return stripe.StripeClient(SECRET_KEY, base_addresses={"api": api_base})


def checkout_request(**changes: Any) -> CheckoutRequest:
    ref = secrets.token_urlsafe(12)
    values: dict[str, Any] = {
        "attempt_ref": ref,
        "amount": 125000,
        "currency": "NOK",
        "invoice_number": "2026-10001",
        "payment_reference": "1234567890128",
        "description": "Invoice 2026-10001, Fjordlys Energi AS",
        "payer": Party(name="Kari Nordmann", email="kari@example.no", country="NO"),
        "methods": ("card", "apple_pay", "klarna", "vipps", "bank_transfer"),
        "locale": "nb",
        "return_url": "https://portal.example/pay/return",
        "cancel_url": "https://portal.example/bill",
        "idempotency_key": f"attempt-{ref}",
        "metadata": {"creditor": "fjordlys"},
    }
    return CheckoutRequest(**(values | changes))


def pay(customer: stripe.StripeClient, provider_ref: str, number: str) -> None:
    method = customer.v1.payment_methods.create(
        params={"type": "card", "card": {"number": number, "exp_month": 12, "exp_year": 2034, "cvc": "123"}}
    )
    customer.v1.payment_intents.update(provider_ref, params={"payment_method": method.id})
    customer.v1.payment_intents.confirm(provider_ref)


def test_checkout_creates_a_payment_intent(gateway: StripeGateway, customer: stripe.StripeClient) -> None:
    request = checkout_request()
    checkout = gateway.create_checkout(request)

    assert checkout.provider == "stripe"
    assert checkout.provider_ref.startswith("pi_")
    assert checkout.status == PaymentStatus.PENDING
    assert checkout.client_secret and checkout.client_secret.startswith(checkout.provider_ref)
    assert checkout.client_config == {
        "publishable_key": PUBLISHABLE_KEY, "name": "Kari Nordmann", "email": "kari@example.no", "country": "NO",
        "js_url": gateway.config.script_url,
    }
    assert gateway.config.script_url == gateway.config.api_base + "/js.stripe.com/v3/"
    intent = customer.v1.payment_intents.retrieve(checkout.provider_ref)
    assert (intent.amount, intent.currency) == (125000, "nok")
    assert intent.description == request.description
    assert intent.receipt_email == "kari@example.no"
    assert intent.payment_method_types == ["card", "klarna", "vipps"]  # wallets ride on card
    assert intent.metadata.to_dict() == {
        "creditor": "fjordlys", "invoice_number": "2026-10001", "payment_reference": "1234567890128",
        "attempt_ref": request.attempt_ref,
    }


def test_checkout_without_email_sends_no_receipt_email(gateway: StripeGateway, customer: stripe.StripeClient) -> None:
    checkout = gateway.create_checkout(checkout_request(payer=Party(name="Ola Nordmann")))

    assert checkout.client_config == {
        "publishable_key": PUBLISHABLE_KEY, "name": "Ola Nordmann", "js_url": gateway.config.script_url,
    }
    assert customer.v1.payment_intents.retrieve(checkout.provider_ref).receipt_email is None


def test_same_idempotency_key_returns_the_same_payment_intent(gateway: StripeGateway) -> None:
    request = checkout_request()

    first = gateway.create_checkout(request)
    again = gateway.create_checkout(request)
    other = gateway.create_checkout(checkout_request())

    assert again.provider_ref == first.provider_ref
    assert again.client_secret == first.client_secret
    assert other.provider_ref != first.provider_ref


def test_reused_idempotency_key_with_another_amount_is_refused(gateway: StripeGateway) -> None:
    request = checkout_request()
    gateway.create_checkout(request)

    with pytest.raises(GatewayError) as error:
        gateway.create_checkout(checkout_request(amount=1, idempotency_key=request.idempotency_key))
    assert not error.value.retryable


def test_checkout_needs_a_method_stripe_offers(gateway: StripeGateway) -> None:
    with pytest.raises(GatewayError) as error:
        gateway.create_checkout(checkout_request(methods=("bank_transfer", "ocr_giro")))
    assert error.value.code == "no_methods"


def test_unpaid_checkout_is_pending(gateway: StripeGateway) -> None:
    checkout = gateway.create_checkout(checkout_request())

    status = gateway.fetch_status(checkout.provider_ref)

    assert (status.status, status.amount_received, status.payment_id, status.failure_reason) == (
        PaymentStatus.PENDING, None, None, None,
    )


def test_paid_with_the_test_card_succeeds(gateway: StripeGateway, customer: stripe.StripeClient) -> None:
    checkout = gateway.create_checkout(checkout_request())

    pay(customer, checkout.provider_ref, VISA)
    status = gateway.fetch_status(checkout.provider_ref)

    assert status.provider_ref == checkout.provider_ref
    assert status.status == PaymentStatus.SUCCEEDED
    assert (status.amount_received, status.currency, status.method) == (125000, "NOK", "card")
    assert status.payment_id and status.payment_id.startswith("ch_")
    assert status.failure_reason is None


def test_declined_card_fails_with_the_reason(gateway: StripeGateway, customer: stripe.StripeClient) -> None:
    checkout = gateway.create_checkout(checkout_request())

    with pytest.raises(stripe.CardError):  # what Stripe.js reports to the page
        pay(customer, checkout.provider_ref, DECLINED)
    status = gateway.fetch_status(checkout.provider_ref)

    assert status.status == PaymentStatus.FAILED
    assert status.failure_reason == "card_declined"  # the code (words for the customer: payments.declines)
    assert status.amount_received is None


def test_refund_is_idempotent(gateway: StripeGateway, customer: stripe.StripeClient) -> None:
    checkout = gateway.create_checkout(checkout_request())
    pay(customer, checkout.provider_ref, VISA)

    refund = gateway.refund(checkout.provider_ref, 40000, "refund-1-" + checkout.provider_ref)
    again = gateway.refund(checkout.provider_ref, 40000, "refund-1-" + checkout.provider_ref)

    assert refund.provider_ref == checkout.provider_ref
    assert refund.refund_id.startswith("re_")
    assert (refund.amount, refund.status) == (40000, "succeeded")
    assert again.refund_id == refund.refund_id
    charge = customer.v1.charges.retrieve(gateway.fetch_status(checkout.provider_ref).payment_id or "")
    assert charge.amount_refunded == 40000


def test_refund_of_an_unpaid_payment_is_refused(gateway: StripeGateway) -> None:
    checkout = gateway.create_checkout(checkout_request())

    with pytest.raises(GatewayError) as error:
        gateway.refund(checkout.provider_ref, 100, "refund-unpaid-" + checkout.provider_ref)
    assert not error.value.retryable


def test_cancel(gateway: StripeGateway, customer: stripe.StripeClient) -> None:
    checkout = gateway.create_checkout(checkout_request())

    gateway.cancel(checkout.provider_ref)
    gateway.cancel(checkout.provider_ref)  # cancelled already: nothing to do

    assert gateway.fetch_status(checkout.provider_ref).status == PaymentStatus.CANCELLED
    paid = gateway.create_checkout(checkout_request())
    pay(customer, paid.provider_ref, VISA)
    with pytest.raises(GatewayError) as error:
        gateway.cancel(paid.provider_ref)
    assert error.value.code == "not_cancellable"


def test_unknown_payment_is_a_permanent_error(gateway: StripeGateway) -> None:
    with pytest.raises(GatewayError) as error:
        gateway.fetch_status("pi_doesnotexist")
    assert not error.value.retryable
    assert SECRET_KEY not in str(error.value)


def test_unreachable_stripe_is_a_retryable_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    gateway = StripeGateway(
        StripeConfig(SECRET_KEY, PUBLISHABLE_KEY, WEBHOOK_SECRET, api_base=f"http://127.0.0.1:{closed_port}")
    )

    with pytest.raises(GatewayError) as error:
        gateway.fetch_status("pi_whatever")
    assert error.value.retryable
    assert SECRET_KEY not in str(error.value)


# Webhooks: signed here exactly as Stripe signs them; no server needed.


@pytest.fixture
def webhooks() -> StripeGateway:
    return StripeGateway(StripeConfig(SECRET_KEY, PUBLISHABLE_KEY, WEBHOOK_SECRET))


def sign(body: bytes, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> dict[str, str]:
    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return {"Stripe-Signature": f"t={t},v1={digest}"}


def stripe_event(event_type: str, obj: dict[str, Any]) -> bytes:
    event = {
        "id": "evt_" + secrets.token_hex(12), "object": "event", "api_version": "2026-10-28.endive",
        "created": 1790000000, "livemode": False, "pending_webhooks": 1, "type": event_type,
        "data": {"object": obj}, "request": {"id": None, "idempotency_key": None},
    }
    return json.dumps(event).encode()


def intent(status: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": "pi_123", "object": "payment_intent", "amount": 125000, "amount_received": 0, "currency": "nok",
        "status": status, "latest_charge": None, "payment_method": None, "payment_method_types": ["card"],
        "metadata": {"attempt_ref": "a1"}, **fields,
    }


def test_webhook_payment_succeeded(webhooks: StripeGateway) -> None:
    body = stripe_event("payment_intent.succeeded", intent("succeeded", amount_received=125000, latest_charge="ch_9"))

    [event] = webhooks.parse_webhook(body, sign(body))

    assert event.provider == "stripe"
    assert event.event_id == json.loads(body)["id"]
    assert (event.event_type, event.provider_ref, event.status) == ("payment_intent.succeeded", "pi_123", "succeeded")
    assert (event.amount, event.currency, event.payment_id, event.method) == (125000, "NOK", "ch_9", "card")
    assert event.occurred_at is not None and event.occurred_at.timestamp() == 1790000000
    assert event.payload == json.loads(body)


@pytest.mark.parametrize(
    ("event_type", "intent_status", "status"),
    [
        ("payment_intent.payment_failed", "requires_payment_method", PaymentStatus.FAILED),
        ("payment_intent.canceled", "canceled", PaymentStatus.CANCELLED),
        ("payment_intent.processing", "processing", PaymentStatus.PROCESSING),
        ("payment_intent.requires_action", "requires_action", PaymentStatus.REQUIRES_ACTION),
        ("payment_intent.amount_capturable_updated", "requires_capture", PaymentStatus.PROCESSING),
        ("payment_intent.created", "requires_payment_method", None),
    ],
)
def test_webhook_payment_intent_statuses(
    webhooks: StripeGateway, event_type: str, intent_status: str, status: str | None
) -> None:
    body = stripe_event(event_type, intent(intent_status))

    [event] = webhooks.parse_webhook(body, {"stripe-signature": sign(body)["Stripe-Signature"]})

    assert (event.event_type, event.provider_ref, event.status, event.amount) == (event_type, "pi_123", status, 125000)


@pytest.mark.parametrize(("error", "reason"), [
    ({"code": "card_declined", "decline_code": "insufficient_funds", "message": "Your card has insufficient funds."},
     "insufficient_funds"),  # the issuer's decline code first
    ({"code": "expired_card", "message": "Your card has expired."}, "expired_card"),
    ({"message": "Something else"}, "Something else"),
])
def test_webhook_payment_failed_names_the_reason(webhooks: StripeGateway, error: dict, reason: str) -> None:
    body = stripe_event("payment_intent.payment_failed", intent("requires_payment_method", last_payment_error=error))

    [event] = webhooks.parse_webhook(body, sign(body))

    assert (event.status, event.failure_reason) == (PaymentStatus.FAILED, reason)


@pytest.mark.parametrize(
    ("event_type", "obj", "provider_ref", "payment_id"),
    [
        ("charge.refunded", {"id": "ch_9", "object": "charge", "payment_intent": "pi_123"}, "pi_123", "ch_9"),
        ("refund.created", {"id": "re_1", "object": "refund", "payment_intent": "pi_123"}, "pi_123", None),
        ("customer.created", {"id": "cus_1", "object": "customer"}, None, None),
    ],
)
def test_webhook_other_types_are_stored_only(
    webhooks: StripeGateway, event_type: str, obj: dict[str, Any], provider_ref: str | None, payment_id: str | None
) -> None:
    body = stripe_event(event_type, obj)

    [event] = webhooks.parse_webhook(body, sign(body))

    assert (event.event_type, event.status, event.provider_ref, event.payment_id) == (
        event_type, None, provider_ref, payment_id,
    )


def forged(body: bytes) -> tuple[bytes, dict[str, str]]:
    return body.replace(b"125000", b"1"), sign(body)


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(forged, id="tampered body"),
        pytest.param(lambda body: (body, sign(body, secret="whsec_other")), id="wrong secret"),
        pytest.param(lambda body: (body, sign(body, timestamp=int(time.time()) - 301)), id="older than 300 s"),
        pytest.param(lambda body: (body, {}), id="missing header"),
        pytest.param(lambda body: (body, {"Stripe-Signature": "garbage"}), id="malformed header"),
        pytest.param(lambda body: (b"not json", sign(b"not json")), id="signed but not JSON"),
        pytest.param(lambda body: (b"\xff\xfe", sign(b"\xff\xfe")), id="not UTF-8"),
    ],
)
def test_webhook_not_genuine_or_not_fresh_is_refused(webhooks: StripeGateway, make: Any) -> None:
    body, headers = make(stripe_event("payment_intent.succeeded", intent("succeeded", amount_received=125000)))

    with pytest.raises(WebhookError) as error:
        webhooks.parse_webhook(body, headers)
    assert WEBHOOK_SECRET not in str(error.value)


def test_webhook_within_tolerance_is_accepted(webhooks: StripeGateway) -> None:
    body = stripe_event("payment_intent.processing", intent("processing"))

    [event] = webhooks.parse_webhook(body, sign(body, timestamp=int(time.time()) - 290))

    assert event.status == PaymentStatus.PROCESSING


class _Receiver(BaseHTTPRequestHandler):
    deliveries: queue.Queue[tuple[bytes, dict[str, str]]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.deliveries.put((body, dict(self.headers.items())))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_webhook_delivered_by_localstripe(
    api_base: str, gateway: StripeGateway, customer: stripe.StripeClient
) -> None:
    deliveries: queue.Queue[tuple[bytes, dict[str, str]]] = queue.Queue()
    receiver = HTTPServer(("127.0.0.1", 0), type("Receiver", (_Receiver,), {"deliveries": deliveries}))
    thread = serve_in_thread(receiver)
    try:
        form = urllib.parse.urlencode(
            {"url": f"http://127.0.0.1:{receiver.server_port}/", "secret": WEBHOOK_SECRET,
             "events[]": "payment_intent.succeeded"}
        ).encode()
        urllib.request.urlopen(urllib.request.Request(api_base + "/_config/webhooks/tests", data=form), timeout=5)
        checkout = gateway.create_checkout(checkout_request())
        pay(customer, checkout.provider_ref, VISA)

        events: list[GatewayEvent] = []
        while not any(e.provider_ref == checkout.provider_ref for e in events):
            events += gateway.parse_webhook(*deliveries.get(timeout=10))
    finally:
        stop_serving(receiver, thread)

    [event] = [e for e in events if e.provider_ref == checkout.provider_ref]
    assert (event.event_type, event.status, event.amount) == ("payment_intent.succeeded", "succeeded", 125000)
    assert event.event_id.startswith("evt_")


def test_no_global_api_key(gateway: StripeGateway, webhooks: StripeGateway) -> None:
    checkout = gateway.create_checkout(checkout_request())
    gateway.fetch_status(checkout.provider_ref)
    body = stripe_event("payment_intent.created", intent("requires_payment_method"))
    webhooks.parse_webhook(body, sign(body))

    assert stripe.api_key is None
    assert SECRET_KEY not in repr(gateway.config) and WEBHOOK_SECRET not in repr(gateway.config)


# --- the hosted Checkout (flow "checkout") ---------------------------------------------------------


@pytest.fixture
def hosted(api_base: str) -> StripeGateway:
    return StripeGateway(StripeConfig(SECRET_KEY, PUBLISHABLE_KEY, WEBHOOK_SECRET, api_base=api_base, flow="checkout"))


def pay_on_the_hosted_page(url: str, number: str) -> int:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), NoRedirect())
    data = urllib.parse.urlencode({"number": number}).encode()
    try:
        with opener.open(urllib.request.Request(url, data=data), timeout=5) as answer:
            return answer.status
    except urllib.error.HTTPError as answer:
        return answer.code


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def test_hosted_checkout_session(hosted: StripeGateway, customer: stripe.StripeClient) -> None:
    request = checkout_request()
    checkout = hosted.create_checkout(request)
    assert checkout.provider_ref.startswith("cs_") and checkout.redirect_url and not checkout.client_secret
    assert hosted.create_checkout(request).provider_ref == checkout.provider_ref  # idempotency key
    session = customer.v1.checkout.sessions.retrieve(checkout.provider_ref).to_dict()
    assert session["amount_total"] == 125000 and session["customer_email"] == "kari@example.no"
    assert session["success_url"] == request.return_url and session["client_reference_id"] == request.attempt_ref
    assert session["metadata"]["invoice_number"] == "2026-10001"
    assert hosted.fetch_status(checkout.provider_ref).status == PaymentStatus.PENDING
    assert hosted.content_security() == {"form-action": (hosted.config.api_base,)}

    assert pay_on_the_hosted_page(checkout.redirect_url, DECLINED) == 402
    assert hosted.fetch_status(checkout.provider_ref).status == PaymentStatus.PENDING  # may try another card
    assert pay_on_the_hosted_page(checkout.redirect_url, VISA) == 303
    status = hosted.fetch_status(checkout.provider_ref)
    assert status.status == PaymentStatus.SUCCEEDED and status.amount_received == 125000
    assert status.payment_id and status.payment_id.startswith("pi_")
    refund = hosted.refund(checkout.provider_ref, 5000, "refund-cs-1")
    assert refund.amount == 5000


def test_hosted_checkout_expires_when_cancelled(hosted: StripeGateway) -> None:
    checkout = hosted.create_checkout(checkout_request())
    hosted.cancel(checkout.provider_ref)
    assert hosted.fetch_status(checkout.provider_ref).status == PaymentStatus.CANCELLED
    hosted.cancel(checkout.provider_ref)  # again: nothing to do


def test_webhook_checkout_session_events(webhooks: StripeGateway) -> None:
    session = {"id": "cs_test_1", "object": "checkout.session", "status": "complete", "payment_status": "paid",
               "payment_intent": "pi_9", "amount_total": 125000, "currency": "nok"}
    body = stripe_event("checkout.session.completed", session)
    [event] = webhooks.parse_webhook(body, sign(body))
    assert (event.provider_ref, event.status, event.amount, event.payment_id) == (
        "cs_test_1", "succeeded", 125000, "pi_9")
    delayed = stripe_event("checkout.session.completed", {**session, "payment_status": "unpaid"})
    assert webhooks.parse_webhook(delayed, sign(delayed))[0].status == PaymentStatus.PROCESSING
    later = stripe_event("checkout.session.async_payment_succeeded", session)
    assert webhooks.parse_webhook(later, sign(later))[0].status == PaymentStatus.SUCCEEDED
    expired = stripe_event("checkout.session.expired", {**session, "status": "expired", "payment_status": "unpaid"})
    assert webhooks.parse_webhook(expired, sign(expired))[0].status == PaymentStatus.CANCELLED
