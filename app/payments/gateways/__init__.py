"""Payment gateways: one module per provider, registered here by name.

`build(provider, settings)` makes a gateway for one creditor from its settings (the
provider's config dataclass fields: keys, merchant account, flow...). The simulator is
built by `app.payments.providers` because it needs the app's store for its records.

An adapter's module is imported when a gateway of its provider is first built: the providers'
SDKs (Stripe's brings aiohttp, which makes two TLS contexts as it is imported) cost a process
that serves no creditor of theirs nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from app.payments.gateways.base import Gateway


def _stripe(settings: Mapping[str, Any]) -> Gateway:
    from app.payments.gateways.stripe import StripeConfig, StripeGateway

    return StripeGateway(StripeConfig(**settings))


def _adyen(settings: Mapping[str, Any]) -> Gateway:
    from app.payments.gateways.adyen import AdyenConfig, AdyenGateway

    return AdyenGateway(AdyenConfig(**settings))


#: provider name -> factory from a creditor's settings for it
REGISTRY: dict[str, Callable[[Mapping[str, Any]], Gateway]] = {
    "stripe": _stripe,
    "adyen": _adyen,
}

#: every provider a creditor may choose, the simulator included
PROVIDERS = ("simulator", *REGISTRY)


def build(provider: str, settings: Mapping[str, Any]) -> Gateway:
    """A gateway for one creditor. KeyError for an unknown provider; TypeError/ValueError for bad settings."""
    return REGISTRY[provider](settings)
