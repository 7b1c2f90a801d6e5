"""The gateways a creditor offers, each built for that creditor (its own keys and secrets).

A creditor chooses its providers and methods (`CreditorGateway` rows, in its order); the
credentials come from the PAYMENT_GATEWAYS setting, or, where the instance has none for the
creditor's provider, from the creditor console (stored on the row, encrypted: `set_credentials`).
Where no provider of a creditor has credentials, the test-mode simulator stands in (outside
production), offering the methods
the creditor chose, so demos and tests can pay end to end without keys.

Test bills (`livemode=False`) use a second set of keys, the provider's own test keys stored from the
console beside the live ones (`test_credentials_encrypted`), and never the live ones nor the
instance's; live bills never use the test set (docs/api.md, "Test mode").
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from dataclasses import dataclass, field

from flask import current_app
from sqlalchemy import select

from app.creditors.models import Creditor
from app.crypto import SecretUnreadable, decrypt, encrypt
from app.errors import InvalidData
from app.extensions import db
from app.models import utcnow
from app.payments import gateways as registry
from app.payments.gateways.base import METHOD_REACH, Gateway, GatewayError
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


@dataclass(frozen=True)
class Choice:
    """A provider the creditor offers, as the bill page and the pay form need it (`_choices`)."""

    provider: str
    flow: str | None
    methods: tuple[str, ...]
    credentials_encrypted: str | None
    test_credentials_encrypted: str | None


def changed_gateways(creditor: Creditor) -> None:
    """What the creditor offers changed: its `updated_at` moves, as for any change of the creditor's
    row, so that the bill pages cached under it (`page_cache`, keyed by what `access.services`
    reads) and the choices kept per process (`_choices`) are made again at their next request."""
    creditor.updated_at = utcnow()


def _choices(creditor: Creditor) -> tuple[Choice, ...]:
    """`creditor_gateways` as plain values, kept per process for the creditor's `updated_at` (every
    change of its providers moves it: `changed_gateways`): each bill page rendered and each payment
    started read them, a statement each, for a choice that changes a few times in a creditor's life."""
    kept: dict[int, tuple] = current_app.extensions.setdefault("gateway_choices", {})
    version = creditor.updated_at
    found = kept.get(creditor.id)
    if found is not None and version is not None and found[0] == version:
        return found[1]
    choices = tuple(Choice(c.provider, c.flow, tuple(c.methods or ()), c.credentials_encrypted,
                           c.test_credentials_encrypted) for c in creditor_gateways(creditor.id))
    if version is not None:
        kept[creditor.id] = (version, choices)
    return choices


def _keyed(slug: str, provider: str, flow: str | None = None, stored: str | None = None, *,
           livemode: bool = True) -> Gateway | None:
    """The provider's gateway with the creditor's keys from PAYMENT_GATEWAYS, or else with those stored
    from the console (`stored`, encrypted), the instance's other settings for it applying to them (a
    local API's address, in tests). None without keys. Kept per process, per version of the stored
    keys: SDK clients are reused, and a change in the console is used at once.

    For a test bill (`livemode=False`, `stored` the console's test keys) the instance's keys never
    apply: they are its live keys. Only its other settings do (a local API's address), never a live
    Adyen Checkout address."""
    settings = current_app.config["PAYMENT_GATEWAYS"].get(slug, {}).get(provider) or {}
    if not livemode:
        secrets_of = {name for name, _secret in CREDENTIAL_FIELDS.get(provider, ())} - {"checkout_base_url"}
        settings = {name: value for name, value in settings.items() if name not in secrets_of
                    and not (name == "checkout_base_url" and "-checkout-live." in str(value))}
    console = bool(stored) and provider in SECRET_OF and not settings.get(SECRET_OF[provider])
    version = hashlib.sha256(stored.encode()).hexdigest()[:16] if console and stored else None
    if not livemode and version is None:
        return None  # a test bill pays with the console's test keys or not through this provider
    cache = current_app.extensions.setdefault("payment_gateways", {})
    key = (slug, provider, flow, version) if livemode else (slug, provider, flow, version, "test")
    if key in cache:  # built before: the stored keys are decrypted once per process and version
        return cache[key]
    if console and stored:
        keys = _decrypted(stored)
        if keys:
            settings = {**settings, **keys}
    if not settings or provider not in registry.REGISTRY:
        return None
    if provider in SECRET_OF and not settings.get(SECRET_OF[provider]):
        return None  # the instance's other settings, waiting for keys from the console
    try:
        cache[key] = registry.build(provider, {**settings, **({"flow": flow} if flow else {})})
    except (TypeError, ValueError) as exc:  # the message names the setting, never its value
        log.error("%s settings of creditor %s are unusable: %s", provider, slug, exc)
        return None
    return cache[key]


