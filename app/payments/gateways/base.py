"""The gateway interface: what every payment provider adapter offers, in our own types.

Adapters are pure: they talk to one provider's API with their own client and key and
translate to and from the dataclasses below. No database, no Flask objects, no global
SDK configuration. Amounts are integer minor units; currencies are ISO 4217 codes.

Adding a provider means one module with a `Gateway` subclass, one entry in
`app.payments.gateways.REGISTRY`, and one row in the shared contract test
(`tests/unit/payments/test_gateway_contract.py`).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import nonmember
from typing import Any

from app.core.enums import Codes


class PaymentStatus(Codes):
    """Our status of a payment attempt, whatever the provider calls it. No words here (adapters are
    pure): a page that shows a status says it in its own words."""

    PENDING = "pending"  # created, the customer has not finished
    REQUIRES_ACTION = "requires_action"  # 3-D Secure, app confirmation, bank redirect...
    PROCESSING = "processing"  # the customer finished; the provider has not confirmed yet
    SUCCEEDED = "succeeded"  # money received (or authorised and captured)
    FAILED = "failed"  # declined or errored; the customer may try again
    CANCELLED = "cancelled"  # abandoned, expired or cancelled by us

    FINAL = nonmember((SUCCEEDED, FAILED, CANCELLED))
    # A status never moves backwards: an update is applied only when its rank is higher.
    # A "failed" or "cancelled" after "succeeded" changes nothing (refunds are their own records).
    RANK = nonmember({PENDING: 0, REQUIRES_ACTION: 1, PROCESSING: 2, FAILED: 3, CANCELLED: 3, SUCCEEDED: 4})

    @classmethod
    def moves_forward(cls, current: str, new: str) -> bool:
        if current in (cls.SUCCEEDED,):
            return False
        if current in (cls.FAILED, cls.CANCELLED):
            return new == cls.SUCCEEDED  # a late success after a timeout still counts
        return cls.RANK[new] > cls.RANK[current]


#: Where a method can be offered: (currencies, payer countries); None means "any the provider takes".
#: Local methods only make sense at home: Vipps in Norway in NOK, iDEAL in the Netherlands in EUR...
METHOD_REACH: dict[str, tuple[frozenset[str] | None, frozenset[str] | None]] = {
    "card": (None, None),
    "apple_pay": (None, None),
    "google_pay": (None, None),
    "paypal": (None, None),
    "revolut_pay": (None, None),
    "klarna": (frozenset({"EUR", "NOK", "SEK", "DKK", "GBP", "CHF", "USD", "PLN"}), None),
    "sepa_debit": (frozenset({"EUR"}), None),
    "trustly": (frozenset({"EUR", "SEK", "NOK", "DKK", "GBP", "PLN"}), None),
    "ideal": (frozenset({"EUR"}), frozenset({"NL"})),
    "bancontact": (frozenset({"EUR"}), frozenset({"BE"})),
    "eps": (frozenset({"EUR"}), frozenset({"AT"})),
    "p24": (frozenset({"EUR", "PLN"}), frozenset({"PL"})),
    "blik": (frozenset({"PLN"}), frozenset({"PL"})),
    "vipps": (frozenset({"NOK"}), frozenset({"NO"})),
    "mobilepay": (frozenset({"DKK", "EUR"}), frozenset({"DK", "FI"})),
    "swish": (frozenset({"SEK"}), frozenset({"SE"})),
    "twint": (frozenset({"CHF"}), frozenset({"CH"})),
}


def method_fits(method: str, currency: str, country: str | None) -> bool:
    """Whether a method can be offered for this currency to a payer in this country (unknown country: yes)."""
    currencies, countries = METHOD_REACH.get(method, (None, None))
    if currencies is not None and currency.upper() not in currencies:
        return False
    return countries is None or country is None or country.upper() in countries


@dataclass(frozen=True)
class Party:
    """The payer, as far as we know them: used to pre-fill the provider's form."""

    name: str
    email: str | None = None
    phone: str | None = None  # E.164
    country: str | None = None  # ISO 3166-1 alpha-2
    postcode: str | None = None
    city: str | None = None
    address_line1: str | None = None


