"""Adyen, through its Checkout API (v71) and the official `Adyen` Python SDK.

Two flows, chosen per creditor: "session" (Drop-in on our bill page: POST /sessions, the
page gets the session id and data) and "link" (Adyen's hosted page: POST /paymentLinks,
the customer is redirected to the link's URL). `Checkout.provider_ref` is the session id
or the payment link id.

Our attempt ref is sent as `reference`, so Adyen's notifications carry it as
`merchantReference`: a field covered by the notification's HMAC signature. Events
therefore name the payment by our attempt ref (`GatewayEvent.provider_ref`), not by the
session or link id, which only appear in the unsigned `additionalData`.

Status of a session: Adyen only answers `GET /sessions/{id}` together with the
`sessionResult` the Drop-in hands over (`onPaymentCompleted`) or that Adyen appends to
the return URL (`?sessionId=...&sessionResult=...`). The return page passes it as
`fetch_status(ref, session_result=...)`; without it the status stays pending and the
AUTHORISATION notification decides.

Refunds work on Adyen's pspReference of the payment (`GatewayStatus.payment_id`,
`GatewayEvent.payment_id`), not on the session or link id, and need the currency.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

from Adyen import AdyenCheckoutApi, AdyenClient, util
from Adyen.exceptions import AdyenAPIResponseError, AdyenError

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

API_VERSION = "v71"
TEST_CHECKOUT_URL = "https://checkout-test.adyen.com"
LIVE_CHECKOUT_URL = re.compile(r"^https://(?P<prefix>[\w-]+)-checkout-live\.adyenpayments\.com/checkout$")
HTTP_TIMEOUT_SECONDS = 20
ADYEN_WEB_VERSION = "6.18.1"
LINK_ID_PREFIX = "PL"  # payment links' ids; sessions' start with "CS"
# Payment links' host per environment (live links are on the account's region: set payment_link_origin).
PAYMENT_LINK_ORIGINS = {"test": "https://test.adyen.link", "live": "https://eu.adyen.link"}

# Our method names and the Adyen payment method types they stand for.
METHOD_TYPES: dict[str, tuple[str, ...]] = {
    "card": ("scheme",),
    "vipps": ("vipps",),
    "mobilepay": ("mobilepay",),
    "swish": ("swish",),
    "ideal": ("ideal",),
    "klarna": ("klarna", "klarna_account", "klarna_paynow"),
    "apple_pay": ("applepay",),
    "google_pay": ("googlepay", "paywithgoogle"),
    "sepa_debit": ("sepadirectdebit",),
    "paypal": ("paypal",),
    "trustly": ("trustly",),
    "bancontact": ("bcmc",),
    "eps": ("eps",),
    "twint": ("twint",),
    "blik": ("blik",),
}
# Card brands Adyen reports as `paymentMethod` in notifications.
CARD_BRANDS = frozenset({"visa", "mc", "amex", "maestro", "diners", "discover", "jcb", "cup", "cartebancaire",
                         "dankort"})
LOCALES = {"en": "en-GB", "nb": "nb-NO", "de": "de-DE"}

SESSION_STATUSES = {
    "active": PaymentStatus.PENDING,
    "paymentPending": PaymentStatus.PROCESSING,
    "completed": PaymentStatus.SUCCEEDED,
    "refused": PaymentStatus.FAILED,
    "canceled": PaymentStatus.CANCELLED,
    "expired": PaymentStatus.CANCELLED,
}
LINK_STATUSES = {
    "active": PaymentStatus.PENDING,
    "paymentPending": PaymentStatus.PROCESSING,
    "completed": PaymentStatus.SUCCEEDED,
    "paid": PaymentStatus.SUCCEEDED,  # deprecated spelling of "completed"
    "expired": PaymentStatus.CANCELLED,
}
# Allowed in shopperStatement: letters, digits, spaces and . , ' _ - ? + * /
STATEMENT_FORBIDDEN = re.compile(r"[^A-Za-z0-9 .,'_\-?+*/]")
STATEMENT_MAX = 22
METADATA_VALUE_MAX = 80


@dataclass(frozen=True)
class AdyenConfig:
    """One creditor's Adyen account. `checkout_base_url` is the Checkout API root without the
    version: Adyen's test URL by default; required live (`https://{PREFIX}-checkout-live.adyenpayments.com/checkout`)."""

    api_key: str = field(repr=False)
    merchant_account: str
    hmac_key: str = field(repr=False)  # hex, from the webhook's settings in the Customer Area
    client_key: str
    environment: str = "test"  # "test" or "live"
    checkout_base_url: str | None = None
    flow: str = "session"  # "session" (Drop-in) or "link" (hosted payment link)
    payment_link_origin: str | None = None  # where payment links live; default per environment


