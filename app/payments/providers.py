"""The gateways a creditor offers, each built for that creditor (its own keys and secrets).

A creditor chooses its providers and methods (`CreditorGateway` rows, in its order); the
credentials come from the PAYMENT_GATEWAYS setting. Where no provider of a creditor has
credentials, the test-mode simulator stands in (outside production), offering the methods
the creditor chose, so demos and tests can pay end to end without keys.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import dataclass, field

from flask import current_app
from sqlalchemy import select

from app.creditors.models import Creditor
from app.errors import InvalidData
from app.extensions import db
from app.payments import gateways as registry
from app.payments.gateways.base import METHOD_REACH, Gateway
from app.payments.gateways.simulator import SimulatorConfig, SimulatorGateway
from app.payments.models import CreditorGateway
from app.payments.simulator_store import DatabaseSimulatorStore

log = logging.getLogger(__name__)

#: the flows a creditor may choose per provider (the first is the default)
FLOWS = {"simulator": (None,), "stripe": ("element", "checkout"), "adyen": ("session", "link")}
#: what the simulator offers for a creditor that chose nothing yet (filtered by currency and country)
DEFAULT_METHODS = ("card", "apple_pay", "google_pay", "vipps", "mobilepay", "swish", "ideal", "klarna")


@dataclass(frozen=True)
class PayOption:
    """One way to pay on a bill page: a provider, the methods it offers for that bill, and the
    gateway to start the payment with."""

    provider: str
    methods: tuple[str, ...]
    gateway: Gateway = field(repr=False, compare=False)
    test_mode: bool = False

    @property
    def redirect_origins(self) -> tuple[str, ...]:
        """Where the pay form may lead (a hosted page): the bill page's CSP form-action needs them."""
        return tuple(self.gateway.content_security().get("form-action", ()))


def simulator_secret(creditor: Creditor) -> str:
    """The creditor's simulator signing secret, derived from the app's secret (nothing to store)."""
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, f"simulator:{creditor.slug}".encode(), hashlib.sha256).hexdigest()


def simulator_for(creditor: Creditor) -> SimulatorGateway:
    base = creditor.portal_base_url or current_app.config["PORTAL_BASE_URL"]
    config = SimulatorConfig(secret=simulator_secret(creditor), page_base_url=base)
    return SimulatorGateway(config, DatabaseSimulatorStore())


def creditor_gateways(creditor_id: int) -> list[CreditorGateway]:
    """The creditor's chosen providers, enabled ones, in its order."""
    return list(db.session.scalars(
        select(CreditorGateway)
        .where(CreditorGateway.creditor_id == creditor_id, CreditorGateway.enabled.is_(True))
        .order_by(CreditorGateway.position, CreditorGateway.id)
    ))


def _keyed(slug: str, provider: str, flow: str | None = None) -> Gateway | None:
    """The provider's gateway with the creditor's keys from PAYMENT_GATEWAYS (None without them),
    kept per process: the keys change only with a deploy, and SDK clients are reused."""
    settings = current_app.config["PAYMENT_GATEWAYS"].get(slug, {}).get(provider)
    if not settings or provider not in registry.REGISTRY:
        return None
    cache = current_app.extensions.setdefault("payment_gateways", {})
    key = (slug, provider, flow)
    if key not in cache:
        try:
            cache[key] = registry.build(provider, {**settings, **({"flow": flow} if flow else {})})
        except (TypeError, ValueError) as exc:  # the message names the setting, never its value
            log.error("%s settings of creditor %s are unusable: %s", provider, slug, exc)
            return None
    return cache[key]


def _setup(creditor: Creditor) -> tuple[dict[str, Gateway], dict[str, tuple[str, ...]]]:
    """Gateways by name and the methods the creditor chose for each, in the creditor's order."""
    choices = creditor_gateways(creditor.id)
    gateways: dict[str, Gateway] = {}
    methods: dict[str, tuple[str, ...]] = {}
    for choice in choices:
        gateway = _keyed(creditor.slug, choice.provider, choice.flow)
        if gateway is not None:
            gateways[gateway.name] = gateway
            methods[gateway.name] = tuple(choice.methods or ())
    if not gateways and current_app.config["PAYMENTS_SIMULATOR"]:
        chosen = tuple(dict.fromkeys(m for choice in choices for m in choice.methods or ()))
        gateways["simulator"] = simulator_for(creditor)
        methods["simulator"] = chosen or DEFAULT_METHODS
    return gateways, methods