@dataclass(frozen=True)
class CheckoutRequest:
    """Everything a provider needs to take one payment. Built from the database, never the form."""

    attempt_ref: str  # our own id of this attempt (unique, random); providers echo it back
    amount: int  # minor units
    currency: str
    invoice_number: str
    payment_reference: str  # KID or RF reference of the invoice
    description: str  # shown by the provider ("Invoice 2026-10001, Fjordlys Energi AS")
    payer: Party
    methods: tuple[str, ...]  # our method names: "card", "klarna", "vipps", "sepa_debit", ...
    locale: str  # "en", "nb" or "de"
    return_url: str  # where the provider sends the customer back (our return page)
    cancel_url: str  # where "back" or "cancel" leads (the bill page)
    idempotency_key: str  # sent on every create; the same request twice makes one payment
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Checkout:
    """What the bill page needs to let the customer pay."""

    provider: str
    provider_ref: str  # the provider's id for this payment (PaymentIntent, session, payment link...)
    status: str  # a PaymentStatus value
    redirect_url: str | None = None  # hosted page for the redirect flow
    client_secret: str | None = None  # for an embedded flow (Stripe Payment Element, Adyen Drop-in)
    client_config: Mapping[str, str] = field(default_factory=dict)  # publishable key, session data...
    expires_at: datetime | None = None


@dataclass(frozen=True)
class GatewayStatus:
    """The provider's answer to "what happened to this payment?"."""

    provider_ref: str
    status: str  # a PaymentStatus value
    amount_received: int | None = None  # minor units, when succeeded
    currency: str | None = None
    payment_id: str | None = None  # the provider's id of the money movement (charge, pspReference)
    method: str | None = None  # our method name, when the provider says which was used
    failure_reason: str | None = None  # the provider's decline code or refusal reason (see GatewayEvent)


@dataclass(frozen=True)
class GatewayEvent:
    """One verified notification from a provider, in our terms."""

    provider: str
    event_id: str  # unique per provider: stored with a unique key, applied once
    event_type: str  # the provider's own name for it, stored as-is
    provider_ref: str | None  # the payment it concerns, when it concerns one
    status: str | None  # the PaymentStatus it implies; None for types we only store
    amount: int | None = None  # minor units
    currency: str | None = None
    payment_id: str | None = None
    method: str | None = None
    occurred_at: datetime | None = None
    payload: Mapping[str, Any] = field(default_factory=dict)  # the provider's event, for the record
    # Why a payment failed, as the provider says it (a Stripe decline code, an Adyen refusal reason):
    # `payments.declines` turns it into words for the customer.
    failure_reason: str | None = None


@dataclass(frozen=True)
class RefundResult:
    provider_ref: str
    refund_id: str
    amount: int
    status: str  # "pending", "succeeded" or "failed"


#: The largest amount in minor units a payment may have (the invoice import's bound, app.billing.schemas).
MAX_AMOUNT = 10**13
_CURRENCY = re.compile(r"[A-Z]{3}")
#: The longest ids our records keep: webhook_events.event_id, event_type, provider_ref (and payments').
ID_LENGTHS = {"event_id": 200, "event_type": 100, "provider_ref": 100, "payment_id": 200}


