"""Provider notifications: POST /webhooks/<provider>/<creditor slug>, verified, stored once, applied once."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from flask import Blueprint, Response, abort, jsonify, request
from sqlalchemy import select

from app.creditors.models import Creditor
from app.extensions import csrf, db
from app.payments.gateways.base import WebhookError
from app.payments.providers import gateways_for
from app.payments.services import ingest_events

log = logging.getLogger(__name__)
bp = Blueprint("payments", __name__)


def receive(provider: str, creditor: Creditor, body: bytes, headers: Mapping[str, str]) -> list[str] | None:
    """Verify, store and apply one notification in its own transaction. None when it is not genuine."""
    gateway = gateways_for(creditor).get(provider)
    if gateway is None:
        return None
    try:
        events = gateway.parse_webhook(body, headers)
    except WebhookError as exc:
        log.warning("refused %s notification for %s: %s", provider, creditor.slug, exc)
        return None
    outcomes = ingest_events(provider, creditor.id, events)
    db.session.commit()
    return outcomes


@bp.post("/webhooks/<provider>/<slug>")
@csrf.exempt  # providers cannot send our CSRF token; the signature is checked instead
def webhook(provider: str, slug: str):
    """A provider's notification. 2xx for every genuine one, known type or not; 400 otherwise."""
    creditor = db.session.scalar(select(Creditor).where(Creditor.slug == slug))
    if creditor is None or provider not in gateways_for(creditor):
        abort(404)
    outcomes = receive(provider, creditor, request.get_data(cache=False), request.headers)
    if outcomes is None:
        return jsonify(error="invalid_notification"), 400
    if provider == "adyen":  # Adyen wants exactly this body, at once, or it retries
        return Response("[accepted]", mimetype="text/plain")
    return jsonify(received=len(outcomes), outcomes=outcomes)
