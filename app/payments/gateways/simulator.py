"""The test-mode simulator: a payment provider of our own, for demos and tests without keys.

It behaves like a hosted-page provider: a checkout is a page of its own (clearly marked
test mode) where the customer chooses what happens (succeed, decline, needs
authentication, abandon); it answers status queries and sends signed notifications.
The provider's own records live behind `SimulatorStore` (the app gives a database-backed
one), so this adapter, like every adapter, imports neither Flask nor the database.

Notifications are JSON, signed like Stripe's: `Simulator-Signature: t=<unix time>,v1=<hex
HMAC-SHA256 of "<t>.<body>" with the creditor's simulator secret>`, 300 s tolerance.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from app.payments.gateways.base import (
    METHOD_REACH,
    Checkout,
    CheckoutRequest,
    Gateway,
    GatewayError,
    GatewayEvent,
    GatewayStatus,
    PaymentStatus,
    RefundResult,
    WebhookError,
)

SIGNATURE_HEADER = "Simulator-Signature"
TOLERANCE_SECONDS = 300
# What the customer can choose on the simulator's page, and the status each leads to.
OUTCOMES = {
    "succeed": PaymentStatus.SUCCEEDED,
    "decline": PaymentStatus.FAILED,
    "authenticate": PaymentStatus.REQUIRES_ACTION,
    "abandon": PaymentStatus.CANCELLED,
}


@dataclass(frozen=True)
class SimulatedPayment:
    ref: str
    idempotency_key: str
    amount: int
    currency: str
    description: str
    return_url: str
    cancel_url: str
    status: str
    method: str | None = None
    refunded: int = 0


class SimulatorStore(Protocol):
    """The simulated provider's records."""

    def by_idempotency_key(self, key: str) -> SimulatedPayment | None: ...

    def get(self, ref: str) -> SimulatedPayment | None: ...

    def create(self, payment: SimulatedPayment) -> None: ...

    def update(self, ref: str, *, status: str | None = None, method: str | None = None,
               refunded: int | None = None) -> None: ...


@dataclass(frozen=True)
class SimulatorConfig:
    secret: str  # signs notifications; per creditor
    page_base_url: str  # where the simulator's hosted page is served (our own origin)


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The signature header value for a notification body."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