def gateways_for(creditor: Creditor) -> dict[str, Gateway]:
    """Name -> gateway, in the creditor's order: those with credentials, else the simulator
    (where PAYMENTS_SIMULATOR is on, the default outside production)."""
    return _setup(creditor)[0]


def pay_options(creditor: Creditor, currency: str, country: str | None) -> list[PayOption]:
    """What the bill page offers for a bill in this currency to a payer in this country."""
    gateways, methods = _setup(creditor)
    options = []
    for name, gateway in gateways.items():
        fitting = gateway.methods_for(currency, country, methods[name])
        if fitting:
            options.append(PayOption(name, fitting, gateway, test_mode=name == "simulator"))
    return options


def receives(creditor: Creditor, *, currency: str) -> bool:
    """Whether a provider the creditor configured (with its credentials; not the test-mode simulator that
    stands in without them) offers a method for `currency`: billing asks before it imports an invoice in
    a currency other than the bank account's (`billing.services.currency_receivable`)."""
    for choice in creditor_gateways(creditor.id):
        gateway = _keyed(creditor.slug, choice.provider, choice.flow)
        if gateway is not None and gateway.methods_for(currency, None, tuple(choice.methods or ())):
            return True
    return False


def offer_gateway(
    creditor: Creditor, provider: str, methods: list[str], *, flow: str | None = None, position: int | None = None,
) -> CreditorGateway:
    """The creditor offers `provider` with these methods (in this order) on its bill pages; a
    second call changes the choice. Credentials are set apart, in PAYMENT_GATEWAYS."""
    errors = {}
    if provider not in registry.PROVIDERS:
        errors["provider"] = f"unknown provider; one of {', '.join(registry.PROVIDERS)}"
    unknown = [m for m in methods if m not in METHOD_REACH]
    if unknown or not methods:
        errors["methods"] = f"unknown methods {', '.join(unknown)}" if unknown else "choose at least one method"
    if provider in FLOWS and flow not in FLOWS[provider]:
        if flow is None:
            flow = FLOWS[provider][0]
        else:
            errors["flow"] = f"{provider} offers {', '.join(f for f in FLOWS[provider] if f) or 'no flows to choose'}"
    if errors:
        raise InvalidData(errors)
    choice = db.session.scalar(select(CreditorGateway).where(
        CreditorGateway.creditor_id == creditor.id, CreditorGateway.provider == provider))
    if choice is None:
        last = max((c.position for c in creditor_gateways(creditor.id)), default=-1)
        choice = CreditorGateway(creditor_id=creditor.id, provider=provider, position=last + 1)
        db.session.add(choice)
    choice.methods, choice.flow, choice.enabled = list(dict.fromkeys(methods)), flow, True
    if position is not None:
        choice.position = position
    db.session.flush()
    return choice


def withdraw_gateway(creditor: Creditor, provider: str) -> bool:
    """The creditor stops offering `provider` (its past payments stay). False if it did not offer it."""
    choice = db.session.scalar(select(CreditorGateway).where(
        CreditorGateway.creditor_id == creditor.id, CreditorGateway.provider == provider,
        CreditorGateway.enabled.is_(True)))
    if choice is None:
        return False
    choice.enabled = False
    db.session.flush()
    return True


def payment_gateway(slug: str, provider: str) -> tuple[int, Gateway] | None:
    """(creditor id, gateway) for a payment already made, or a notification about one: from the
    keys alone, not from what the creditor offers today, since a provider it stopped offering still
    reports on the payments made before. None when this instance has no keys for it. The creditor's
    id is kept per process (it does not change), so a notification, and above all a duplicate,
    costs no query before its own."""
    ids = current_app.extensions.setdefault("creditor_ids", {})
    creditor = None
    if slug not in ids:
        creditor = db.session.scalar(select(Creditor).where(Creditor.slug == slug))
        if creditor is None:
            return None  # not kept: a creditor created later is found then
        ids[slug] = creditor.id
    if provider != "simulator":
        gateway = _keyed(slug, provider)
    elif current_app.config["PAYMENTS_SIMULATOR"]:
        cache, key = current_app.extensions.setdefault("payment_gateways", {}), (slug, "simulator", None)
        if key not in cache:
            found = creditor or db.session.get(Creditor, ids[slug])
            assert found is not None  # its id was read a moment ago
            cache[key] = simulator_for(found)
        gateway = cache[key]
    else:
        gateway = None
    return (ids[slug], gateway) if gateway is not None else None