def _setup(creditor: Creditor) -> tuple[dict[str, Gateway], dict[str, tuple[str, ...]]]:
    """Gateways by name and the methods the creditor chose for each, in the creditor's order."""
    choices = _choices(creditor)
    gateways: dict[str, Gateway] = {}
    methods: dict[str, tuple[str, ...]] = {}
    for choice in choices:
        gateway = _keyed(creditor.slug, choice.provider, choice.flow, choice.credentials_encrypted)
        if gateway is not None:
            gateways[gateway.name] = gateway
            methods[gateway.name] = choice.methods
    if not gateways and current_app.config["PAYMENTS_SIMULATOR"]:
        chosen = tuple(dict.fromkeys(m for choice in choices for m in choice.methods))
        gateways["simulator"] = simulator_for(creditor)
        methods["simulator"] = chosen or DEFAULT_METHODS
    return gateways, methods


def gateways_for(creditor: Creditor) -> dict[str, Gateway]:
    """Name -> gateway, in the creditor's order: those with credentials, else the simulator
    (where PAYMENTS_SIMULATOR is on, the default outside production)."""
    return _setup(creditor)[0]


def _test_setup(creditor: Creditor) -> tuple[dict[str, Gateway], dict[str, tuple[str, ...]]]:
    """`_setup` for a test bill: the creditor's providers that have test keys stored in the console, in
    its order, then the simulator where it runs (PAYMENTS_SIMULATOR)."""
    choices = _choices(creditor)
    gateways: dict[str, Gateway] = {}
    methods: dict[str, tuple[str, ...]] = {}
    for choice in choices:
        if not choice.test_credentials_encrypted:
            continue
        gateway = _keyed(creditor.slug, choice.provider, choice.flow, choice.test_credentials_encrypted,
                         livemode=False)
        if gateway is not None:
            gateways[gateway.name] = gateway
            methods[gateway.name] = choice.methods
    if current_app.config["PAYMENTS_SIMULATOR"]:
        chosen = tuple(dict.fromkeys(m for choice in choices for m in choice.methods))
        gateways["simulator"] = simulator_for(creditor)
        methods["simulator"] = chosen or DEFAULT_METHODS
    return gateways, methods


def gateway_for(creditor: Creditor, provider: str, *, livemode: bool = True) -> Gateway | None:
    """The creditor's gateway of `provider` for a bill of this mode, as its bill page offers it (its flow)."""
    return (_setup(creditor) if livemode else _test_setup(creditor))[0].get(provider)


def pay_options(creditor: Creditor, currency: str, country: str | None, *, livemode: bool = True
                ) -> list[PayOption]:
    """What the bill page offers for a bill in this currency to a payer in this country. A test bill
    (`livemode=False`) is offered the providers whose own test keys the creditor stored in the console,
    in test mode, and the test-mode simulator where it runs (PAYMENTS_SIMULATOR); never a live key, so
    never a provider that could take real money (docs/api.md, "Test mode")."""
    gateways, methods = _setup(creditor) if livemode else _test_setup(creditor)
    options = []
    for name, gateway in gateways.items():
        fitting = gateway.methods_for(currency, country, methods[name])
        if fitting:
            options.append(PayOption(name, fitting, gateway, test_mode=name == "simulator" or not livemode))
    return options


def receives(creditor: Creditor, *, currency: str) -> bool:
    """Whether a provider the creditor configured (with its credentials; not the test-mode simulator that
    stands in without them) offers a method for `currency`: billing asks before it imports an invoice in
    a currency other than the bank account's (`billing.services.currency_receivable`)."""
    for choice in _choices(creditor):
        gateway = _keyed(creditor.slug, choice.provider, choice.flow)
        if gateway is not None and gateway.methods_for(currency, None, choice.methods):
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
    changed_gateways(creditor)
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
    changed_gateways(creditor)
    db.session.flush()
    return True


