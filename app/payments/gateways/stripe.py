"""Stripe: a PaymentIntent per attempt, paid in the Payment Element on our own pay step
(flow "element"), or a Checkout Session on Stripe's hosted page (flow "checkout", for creditors
who prefer a redirect). `Checkout.provider_ref` is the PaymentIntent id or the session id
(`cs_...`); status, webhooks and refunds follow whichever it is.

One `stripe.StripeClient` per adapter (never the SDK's global `stripe.api_key`), so two
creditors with their own Stripe accounts never share keys.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import stripe
from stripe.params import PaymentIntentCreateParams, PaymentIntentRetrieveParams
from stripe.params.checkout import SessionCreateParams

from app.payments.gateways.base import (
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

#: our method name -> Stripe's payment method type (Apple Pay and Google Pay ride on "card")
METHOD_TYPES: dict[str, str] = {
    "card": "card",
    "apple_pay": "card",
    "google_pay": "card",
    "klarna": "klarna",
    "sepa_debit": "sepa_debit",
    "ideal": "ideal",
    "bancontact": "bancontact",
    "eps": "eps",
    "p24": "p24",
    "blik": "blik",
    "mobilepay": "mobilepay",
    "vipps": "vipps",
    "swish": "swish",
    "twint": "twint",
    "paypal": "paypal",
    "revolut_pay": "revolut_pay",
}

#: PaymentIntent status -> ours ("requires_payment_method" is failed when the last try was declined)
INTENT_STATUSES: dict[str, str] = {
    "requires_payment_method": PaymentStatus.PENDING,
    "requires_confirmation": PaymentStatus.PENDING,
    "requires_action": PaymentStatus.REQUIRES_ACTION,
    "processing": PaymentStatus.PROCESSING,
    "requires_capture": PaymentStatus.PROCESSING,  # authorised, not captured yet
    "succeeded": PaymentStatus.SUCCEEDED,
    "canceled": PaymentStatus.CANCELLED,
}

#: webhook event type -> the status it implies; other types are stored only
EVENT_STATUSES: dict[str, str] = {
    "payment_intent.succeeded": PaymentStatus.SUCCEEDED,
    "payment_intent.payment_failed": PaymentStatus.FAILED,
    "payment_intent.canceled": PaymentStatus.CANCELLED,
    "payment_intent.processing": PaymentStatus.PROCESSING,
    "payment_intent.requires_action": PaymentStatus.REQUIRES_ACTION,
    "payment_intent.amount_capturable_updated": PaymentStatus.PROCESSING,
    "checkout.session.completed": PaymentStatus.PROCESSING,  # refined by the session's payment_status
    "checkout.session.async_payment_succeeded": PaymentStatus.SUCCEEDED,
    "checkout.session.async_payment_failed": PaymentStatus.FAILED,
    "checkout.session.expired": PaymentStatus.CANCELLED,
}
CHECKOUT_LOCALES = {"en": "en", "nb": "nb", "de": "de"}

CANCELLABLE = ("requires_payment_method", "requires_confirmation", "requires_action", "requires_capture")
REFUND_STATUSES = {"succeeded": "succeeded", "failed": "failed", "canceled": "failed"}
WEBHOOK_TOLERANCE = 300  # seconds
STRIPE_JS = "https://js.stripe.com/v3/"
STRIPE_CHECKOUT = "https://checkout.stripe.com"


@dataclass(frozen=True)
class StripeConfig:
    """One creditor's Stripe account. The secrets stay out of repr()."""

    secret_key: str = field(repr=False)
    publishable_key: str
    webhook_secret: str = field(repr=False)
    api_base: str | None = None  # None: Stripe's own API
    js_url: str | None = None  # None: Stripe.js from js.stripe.com (or the stand-in of a local api_base)
    flow: str = "element"

    @property
    def script_url(self) -> str:
        """Stripe.js; a local API (localstripe, in tests and demos) serves its stand-in at the same path."""
        if self.js_url:
            return self.js_url
        return f"{self.api_base.rstrip('/')}/js.stripe.com/v3/" if self.api_base else STRIPE_JS

    def __post_init__(self) -> None:
        if self.flow not in ("element", "checkout"):
            raise ValueError(f"unsupported Stripe flow {self.flow!r}: 'element' or 'checkout'")


