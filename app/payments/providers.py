"""The gateways a creditor offers, each built for that creditor (its own keys and secrets)."""

from __future__ import annotations

import hashlib
import hmac

from flask import current_app

from app.creditors.models import Creditor
from app.payments.gateways.base import Gateway
from app.payments.gateways.simulator import SimulatorConfig, SimulatorGateway


def simulator_secret(creditor: Creditor) -> str:
    """The creditor's simulator signing secret, derived from the app's secret (nothing to store)."""
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, f"simulator:{creditor.slug}".encode(), hashlib.sha256).hexdigest()


def simulator_for(creditor: Creditor) -> SimulatorGateway:
    from app.payments.simulator import DatabaseSimulatorStore

    base = creditor.portal_base_url or current_app.config["PORTAL_BASE_URL"]
    return SimulatorGateway(SimulatorConfig(secret=simulator_secret(creditor), page_base_url=base), DatabaseSimulatorStore())


def gateways_for(creditor: Creditor) -> dict[str, Gateway]:
    """Name -> gateway, in the order the bill page offers them. The test-mode simulator is
    offered where PAYMENTS_SIMULATOR is on (the default outside production)."""
    gateways: dict[str, Gateway] = {}
    if current_app.config["PAYMENTS_SIMULATOR"]:
        gateways["simulator"] = simulator_for(creditor)
    return gateways
