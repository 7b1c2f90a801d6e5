"""The event types a creditor receives, and what each one's `data` holds.

Every event is `{"id": "evt_…", "type", "created_at", "data"}`. The `data` of a bill's event starts
with the bill and the customer's reference (the creditor's own id for the customer, no name, address
or contact point): personal data goes no further than the creditor's own systems already hold.

    "invoice": {"number", "currency", "total", "amount_paid", "balance", "status", "due_date"}
    "customer": {"external_ref"}

Amounts are integers in minor units, in the invoice's currency. Each type adds one object (docs/events.md
lists them; `DATA` below is the same list, which the OpenAPI document shows).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.billing.models import Customer, Invoice

#: Each type, with the keys of its own object in `data` (besides "invoice" and "customer").
DATA: dict[str, dict[str, tuple[str, ...]]] = {
    "invoice.opened": {"link": ("channel",)},
    "payment.succeeded": {"payment": ("amount", "currency", "method", "reference", "paid_on")},
    "payment.failed": {"payment": ("amount", "currency", "provider", "failure_reason")},
    "payment.refunded": {"refund": ("amount", "currency", "payment_reference", "refund_reference")},
    "dispute.opened": {"dispute": ("reference", "amount")},
    "dispute.resolved": {"dispute": ("reference", "outcome")},
    "promise.created": {"promise": ("reference", "date", "amount")},
    "promise.broken": {"promise": ("reference",)},
    "deferral.granted": {"deferral": ("reference", "new_due_date", "fee")},
    "plan.created": {"plan": ("reference", "months", "total")},
    "plan.broken": {"plan": ("reference",)},
    "message.received": {"message": ("reference", "topic", "new_request")},
    "contact_details.changed": {"contact": ("fields",)},
    "reminder.sent": {"reminder": ("channel", "final", "sent_at")},
    "reminder.failed": {"reminder": ("channel", "reason")},
    "collection.handed_off": {"case": ("id", "partner", "amount", "currency")},
    "collection.recalled": {"case": ("id", "partner")},
    "collection.closed": {"case": ("id", "outcome")},
    "lead.created": {"lead": ("id", "block", "block_name", "variant")},
}
TYPES: tuple[str, ...] = tuple(DATA)

#: An invoice's timeline entry (billing.services.record_event) -> the event it is, and how the event's
#: own object is read from the entry's data: {key in the event: key in the entry}.
FROM_TIMELINE: dict[str, tuple[str, dict[str, str]]] = {
    "link_opened": ("invoice.opened", {"channel": "channel"}),
    "payment_recorded": ("payment.succeeded", {"amount": "amount", "currency": "currency", "method": "method",
                                               "reference": "reference", "paid_on": "paid_on"}),
    "refund_sent": ("payment.refunded", {"amount": "amount", "currency": "currency",
                                         "payment_reference": "payment_id", "refund_reference": "refund_id"}),
    "dispute_opened": ("dispute.opened", {"reference": "reference", "amount": "amount"}),
    "dispute_answered": ("dispute.resolved", {"reference": "reference", "outcome": "outcome"}),
    "promise_made": ("promise.created", {"reference": "reference", "date": "date", "amount": "amount"}),
    "promise_broken": ("promise.broken", {"reference": "reference"}),
    "deferral_granted": ("deferral.granted", {"reference": "reference", "new_due_date": "date", "fee": "fee"}),
    "plan_accepted": ("plan.created", {"reference": "reference", "months": "months", "total": "total"}),
    "plan_granted": ("plan.created", {"reference": "reference", "months": "months", "total": "total"}),
    "plan_broken": ("plan.broken", {"reference": "reference"}),
    "support_request_opened": ("message.received", {"reference": "reference", "topic": "topic"}),
    "support_message": ("message.received", {"reference": "reference"}),
    "reminder_sent": ("reminder.sent", {"channel": "channel", "final": "final", "sent_at": "sent_at"}),
    "handed_off": ("collection.handed_off", {"id": "case", "partner": "partner", "amount": "amount",
                                             "currency": "currency"}),
    "hand_off_recalled": ("collection.recalled", {"id": "case", "partner": "partner"}),
    "collection_closed": ("collection.closed", {"id": "case", "outcome": "outcome"}),
}


def invoice_data(invoice: Invoice | Any) -> dict[str, Any]:
    """The bill and its customer, as every bill's event carries them. `invoice`: an Invoice, or a row of
    `BILL_COLUMNS` (a run that records thousands of events reads only these, set-wise)."""
    customer_ref = invoice.external_ref if not isinstance(invoice, Invoice) else invoice.customer.external_ref
    return {
        "invoice": {"number": invoice.number, "currency": invoice.currency, "total": invoice.total,
                    "amount_paid": invoice.amount_paid, "balance": invoice.total - invoice.amount_paid,
                    "status": invoice.status, "due_date": invoice.due_date.isoformat()},
        "customer": {"external_ref": customer_ref},
    }


#: What `invoice_data` reads of a bill, for a statement that reads many bills at once (join customers).
BILL_COLUMNS = (Invoice.id, Invoice.creditor_id, Invoice.livemode, Invoice.number, Invoice.currency, Invoice.total,
                Invoice.amount_paid, Invoice.status, Invoice.due_date, Customer.external_ref)


def data_for(event_type: str, invoice: Invoice | Any | None, own: Mapping[str, Any], *,
             customer_ref: str | None = None) -> dict[str, Any]:
    """The event's `data`: the bill (if any: an Invoice or a row of `BILL_COLUMNS`) and the type's own
    object, only its documented keys."""
    (name, keys), = DATA[event_type].items()
    data: dict[str, Any] = invoice_data(invoice) if invoice is not None else {}
    if invoice is None and customer_ref is not None:
        data["customer"] = {"external_ref": customer_ref}
    data[name] = {key: own.get(key) for key in keys}
    return data


def from_timeline(kind: str, entry: Mapping[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """(type, the type's own object) for an invoice timeline entry that is a creditor event, else None."""
    found = FROM_TIMELINE.get(kind)
    if found is None:
        return None
    event_type, keys = found
    own = {ours: entry.get(theirs) for ours, theirs in keys.items()}
    if kind == "support_request_opened":
        own["new_request"] = True
    elif kind == "support_message":
        own["new_request"] = False
    return event_type, own