class SimulatorGateway(Gateway):
    name = "simulator"
    supported_methods = tuple(METHOD_REACH)  # it plays any method the creditor chose, in test mode

    def __init__(self, config: SimulatorConfig, store: SimulatorStore):
        self.config = config
        self.store = store

    def create_checkout(self, request: CheckoutRequest) -> Checkout:
        existing = self.store.by_idempotency_key(request.idempotency_key)
        if existing is not None:
            if (existing.amount, existing.currency) != (request.amount, request.currency):
                raise GatewayError("idempotency key reused with other parameters", code="idempotency_mismatch")
            payment = existing
        else:
            payment = SimulatedPayment(
                ref="sim_" + secrets.token_urlsafe(12), idempotency_key=request.idempotency_key,
                amount=request.amount, currency=request.currency, description=request.description,
                return_url=request.return_url, cancel_url=request.cancel_url, status=PaymentStatus.PENDING,
            )
            self.store.create(payment)
        return Checkout(
            provider=self.name, provider_ref=payment.ref, status=payment.status,
            redirect_url=f"{self.config.page_base_url.rstrip('/')}/simulator/{payment.ref}",
        )

    def fetch_status(self, provider_ref: str) -> GatewayStatus:
        payment = self.store.get(provider_ref)
        if payment is None:
            raise GatewayError("no such simulated payment", code="not_found")
        return GatewayStatus(
            provider_ref=payment.ref, status=payment.status, currency=payment.currency, method=payment.method,
            amount_received=payment.amount if payment.status == PaymentStatus.SUCCEEDED else None,
            payment_id=payment.ref, failure_reason="card declined" if payment.status == PaymentStatus.FAILED else None,
        )

    def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> list[GatewayEvent]:
        header = _header(headers, SIGNATURE_HEADER)
        try:
            if header is None:
                raise KeyError(SIGNATURE_HEADER)
            parts: dict[str, str] = {}
            for item in header.split(","):
                key, value = item.split("=", 1)  # ValueError without "="
                parts[key] = value
            timestamp, given = int(parts["t"]), parts["v1"]
        except (KeyError, ValueError) as exc:
            raise WebhookError("missing or malformed signature header") from exc
        if abs(time.time() - timestamp) > TOLERANCE_SECONDS:
            raise WebhookError("notification timestamp outside the tolerance")
        expected = sign(self.config.secret, body, timestamp).split("v1=", 1)[1]
        if not hmac.compare_digest(expected, given):
            raise WebhookError("signature does not match")
        try:
            event = json.loads(body)
            data = event["data"]
            if not isinstance(event["id"], str) or not isinstance(event["type"], str) or not isinstance(data, dict):
                raise TypeError("the event's id and type are strings, its data an object")
            return [
                GatewayEvent(
                    provider=self.name, event_id=event["id"], event_type=event["type"],
                    provider_ref=data.get("ref"),
                    status=data.get("status") if data.get("status") in PaymentStatus.values() else None,
                    amount=data.get("amount"), currency=data.get("currency"), payment_id=data.get("ref"),
                    method=data.get("method"),
                    occurred_at=datetime.fromtimestamp(int(event.get("created", timestamp)), UTC),
                    payload=event,
                )
            ]
        except (ValueError, KeyError, TypeError, AttributeError, OverflowError, OSError) as exc:
            raise WebhookError("notification body is not a simulator event") from exc

    def refund(self, provider_ref: str, amount: int, idempotency_key: str) -> RefundResult:
        payment = self.store.get(provider_ref)
        if payment is None or payment.status != PaymentStatus.SUCCEEDED:
            raise GatewayError("only a succeeded payment can be refunded", code="not_refundable")
        if amount <= 0 or payment.refunded + amount > payment.amount:
            raise GatewayError("refund exceeds the payment", code="amount_too_large")
        self.store.update(provider_ref, refunded=payment.refunded + amount)
        return RefundResult(provider_ref=provider_ref, refund_id=f"re_{idempotency_key}", amount=amount,
                            status="succeeded")

    def cancel(self, provider_ref: str) -> None:
        payment = self.store.get(provider_ref)
        if payment is None:
            raise GatewayError("no such simulated payment", code="not_found")
        if payment.status == PaymentStatus.SUCCEEDED:
            raise GatewayError("a succeeded payment cannot be cancelled", code="not_cancellable")
        if payment.status not in PaymentStatus.FINAL:
            self.store.update(provider_ref, status=PaymentStatus.CANCELLED)

    # --- the hosted page's side ---------------------------------------------------

    def choose(self, provider_ref: str, outcome: str) -> tuple[SimulatedPayment, bytes, dict[str, str]]:
        """The customer's choice on the hosted page: the new state, and the signed notification to send."""
        payment = self.store.get(provider_ref)
        if payment is None or outcome not in OUTCOMES:
            raise GatewayError("no such payment or outcome", code="not_found")
        if payment.status not in PaymentStatus.FINAL:
            self.store.update(provider_ref, status=OUTCOMES[outcome], method="card")
            payment = self.store.get(provider_ref)
            assert payment is not None  # updated a moment ago
        body = json.dumps({
            "id": "evt_" + secrets.token_urlsafe(12), "type": "payment." + payment.status, "created": int(time.time()),
            "data": {"ref": payment.ref, "status": payment.status, "amount": payment.amount,
                     "currency": payment.currency, "method": payment.method},
        }, separators=(",", ":")).encode()
        return payment, body, {SIGNATURE_HEADER: sign(self.config.secret, body), "Content-Type": "application/json"}


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        lower = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lower), None)
    return value
