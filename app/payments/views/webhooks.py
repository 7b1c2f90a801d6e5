"""Provider notifications: POST /webhooks/<provider>/<creditor slug>, verified, stored once, applied once;
a provider's test-mode notifications (test bills paid with the creditor's test keys) at
/webhooks/<provider>/<creditor slug>/test, verified with the test keys only."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, abort, current_app, jsonify, request

from app.extensions import csrf, db
from app.payments.ingest import receive
from app.payments.providers import payment_gateway

log = logging.getLogger(__name__)
bp = Blueprint("payments", __name__)


@bp.post("/webhooks/<provider>/<slug>")
@csrf.exempt  # providers cannot send our CSRF token; the signature is checked instead
def webhook(provider: str, slug: str):
    """A provider's notification. 2xx for every genuine one, known type or not; 400 otherwise.
    Stored and applied at once, or (WEBHOOKS_APPLY_INLINE off) stored and answered at once, for
    the `flask payments apply-events` worker to apply."""
    return _receive(provider, slug, livemode=True)


@bp.post("/webhooks/<provider>/<slug>/test")
@csrf.exempt
def test_webhook(provider: str, slug: str):
    """A provider's test-mode notification, verified with the creditor's test keys (404 without them)."""
    return _receive(provider, slug, livemode=False)


def _receive(provider: str, slug: str, *, livemode: bool):
    if provider == "simulator" and not livemode:
        abort(404)  # the simulator is test mode already, at the one address
    found = payment_gateway(slug, provider, livemode=livemode)
    if found is None:
        abort(404)
    creditor_id, gateway = found
    apply = current_app.config["WEBHOOKS_APPLY_INLINE"]
    outcomes = receive(provider, creditor_id, gateway, request.get_data(cache=False), request.headers, apply=apply,
                       livemode=None if provider == "simulator" else livemode)
    db.session.commit()
    if outcomes is None:
        return jsonify(error="invalid_notification"), 400
    if provider == "adyen":  # Adyen wants exactly this body, at once, or it retries
        return Response("[accepted]", mimetype="text/plain")
    return jsonify(received=len(outcomes), outcomes=outcomes)