#: the payment link the key check asks for: none has this id
KEY_CHECK_REF = "PL0000KEYCHECK0000"


class AdyenGateway(Gateway):
    """Adyen Checkout for one creditor, with its own SDK client and keys."""

    name = "adyen"
    supported_methods = tuple(METHOD_TYPES)

    def __init__(self, config: AdyenConfig):
        if config.environment not in ("test", "live"):
            raise ValueError("environment must be 'test' or 'live'")
        if config.flow not in ("session", "link"):
            raise ValueError("flow must be 'session' or 'link'")
        base = (config.checkout_base_url or TEST_CHECKOUT_URL).rstrip("/")
        live_prefix = None
        if config.environment == "live":
            match = LIVE_CHECKOUT_URL.match(base)
            if match is None:
                raise ValueError("live needs checkout_base_url https://{PREFIX}-checkout-live.adyenpayments.com/checkout")
            live_prefix = match["prefix"]
        self.config = config
        self._client = AdyenClient(
            xapikey=config.api_key, platform=config.environment, live_endpoint_prefix=live_prefix,
            http_force="urllib", http_timeout=HTTP_TIMEOUT_SECONDS,
        )
        self._checkout = AdyenCheckoutApi(client=self._client)
        for api in (self._checkout.payments_api, self._checkout.payment_links_api, self._checkout.modifications_api):
            api.baseUrl = f"{base}/{API_VERSION}"

    @property
    def _web_sdk(self) -> str:
        """Adyen Web (Drop-in), from Adyen's CDN for this environment, at a pinned version."""
        return f"https://checkoutshopper-{self.config.environment}.cdn.adyen.com/checkoutshopper/sdk/{ADYEN_WEB_VERSION}"

    def content_security(self) -> Mapping[str, tuple[str, ...]]:
        """Adyen Web's origins (its CSP guide) for the Drop-in; the payment links' origin for the
        hosted page, where the pay form's redirect leads (CSP form-action)."""
        if self.config.flow == "link":
            return {"form-action": (self.config.payment_link_origin or PAYMENT_LINK_ORIGINS[self.config.environment],)}
        cdn = f"https://checkoutshopper-{self.config.environment}.cdn.adyen.com"
        api = f"https://checkoutshopper-{self.config.environment}.adyen.com"
        return {"script-src": (cdn,), "style-src": (cdn,), "img-src": (cdn,), "frame-src": (api, cdn),
                "connect-src": (api,)}

    # -- creating ---------------------------------------------------------------------------

    def create_checkout(self, request: CheckoutRequest) -> Checkout:
        """A session (Drop-in) or a payment link, per the configured flow."""
        body = self._payment_fields(request)
        if self.config.flow == "link":
            body["description"] = request.description[:280]
            link = self._call(self._checkout.payment_links_api.payment_links, body,
                              idempotency_key=request.idempotency_key)
            return Checkout(
                provider=self.name, provider_ref=link["id"], status=PaymentStatus.PENDING,
                redirect_url=link["url"], expires_at=_parse_time(link.get("expiresAt")),
            )
        body["shopperStatement"] = _statement(f"Invoice {request.invoice_number}")
        session = self._call(self._checkout.payments_api.sessions, body, idempotency_key=request.idempotency_key)
        return Checkout(
            provider=self.name, provider_ref=session["id"], status=PaymentStatus.PENDING,
            client_config={
                "client_key": self.config.client_key, "session_id": session["id"],
                "session_data": session["sessionData"], "environment": self.config.environment,
                "locale": body["shopperLocale"], "js_url": f"{self._web_sdk}/adyen.js",
                "css_url": f"{self._web_sdk}/adyen.css",
            },
            expires_at=_parse_time(session.get("expiresAt")),
        )

    def _payment_fields(self, request: CheckoutRequest) -> dict[str, Any]:
        """The fields /sessions and /paymentLinks share: amount, reference, shopper pre-fill."""
        payer = request.payer
        first, _, last = payer.name.strip().rpartition(" ")
        metadata = {**request.metadata, "invoice_number": request.invoice_number,
                    "payment_reference": request.payment_reference}
        body: dict[str, Any] = {
            "merchantAccount": self.config.merchant_account,
            "amount": {"value": request.amount, "currency": request.currency},
            "reference": request.attempt_ref,
            "returnUrl": request.return_url,
            "shopperLocale": LOCALES.get(request.locale, LOCALES["en"]),
            "allowedPaymentMethods": [t for m in request.methods for t in METHOD_TYPES.get(m, ())],
            "metadata": {k: str(v)[:METADATA_VALUE_MAX] for k, v in metadata.items()},
        }
        optional = {"countryCode": payer.country, "shopperEmail": payer.email, "telephoneNumber": payer.phone}
        body.update({k: v for k, v in optional.items() if v})
        if first:  # Adyen's Name needs both parts: a one-word name is left to the shopper
            body["shopperName"] = {"firstName": first.strip(), "lastName": last}
        return body

    # -- status -------------------------------------------------------------------------------

    def fetch_status(self, provider_ref: str, *, session_result: str | None = None) -> GatewayStatus:
        """A payment link's status, or a session's with the `sessionResult` the return page received."""
        if session_result is not None:
            result = self._call(
                self._checkout.payments_api.get_result_of_payment_session, quote(provider_ref, safe=""),
                query_parameters={"sessionResult": quote(session_result, safe="")},
            )
            return GatewayStatus(provider_ref=provider_ref,
                                 status=SESSION_STATUSES.get(result.get("status", ""), PaymentStatus.PENDING))
        if not provider_ref.startswith(LINK_ID_PREFIX):  # a session: only its sessionResult tells
            return GatewayStatus(provider_ref=provider_ref, status=PaymentStatus.PENDING)
        link = self._call(self._checkout.payment_links_api.get_payment_link, quote(provider_ref, safe=""))
        status = LINK_STATUSES.get(link.get("status", ""), PaymentStatus.PENDING)
        amount = link.get("amount") or {}
        succeeded = status == PaymentStatus.SUCCEEDED
        return GatewayStatus(
            provider_ref=provider_ref, status=status, currency=amount.get("currency"),
            amount_received=amount.get("value") if succeeded else None,
        )

    def status_on_return(self, provider_ref: str, query: Mapping[str, str]) -> GatewayStatus:
        """Adyen appends `sessionId` and `sessionResult` to a session's return URL."""
        return self.fetch_status(provider_ref, session_result=query.get("sessionResult") or None)

    # -- notifications ------------------------------------------------------------------------

    def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> list[GatewayEvent]:
        """Verify every item's HMAC signature with this creditor's key, then translate them all."""
        try:
            notification = json.loads(body)
            items = [entry["NotificationRequestItem"] for entry in notification["notificationItems"]]
        except (ValueError, TypeError, KeyError) as exc:
            raise WebhookError("not an Adyen notification") from exc
        if not items or not all(isinstance(item, dict) for item in items):
            raise WebhookError("not an Adyen notification")
        if str(notification.get("live")).lower() != str(self.config.environment == "live").lower():
            raise WebhookError("notification from the other Adyen environment")
        for item in items:
            if not self._signed(item):
                raise WebhookError("invalid HMAC signature")
        try:
            return [self._event(item) for item in items]
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise WebhookError("a notification item is not one of a payment") from exc

    def _signed(self, item: dict[str, Any]) -> bool:
        """The SDK's own check of one NotificationRequestItem; anything malformed is unsigned."""
        signature = (item.get("additionalData") or {}).get("hmacSignature")
        if not isinstance(signature, str) or not signature:
            return False
        try:
            return bool(util.is_valid_hmac_notification(item, self.config.hmac_key))
        except (ValueError, TypeError, KeyError):
            return False

    def _event(self, item: dict[str, Any]) -> GatewayEvent:
        code, success = item.get("eventCode", ""), str(item.get("success")).lower() == "true"
        status = None
        if code == "AUTHORISATION":
            status = PaymentStatus.SUCCEEDED if success else PaymentStatus.FAILED
        elif code == "CANCELLATION" and success:
            status = PaymentStatus.CANCELLED
        amount = item.get("amount") or {}
        return GatewayEvent(
            provider=self.name,
            event_id=f"{item.get('pspReference')}:{code}:{str(success).lower()}",
            event_type=code,
            provider_ref=item.get("merchantReference") or None,
            status=status,
            amount=amount.get("value"),
            currency=amount.get("currency"),
            payment_id=item.get("originalReference") or item.get("pspReference"),
            method=_our_method(item.get("paymentMethod")),
            occurred_at=_parse_time(item.get("eventDate")),
            payload=item,
            # A refused AUTHORISATION names its refusal reason in `reason` ("Not enough balance").
            failure_reason=str(item.get("reason") or "")[:200] or None if status == PaymentStatus.FAILED else None,
        )

    # -- refunds ------------------------------------------------------------------------------

    def refund(self, provider_ref: str, amount: int, idempotency_key: str, *,
               currency: str | None = None) -> RefundResult:
        """Refund `amount` of the payment with pspReference `provider_ref`; confirmed later by a REFUND notification."""
        if not currency:
            raise GatewayError("Adyen refunds need the payment's currency", code="currency_required")
        body = {
            "merchantAccount": self.config.merchant_account,
            "amount": {"value": amount, "currency": currency},
            "reference": idempotency_key,
        }
        result = self._call(self._checkout.modifications_api.refund_captured_payment, body,
                            quote(provider_ref, safe=""), idempotency_key=idempotency_key)
        return RefundResult(provider_ref=provider_ref, refund_id=result["pspReference"], amount=amount,
                            status="pending")

    # -- cancelling ---------------------------------------------------------------------------

    def cancel(self, provider_ref: str) -> None:
        """Expire a payment link (PATCH /paymentLinks/{id}, status "expired"). A session cannot be
        ended: Adyen has no call for it, and it expires by itself (an hour after it was made, Adyen's
        default), so this is a no-op for one; a payment made in it meanwhile is still notified, and
        recorded as owed back by the app."""
        if not provider_ref.startswith(LINK_ID_PREFIX):
            return
        link = self._call(self._checkout.payment_links_api.get_payment_link, quote(provider_ref, safe=""))
        status = LINK_STATUSES.get(str(link.get("status")), PaymentStatus.PENDING)
        if status == PaymentStatus.CANCELLED:
            return
        if status != PaymentStatus.PENDING:
            raise GatewayError(f"an Adyen payment link in status {link.get('status')} cannot be expired",
                               code="not_cancellable")
        self._call(self._checkout.payment_links_api.update_payment_link, {"status": "expired"},
                   quote(provider_ref, safe=""))

    # -- the SDK ------------------------------------------------------------------------------

    def check_credentials(self) -> None:
        """Read a payment link that does not exist: Adyen's 404 says it accepted the API key (a wrong
        key gets 401, a key without the Checkout role 403)."""
        try:
            self._checkout.payment_links_api.get_payment_link(KEY_CHECK_REF)
        except AdyenAPIResponseError as exc:
            if int(exc.status_code or 0) == 404:
                return
            raise _api_error(exc) from None
        except AdyenError as exc:
            raise GatewayError(f"Adyen client not configured: {type(exc).__name__}", code="configuration") from None
        except OSError as exc:
            raise GatewayError(f"Adyen unreachable: {type(exc).__name__}", retryable=True) from None

    def _call(self, method: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """Call one SDK method; its errors become GatewayError, without request, headers or key."""
        try:
            result = method(*args, **kwargs)
        except AdyenAPIResponseError as exc:
            raise _api_error(exc) from None
        except AdyenError as exc:  # the SDK refused before sending: no API key, bad platform
            raise GatewayError(f"Adyen client not configured: {type(exc).__name__}", code="configuration") from None
        except OSError as exc:  # connection refused, DNS, TLS, timeout (urllib's URLError too)
            raise GatewayError(f"Adyen unreachable: {type(exc).__name__}", retryable=True) from None
        if not isinstance(result.message, dict):
            raise GatewayError("Adyen answered something other than JSON", retryable=True)
        return result.message


def _api_error(exc: AdyenAPIResponseError) -> GatewayError:
    """Adyen's error answer in our terms: retryable for 5xx, 429 and transient idempotency conflicts."""
    status = int(exc.status_code or 0)
    body = exc.message if isinstance(exc.message, dict) else {}
    transient = str((exc.headers or {}).get("transient-error", "")).lower() == "true"
    retryable = status >= 500 or status == 429 or transient
    code = str(body.get("errorCode") or status)
    detail = str(body.get("message") or "no details")[:200]
    return GatewayError(f"Adyen refused the request ({status}, {code}): {detail}", retryable=retryable, code=code)


def _our_method(adyen_type: str | None) -> str | None:
    """Our name for the payment method Adyen reports (card brands are "card")."""
    if not adyen_type:
        return None
    if adyen_type in CARD_BRANDS or adyen_type == "scheme":
        return "card"
    return next((ours for ours, types in METHOD_TYPES.items() if adyen_type in types), adyen_type)


def _statement(text: str) -> str:
    """Text for the shopper's bank statement, in the characters and length Adyen recommends."""
    return STATEMENT_FORBIDDEN.sub("", text)[:STATEMENT_MAX].strip()


def _parse_time(value: Any) -> datetime | None:
    """An ISO 8601 time from Adyen, or None."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