#: the payment the key check asks for: none has this id
KEY_CHECK_REF = "pi_keycheck0000000000000000"


class StripeGateway(Gateway):
    """PaymentIntents for the Payment Element; status by retrieval or by signed webhook."""

    name = "stripe"
    supported_methods = tuple(METHOD_TYPES)

    def __init__(self, config: StripeConfig) -> None:
        self.config = config
        self._client = stripe.StripeClient(
            config.secret_key, base_addresses={"api": config.api_base or stripe.DEFAULT_API_BASE}
        )

    def content_security(self) -> Mapping[str, tuple[str, ...]]:
        """What Stripe.js and the Payment Element need (Stripe's CSP guide), or the local stand-in's origin;
        for the hosted Checkout, where the pay form's redirect leads."""
        if self.config.flow == "checkout":
            return {"form-action": (_origin(self.config.api_base) if self.config.api_base else STRIPE_CHECKOUT,)}
        script = _origin(self.config.script_url)
        api = _origin(self.config.api_base) if self.config.api_base else "https://api.stripe.com"
        frames = (script, "https://hooks.stripe.com") if script == "https://js.stripe.com" else (script,)
        return {"script-src": (script,), "frame-src": frames, "connect-src": (api, script)}

    def create_checkout(self, request: CheckoutRequest) -> Checkout:
        types = list(dict.fromkeys(METHOD_TYPES[m] for m in request.methods if m in METHOD_TYPES))
        if not types:
            raise GatewayError("none of the requested payment methods is offered by Stripe", code="no_methods")
        if self.config.flow == "checkout":
            return self._hosted_checkout(request, types)
        params: PaymentIntentCreateParams = {
            "amount": request.amount,
            "currency": request.currency.lower(),
            "description": request.description,
            "metadata": {
                **request.metadata,
                "invoice_number": request.invoice_number,
                "payment_reference": request.payment_reference,
                "attempt_ref": request.attempt_ref,
            },
            "allowed_payment_method_types": types,  # API 2026-09-30.endive+: payment_method_types is refused
        }
        if request.payer.email:
            params["receipt_email"] = request.payer.email
        with self._errors("create the payment"):
            intent = self._client.v1.payment_intents.create(
                params=params, options={"idempotency_key": request.idempotency_key}
            ).to_dict()
        payer = request.payer
        client_config = {"publishable_key": self.config.publishable_key, "name": payer.name,
                         "js_url": self.config.script_url}
        client_config |= {k: v for k, v in (("email", payer.email), ("country", payer.country)) if v}
        return Checkout(
            provider=self.name,
            provider_ref=intent["id"],
            status=_intent_status(intent),
            client_secret=intent["client_secret"],
            client_config=client_config,
        )

    def _hosted_checkout(self, request: CheckoutRequest, types: list[str]) -> Checkout:
        """A Checkout Session: Stripe's hosted page, back to our return page (or the bill on cancel)."""
        metadata = {**request.metadata, "invoice_number": request.invoice_number,
                    "payment_reference": request.payment_reference, "attempt_ref": request.attempt_ref}
        intent_data: dict[str, Any] = {"description": request.description, "metadata": metadata}
        params: SessionCreateParams = {
            "mode": "payment",
            "line_items": [{"quantity": 1, "price_data": {
                "currency": request.currency.lower(), "unit_amount": request.amount,
                "product_data": {"name": request.description}}}],
            "allowed_payment_method_types": types,
            "payment_intent_data": intent_data,  # type: ignore[typeddict-item]
            "metadata": metadata,
            "client_reference_id": request.attempt_ref,
            "success_url": request.return_url,
            "cancel_url": request.cancel_url,
            "locale": CHECKOUT_LOCALES.get(request.locale, "auto"),
        }
        if request.payer.email:
            params["customer_email"] = request.payer.email
            intent_data["receipt_email"] = request.payer.email
        with self._errors("create the payment"):
            session = self._client.v1.checkout.sessions.create(
                params=params, options={"idempotency_key": request.idempotency_key}
            ).to_dict()
        expires = session.get("expires_at")
        return Checkout(
            provider=self.name, provider_ref=session["id"], status=PaymentStatus.PENDING, redirect_url=session["url"],
            expires_at=datetime.fromtimestamp(expires, tz=UTC) if expires else None,
        )

    def fetch_status(self, provider_ref: str) -> GatewayStatus:
        if provider_ref.startswith("cs_"):
            return self._session_status(provider_ref)
        intent = self._retrieve(provider_ref, expand=["payment_method"])
        status = _intent_status(intent)
        error = intent.get("last_payment_error") or {}
        succeeded = status == PaymentStatus.SUCCEEDED
        return GatewayStatus(
            provider_ref=intent["id"],
            status=status,
            amount_received=intent.get("amount_received") if succeeded else None,
            currency=intent["currency"].upper(),
            payment_id=_id(intent.get("latest_charge")) if succeeded else None,
            method=_method(intent),
            failure_reason=_failure_reason(error),
        )

    def _session_status(self, session_id: str) -> GatewayStatus:
        with self._errors("read the payment"):
            session = self._client.v1.checkout.sessions.retrieve(
                session_id, params={"expand": ["payment_intent"]}).to_dict()
        status = _session_status(session)
        expanded = session.get("payment_intent")
        intent: Mapping[str, Any] = expanded if isinstance(expanded, Mapping) else {}
        succeeded = status == PaymentStatus.SUCCEEDED
        return GatewayStatus(
            provider_ref=session_id, status=status, currency=(session.get("currency") or "").upper() or None,
            amount_received=session.get("amount_total") if succeeded else None,
            payment_id=intent.get("id") or _id(session.get("payment_intent")),
            method=_method(intent) if intent else None,
        )

    def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> list[GatewayEvent]:
        signature = next((v for k, v in headers.items() if k.lower() == "stripe-signature"), None)
        try:
            event = self._client.construct_event(
                body, signature, self.config.webhook_secret, tolerance=WEBHOOK_TOLERANCE
            ).to_dict()
        except stripe.SignatureVerificationError as error:
            raise WebhookError("Stripe webhook signature is missing, invalid or too old") from error
        except ValueError as error:  # not JSON, or not a snapshot event
            raise WebhookError("Stripe webhook body is not an event") from error
        live_keys = self.config.secret_key.startswith(("sk_live_", "rk_live_"))
        if "livemode" in event and bool(event["livemode"]) != live_keys:  # a test event to live keys, or back
            raise WebhookError("Stripe webhook event is of the other mode than the keys")
        try:
            return [_event(event)]
        except (KeyError, TypeError, AttributeError, ValueError, OverflowError, OSError) as error:
            raise WebhookError("Stripe webhook event is not one of a payment") from error

    def refund(self, provider_ref: str, amount: int, idempotency_key: str) -> RefundResult:
        intent_id = provider_ref
        if provider_ref.startswith("cs_"):  # a Checkout Session: refund its PaymentIntent
            intent_id = self._session_status(provider_ref).payment_id or ""
            if not intent_id:
                raise GatewayError("this Stripe Checkout was not paid", code="not_refundable")
        with self._errors("refund the payment"):
            refund = self._client.v1.refunds.create(
                params={"payment_intent": intent_id, "amount": amount},
                options={"idempotency_key": idempotency_key},
            )
        return RefundResult(
            provider_ref=provider_ref,
            refund_id=refund.id,
            amount=refund.amount,
            status=REFUND_STATUSES.get(refund.status or "", "pending"),
        )

    def cancel(self, provider_ref: str) -> None:
        """Cancel the PaymentIntent (expire the Checkout Session); a no-op when it is cancelled already,
        GatewayError when it is too late."""
        if provider_ref.startswith("cs_"):
            status = self._session_status(provider_ref).status
            if status == PaymentStatus.PENDING:
                with self._errors("cancel the payment"):
                    self._client.v1.checkout.sessions.expire(provider_ref)
            elif status != PaymentStatus.CANCELLED:
                raise GatewayError(f"a Stripe Checkout in status {status} cannot be cancelled", code="not_cancellable")
            return
        status = self._retrieve(provider_ref)["status"]
        if status == "canceled":
            return
        if status not in CANCELLABLE:
            raise GatewayError(f"a Stripe payment in status {status} cannot be cancelled", code="not_cancellable")
        with self._errors("cancel the payment"):
            self._client.v1.payment_intents.cancel(provider_ref)

    def check_credentials(self) -> None:
        """Read a payment that does not exist: Stripe's "no such payment" (404) says it accepted the key."""
        try:
            self._retrieve(KEY_CHECK_REF)
        except GatewayError as error:
            if isinstance(error.__cause__, stripe.InvalidRequestError) and error.__cause__.http_status == 404:
                return
            raise

    def _retrieve(self, provider_ref: str, expand: list[str] | None = None) -> dict[str, Any]:
        with self._errors("read the payment"):
            params: PaymentIntentRetrieveParams = {"expand": expand} if expand else {}
            return self._client.v1.payment_intents.retrieve(provider_ref, params=params).to_dict()

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        """Stripe's exceptions as GatewayError: retryable when Stripe was unreachable, busy or failing."""
        try:
            yield
        except stripe.StripeError as error:
            status = error.http_status or 0
            retryable = isinstance(error, (stripe.APIConnectionError, stripe.RateLimitError)) or status >= 500
            reason = (error.user_message or type(error).__name__).replace(self.config.secret_key, "[secret key]")
            code = error.code or type(error).__name__
            raise GatewayError(f"Stripe could not {action}: {reason}", retryable=retryable, code=code) from error


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _intent_status(intent: Mapping[str, Any]) -> str:
    if intent["status"] == "requires_payment_method" and intent.get("last_payment_error"):
        return PaymentStatus.FAILED
    return INTENT_STATUSES.get(intent["status"], PaymentStatus.PENDING)


