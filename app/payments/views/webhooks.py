"""Provider notifications: POST /webhooks/<provider>/<creditor slug>, verified, stored once, applied once."""

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
    found = payment_gateway(slug, provider)
    if found is None:
        abort(404)
    creditor_id, gateway = found
    apply = current_app.config["WEBHOOKS_APPLY_INLINE"]
    outcomes = receive(provider, creditor_id, gateway, request.get_data(cache=False), request.headers, apply=apply)
    db.session.commit()
    if outcomes is None:
        return jsonify(error="invalid_notification"), 400
    if provider == "adyen":  # Adyen wants exactly this body, at once, or it retries
        return Response("[accepted]", mimetype="text/plain")
    return jsonify(received=len(outcomes), outcomes=outcomes)
