"""Provider notifications: POST /webhooks/<provider>/<creditor slug>, verified, stored once, applied once."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from flask import Blueprint, Response, abort, current_app, jsonify, request

from app.extensions import csrf, db
from app.payments.gateways.base import Gateway, WebhookError
from app.payments.providers import payment_gateway
from app.payments.services import ingest_events

log = logging.getLogger(__name__)
bp = Blueprint("payments", __name__)


def receive(provider: str, creditor_id: int, gateway: Gateway, body: bytes, headers: Mapping[str, str],
            *, apply: bool = True) -> list[str] | None:
    """Verify and store one notification, and apply it unless a worker will, in its own
    transaction. None when it is not genuine (nothing is stored)."""
    try:
        events = gateway.parse_webhook(body, headers)
    except WebhookError as exc:
        log.warning("refused %s notification for creditor %s: %s", provider, creditor_id, exc)
        return None
    outcomes = ingest_events(provider, creditor_id, events, apply=apply)
    db.session.commit()
    return outcomes


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
    if outcomes is None:
        return jsonify(error="invalid_notification"), 400
    if provider == "adyen":  # Adyen wants exactly this body, at once, or it retries
        return Response("[accepted]", mimetype="text/plain")
    return jsonify(received=len(outcomes), outcomes=outcomes)