def _failure_reason(error: Mapping[str, Any] | None) -> str | None:
    """Stripe's reason for a failed payment: the issuer's decline code where there is one
    (`insufficient_funds`), else the error's code (`expired_card`, `authentication_required`)."""
    if not isinstance(error, Mapping):
        return None
    reason = error.get("decline_code") or error.get("code") or error.get("message")
    return str(reason)[:200] if reason else None


def _id(value: str | Mapping[str, Any] | None) -> str | None:
    """An object's id, whether Stripe sent the id or the expanded object."""
    return value.get("id") if isinstance(value, Mapping) else value


def _method(intent: Mapping[str, Any]) -> str | None:
    """Our name for the method used: the expanded payment method, else the only one offered."""
    method = intent.get("payment_method")
    if isinstance(method, Mapping):
        if method.get("type") == "card":
            wallet = (method.get("card") or {}).get("wallet") or {}
            return wallet.get("type") if wallet.get("type") in METHOD_TYPES else "card"
        return method.get("type")
    types = intent.get("payment_method_types") or []
    return types[0] if len(types) == 1 else None


def _session_status(session: Mapping[str, Any]) -> str:
    """A Checkout Session's status: paid (or needing no payment) is succeeded; complete but unpaid
    is a delayed method still processing; expired is cancelled."""
    if session.get("status") == "expired":
        return PaymentStatus.CANCELLED
    if session.get("payment_status") in ("paid", "no_payment_required"):
        return PaymentStatus.SUCCEEDED
    return PaymentStatus.PROCESSING if session.get("status") == "complete" else PaymentStatus.PENDING


