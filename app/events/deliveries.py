"""What a creditor's endpoint receives: an `events.webhook` outbox message as a Standard Webhooks
request. The body is the event as the feed shows it:

    {"id": "evt_…", "type": "payment.succeeded", "timestamp": "…Z", "livemode": true, "data": {…}}

Read at delivery: the endpoint's URL and its live secrets (so a rotation applies to what still waits).
A disabled endpoint's deliveries are dead at once (replay them once it is enabled again); a 410 Gone
disables it. Every try goes to the delivery log (`services.log_attempt`)."""

from __future__ import annotations

import json

from flask import current_app

from app.core.dates import utc_iso
from app.events.models import CreditorEvent, WebhookDelivery, WebhookEndpoint
from app.events.services import endpoint_rules, live_secrets, log_attempt, set_enabled
from app.extensions import db
from app.outbox.base import DeliveryError
from app.outbox.models import OutboxMessage
from app.outbox.webhooks import WebhookRequest


def event_json(event: CreditorEvent) -> dict:
    """An event as the feed and the webhooks show it."""
    return {"id": event.public_id, "type": event.type, "timestamp": utc_iso(event.created_at),
            "livemode": event.livemode, "data": event.payload or {}}


def render_webhook(message: OutboxMessage) -> WebhookRequest:
    delivery_id = (message.payload or {}).get("delivery_id") or 0
    delivery = db.session.get(WebhookDelivery, delivery_id)
    if delivery is None:
        raise DeliveryError("the delivery no longer exists", permanent=True)
    endpoint = delivery.endpoint
    endpoint_id = endpoint.id

    def attempted(code: int | None, took: int, error: str | None) -> None:
        log_attempt(delivery_id, code=code, duration_ms=took, error=error)

    if not endpoint.enabled:
        raise DeliveryError(f"endpoint {endpoint.public_id} is disabled ({endpoint.disabled_reason})", permanent=True,
                            after=lambda: attempted(None, 0, "endpoint disabled"))
    body = json.dumps(event_json(delivery.event), separators=(",", ":"), sort_keys=True).encode()

    def gone() -> None:
        found = db.session.get(WebhookEndpoint, endpoint_id)
        if found is not None:
            set_enabled(found, False, "the endpoint answered 410 Gone")

    return WebhookRequest(url=endpoint.url, body=body, secrets=live_secrets(endpoint),
                          idempotency_key=message.idempotency_key, on_gone=gone,
                          rules=endpoint_rules(current_app.config), on_attempt=attempted)