def payment_gateway(slug: str, provider: str, *, livemode: bool = True) -> tuple[int, Gateway] | None:
    """(creditor id, gateway) for a payment already made, or a notification about one: from the
    keys alone, not from what the creditor offers today, since a provider it stopped offering still
    reports on the payments made before. None when this instance has no keys for it. The creditor's
    id is kept per process (it does not change), so a notification, and above all a duplicate,
    costs no query before its own. `livemode=False`: with the console's test keys (a test bill's
    payment, a notification to the test address), never the live ones."""
    ids = current_app.extensions.setdefault("creditor_ids", {})
    creditor = None
    if slug not in ids:
        creditor = db.session.scalar(select(Creditor).where(Creditor.slug == slug))
        if creditor is None:
            return None  # not kept: a creditor created later is found then
        ids[slug] = creditor.id
    if provider != "simulator" and not livemode:
        stored = db.session.scalar(select(CreditorGateway.test_credentials_encrypted).where(
            CreditorGateway.creditor_id == ids[slug], CreditorGateway.provider == provider))
        gateway = _keyed(slug, provider, stored=stored, livemode=False) if stored else None
    elif provider != "simulator":
        gateway = _keyed(slug, provider)
        if gateway is None and provider in SECRET_OF:  # the console's keys: read only where the instance has none
            stored = db.session.scalar(select(CreditorGateway.credentials_encrypted).where(
                CreditorGateway.creditor_id == ids[slug], CreditorGateway.provider == provider))
            gateway = _keyed(slug, provider, stored=stored)
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


# --- keys set in the creditor console ------------------------------------------------------------------

#: what the console stores per provider: (field, is it a secret?). Secrets are shown masked, never whole.
CREDENTIAL_FIELDS: dict[str, tuple[tuple[str, bool], ...]] = {
    "stripe": (("secret_key", True), ("publishable_key", False), ("webhook_secret", True)),
    "adyen": (("api_key", True), ("hmac_key", True), ("merchant_account", False), ("client_key", False),
              ("environment", False), ("checkout_base_url", False)),
}
#: the secret without which a provider's settings are not keys
SECRET_OF = {"stripe": "secret_key", "adyen": "api_key"}
#: the shape of each field (an Adyen live Checkout URL is checked by the adapter itself)
FIELD_SHAPES = {
    "secret_key": re.compile(r"(sk|rk)_(test|live)_[A-Za-z0-9_]{8,200}"),
    "publishable_key": re.compile(r"pk_(test|live)_[A-Za-z0-9_]{8,200}"),
    "webhook_secret": re.compile(r"whsec_[A-Za-z0-9+/=_]{8,200}"),
    "api_key": re.compile(r"[A-Za-z0-9_+/=.\-]{8,400}"),
    "hmac_key": re.compile(r"([0-9A-Fa-f]{2}){8,64}"),
    "merchant_account": re.compile(r"[A-Za-z0-9_.\-]{1,80}"),
    "client_key": re.compile(r"(test|live)_[A-Za-z0-9]{8,200}"),
    "environment": re.compile(r"test|live"),
}
OPTIONAL_FIELDS = ("checkout_base_url",)


def _decrypted(stored: str) -> dict[str, str] | None:
    try:
        found = json.loads(decrypt(stored))
    except (SecretUnreadable, ValueError):
        log.error("stored provider keys are unreadable: no DATA_ENCRYPTION_KEYS key decrypts them")
        return None
    return found if isinstance(found, dict) else None


def stored_credentials(choice: CreditorGateway, *, livemode: bool = True) -> dict[str, str] | None:
    """The keys stored for this choice (its test keys: `livemode=False`), in clear (None: none, or
    unreadable). Never shown whole."""
    stored = choice.credentials_encrypted if livemode else choice.test_credentials_encrypted
    return _decrypted(stored) if stored else None


#: the fields whose value says its mode, and how a test value begins (Stripe's keys; Adyen's client key
#: and environment): a test set must be test keys, and in production a live set must not be
TEST_SHAPES = {"secret_key": ("sk_test_", "rk_test_"), "publishable_key": ("pk_test_",), "client_key": ("test_",),
               "environment": ("test",)}


def _mode_problems(values: dict[str, str], livemode: bool) -> dict[str, str]:
    """Keys of the other mode: "live_key" in a test set (always); "test_key" in a live set (production)."""
    problems = {}
    for name, starts in TEST_SHAPES.items():
        value = values.get(name)
        if not value:
            continue
        if not livemode and not value.startswith(starts):
            problems[name] = "live_key"
        elif livemode and value.startswith(starts) and current_app.config["PORTAL_ENV"] == "production":
            problems[name] = "test_key"
    return problems