def _event(event: Mapping[str, Any]) -> GatewayEvent:
    obj = event["data"]["object"]
    status = EVENT_STATUSES.get(event["type"])
    kind = obj.get("object")
    if kind == "checkout.session":
        if event["type"] == "checkout.session.completed":
            status = _session_status(obj)
        provider_ref, payment_id = obj.get("id"), _id(obj.get("payment_intent"))
    elif kind == "payment_intent":
        provider_ref, payment_id = obj.get("id"), _id(obj.get("latest_charge"))
    elif kind == "charge":
        provider_ref, payment_id = _id(obj.get("payment_intent")), obj.get("id")
    else:
        provider_ref, payment_id = _id(obj.get("payment_intent")), None
    amount = obj.get("amount_received") if status == PaymentStatus.SUCCEEDED else obj.get("amount")
    if kind == "checkout.session":
        amount = obj.get("amount_total")
    currency = obj.get("currency")
    return GatewayEvent(
        provider="stripe",
        event_id=event["id"],
        event_type=event["type"],
        provider_ref=provider_ref,
        status=status,
        amount=amount,
        currency=currency.upper() if currency else None,
        payment_id=payment_id,
        method=_method(obj) if kind == "payment_intent" else None,
        occurred_at=datetime.fromtimestamp(event["created"], tz=UTC) if event.get("created") else None,
        payload=event,
        failure_reason=_failure_reason(obj.get("last_payment_error")) if status == PaymentStatus.FAILED else None,
    )