def valid_amount(value: object) -> bool:
    """A payment's amount: an integer (not a bool) of minor units, above zero and below MAX_AMOUNT."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < MAX_AMOUNT


def check_event(event: GatewayEvent) -> None:
    """Raise WebhookError when a verified event's fields are not what a notification can hold: ids that
    are not short printable strings, an amount that is not a positive integer below MAX_AMOUNT (a
    success must say one, or none at all), a currency that is not three capital letters. A provider's
    signature says who sent it, not that it makes sense."""
    for name, longest in ID_LENGTHS.items():
        value = getattr(event, name)
        if value is None and name in ("provider_ref", "payment_id"):
            continue
        if not isinstance(value, str) or not 0 < len(value) <= longest or not value.isprintable():
            raise WebhookError(f"the notification's {name} is not a short printable string")
    if event.status is not None and event.status not in PaymentStatus.values():
        raise WebhookError("the notification's status is not one of ours")
    if event.amount is not None and not (valid_amount(event.amount) or (
            event.amount == 0 and event.status != PaymentStatus.SUCCEEDED and not isinstance(event.amount, bool))):
        raise WebhookError("the notification's amount is not a positive integer of minor units")
    if event.currency is not None and not (isinstance(event.currency, str) and _CURRENCY.fullmatch(event.currency)):
        raise WebhookError("the notification's currency is not an ISO 4217 code")
    if event.method is not None and not isinstance(event.method, str):
        raise WebhookError("the notification's method is not a string")
    if event.occurred_at is not None and not isinstance(event.occurred_at, datetime):
        raise WebhookError("the notification's time is not a time")


class GatewayError(Exception):
    """The provider refused the request or could not be reached. Never carries secrets."""

    def __init__(self, message: str, *, retryable: bool = False, code: str | None = None):
        super().__init__(message)
        self.retryable = retryable
        self.code = code


class WebhookError(Exception):
    """Not a genuine, fresh notification from the provider: answer 400 and change nothing."""


class Gateway(ABC):
    """One payment provider, configured for one creditor (its own keys and merchant account)."""

    #: registry name: "simulator", "stripe", "adyen"
    name: str = ""
    #: methods this provider can offer at all, and per currency where it matters
    supported_methods: tuple[str, ...] = ()

    def methods_for(self, currency: str, country: str | None, wanted: tuple[str, ...]) -> tuple[str, ...]:
        """The creditor's wanted methods this provider can offer for this currency and country."""
        return tuple(m for m in wanted if m in self.supported_methods and method_fits(m, currency, country))

    def content_security(self) -> Mapping[str, tuple[str, ...]]:
        """Origins the provider's own script needs on our checkout page, per CSP directive
        (script-src, frame-src, connect-src, style-src, img-src). Nothing for redirect-only flows."""
        return {}

    def check_credentials(self) -> None:
        """Ask the provider whether it accepts this gateway's keys (the console's "check the keys"):
        GatewayError when it refuses them or cannot be reached. Nothing to check without keys."""
        return None

    @abstractmethod
    def create_checkout(self, request: CheckoutRequest) -> Checkout:
        """Create the payment at the provider (idempotent on `request.idempotency_key`)."""

    @abstractmethod
    def fetch_status(self, provider_ref: str) -> GatewayStatus:
        """Ask the provider for the payment's current status (the return page never trusts its query string)."""

    def status_on_return(self, provider_ref: str, query: Mapping[str, str]) -> GatewayStatus:
        """The status when the customer is back on our return page. `query` is what the provider
        appended to the return URL: some providers answer only with a token from it (Adyen's
        sessionResult); it is passed to the provider, never taken as the status."""
        return self.fetch_status(provider_ref)

    @abstractmethod
    def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> list[GatewayEvent]:
        """Verify the signature (or raise WebhookError) and translate the notification."""

    @abstractmethod
    def refund(self, provider_ref: str, amount: int, idempotency_key: str) -> RefundResult:
        """Refund part or all of a succeeded payment (idempotent on `idempotency_key`)."""

    @abstractmethod
    def cancel(self, provider_ref: str) -> None:
        """Stop a payment that has not succeeded, so that the customer can no longer pay it (our
        invoice was cancelled or written off). Nothing to do when it is over already (cancelled,
        expired, failed); GatewayError with code "not_cancellable" when it succeeded or is being
        paid. A provider that cannot end a payment before its own expiry says so in its adapter."""