def masked(value: str | None) -> str:
    """A secret as the console shows it: its last four characters."""
    return f"••••{value[-4:]}" if value and len(value) >= 12 else ("••••" if value else "")


def instance_has_keys(creditor: Creditor, provider: str) -> bool:
    """Whether this instance's PAYMENT_GATEWAYS holds keys for the creditor's provider (they win)."""
    settings = current_app.config["PAYMENT_GATEWAYS"].get(creditor.slug, {}).get(provider) or {}
    return bool(settings.get(SECRET_OF.get(provider, "")))


def set_credentials(creditor: Creditor, provider: str, given: dict[str, str], *,
                    livemode: bool = True) -> CreditorGateway:
    """Store the keys of a provider the creditor offers, encrypted: its live keys, or (`livemode=False`)
    its test keys, a separate set for test bills. A secret left empty keeps the one stored (of the same
    set). Every problem at once, by field (InvalidData: "required", "shape", "unusable", "live_key" for
    a live key among test keys, "test_key" for a test key among live ones in production); nothing
    changes then."""
    if provider not in CREDENTIAL_FIELDS:
        raise InvalidData({"provider": "unknown"})
    choice = db.session.scalar(select(CreditorGateway).where(
        CreditorGateway.creditor_id == creditor.id, CreditorGateway.provider == provider))
    if choice is None:
        raise InvalidData({"provider": "not_offered"})
    before = stored_credentials(choice, livemode=livemode) or {}
    values: dict[str, str] = {}
    errors: dict[str, str] = {}
    for name, secret in CREDENTIAL_FIELDS[provider]:
        value = (given.get(name) or "").strip()
        if not value and secret:
            value = before.get(name, "")
        if not value:
            if name not in OPTIONAL_FIELDS:
                errors[name] = "required"
            continue
        shape = FIELD_SHAPES.get(name)
        if shape is not None and not shape.fullmatch(value):
            errors[name] = "shape"
        values[name] = value
    if provider == "adyen" and values.get("checkout_base_url") and values.get("environment") != "live":
        errors["checkout_base_url"] = "live_only"  # a test account talks to Adyen's test API, nowhere else
    for name, problem in _mode_problems(values, livemode).items():
        errors.setdefault(name, problem)
    if not errors:
        instance = current_app.config["PAYMENT_GATEWAYS"].get(creditor.slug, {}).get(provider) or {}
        try:
            registry.build(provider, {**instance, **values})
        except (TypeError, ValueError):
            errors["checkout_base_url" if provider == "adyen" else "secret_key"] = "unusable"
    if errors:
        raise InvalidData(errors)
    encrypted = encrypt(json.dumps(values, sort_keys=True))
    if livemode:
        choice.credentials_encrypted = encrypted
    else:
        choice.test_credentials_encrypted = encrypted
    changed_gateways(creditor)
    db.session.flush()
    return choice


def forget_credentials(creditor: Creditor, provider: str, *, livemode: bool = True) -> bool:
    """Delete the keys stored for a provider, live or test (False: there were none)."""
    choice = db.session.scalar(select(CreditorGateway).where(
        CreditorGateway.creditor_id == creditor.id, CreditorGateway.provider == provider))
    if choice is None or not (choice.credentials_encrypted if livemode else choice.test_credentials_encrypted):
        return False
    if livemode:
        choice.credentials_encrypted = None
    else:
        choice.test_credentials_encrypted = None
    changed_gateways(creditor)
    db.session.flush()
    return True


def check_credentials(creditor: Creditor, provider: str, *, livemode: bool = True) -> str | None:
    """Ask the provider whether it accepts the creditor's keys (live: those in force, the instance's, else
    the console's; test: the console's test keys). None: it does; else why not, in the adapter's words
    (never a secret). "no_keys" when there are none."""
    choice = db.session.scalar(select(CreditorGateway).where(
        CreditorGateway.creditor_id == creditor.id, CreditorGateway.provider == provider))
    stored = None if choice is None else choice.credentials_encrypted if livemode else choice.test_credentials_encrypted
    if not livemode and not stored:
        return "no_keys"
    gateway = _keyed(creditor.slug, provider, choice.flow if choice is not None else None, stored, livemode=livemode)
    if gateway is None:
        return "no_keys"
    try:
        gateway.check_credentials()
    except GatewayError as error:
        return str(error)
    return None
