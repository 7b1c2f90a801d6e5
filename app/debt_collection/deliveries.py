"""What a partner receives: "collection.<kind>" outbox messages as Standard Webhooks requests.

The body is an event `{"type", "timestamp", "data"}` as Standard Webhooks recommends:

- `case.created`: the case file, exactly as stored at hand-off (every try sends the same bytes);
- `case.payment_received`: a payment made to the creditor while the partner has the case;
- `case.recalled`: the creditor takes the case back;
- `case.updated`: the creditor credited or corrected the bill, or the debtor's contact details changed:
  what changed, and the case file as built then (kept in the message, so every try sends the same).

Read at delivery: the partner's endpoint and its live signing secrets (so a rotation or a new
endpoint applies to what is still waiting). A disabled partner's deliveries are dead at once, to be
replayed once it is enabled again; a 410 Gone disables it (`on_gone`)."""

from __future__ import annotations

import json

from app.core.dates import utc_iso
from app.debt_collection.models import Case, Partner
from app.debt_collection.partners import live_secrets, set_enabled
from app.extensions import db
from app.outbox.base import DeliveryError
from app.outbox.models import OutboxMessage
from app.outbox.webhooks import WebhookRequest
from app.payments.models import Payment

TYPES = {"collection.case_created": "case.created", "collection.payment_received": "case.payment_received",
         "collection.case_recalled": "case.recalled", "collection.case_updated": "case.updated"}


def event_body(message: OutboxMessage, case: Case) -> dict:
    kind = TYPES.get(message.kind)
    if kind is None:
        raise DeliveryError(f"no webhook for {message.kind!r}", permanent=True)
    payload = message.payload or {}
    if kind == "case.created":
        data = case.case_file
    elif kind == "case.payment_received":
        payment = db.session.get(Payment, payload.get("payment_id") or 0)
        if payment is None:
            raise DeliveryError("the payment of this delivery no longer exists", permanent=True)
        data = {"case_id": case.public_id, "partner_reference": case.partner_reference,
                "payment": {"id": payment.public_ref, "amount": payment.amount, "currency": payment.currency,
                            "received_on": payment.received_at.date().isoformat(), "method": payment.method},
                "outstanding": max(case.invoice.balance, 0)}
    elif kind == "case.updated":
        data = {"case_id": case.public_id, "partner_reference": case.partner_reference,
                "changes": payload.get("changes") or [], "reason": payload.get("reason"),
                "outstanding": payload.get("outstanding"), "case_file": payload.get("case_file")}
    else:
        data = {"case_id": case.public_id, "partner_reference": case.partner_reference,
                "recalled_at": utc_iso(case.recalled_at), "reason": payload.get("reason")}
    return {"type": kind, "timestamp": utc_iso(message.created_at), "data": data}


def render_webhook(message: OutboxMessage) -> WebhookRequest:
    case = db.session.get(Case, (message.payload or {}).get("case_id") or 0)
    if case is None:
        raise DeliveryError("the case of this delivery no longer exists", permanent=True)
    partner = case.partner
    partner_id = partner.id
    if not partner.enabled:
        raise DeliveryError(f"partner {partner.slug} is disabled ({partner.disabled_reason})", permanent=True)
    body = json.dumps(event_body(message, case), separators=(",", ":"), sort_keys=True).encode()
    # The case id for the case itself; a later event of the case is its own operation.
    key = case.public_id if message.kind == "collection.case_created" else message.idempotency_key

    def gone() -> None:
        set_enabled(db.session.get(Partner, partner_id), False, "the endpoint answered 410 Gone")

    return WebhookRequest(url=partner.endpoint_url, body=body, secrets=live_secrets(partner), idempotency_key=key,
                          on_gone=gone)
