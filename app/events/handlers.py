"""What the features tell, heard (connected by the app factory, `_connect_signals`) and recorded as the
creditor's events, in the transaction of the change:

- billing's `event_recorded`: an invoice's timeline entry that is one of the catalogue's events
  (`catalogue.FROM_TIMELINE`: a link opened, a payment, a refund, disputes, promises, deferrals, plans,
  a customer's message, a reminder the creditor reported, the hand-off, its recall and its close);
- dunning's `reminders_written`: the run's reminders (set-wise);
- the outbox's `message_failed`: a reminder of the portal's that did not reach the customer;
- payments' `payment_failed`; billing's `contact_changed`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select

from app.billing.models import Customer, Invoice, InvoiceEvent, InvoiceStatus
from app.billing.services import PAUSED, payable_status
from app.dunning.engine import KIND as DUNNING_KIND
from app.dunning.models import Message, Notice
from app.events.catalogue import BILL_COLUMNS, data_for, from_timeline
from app.events.services import record, record_for_invoice, record_many
from app.extensions import db
from app.outbox.models import OutboxMessage
from app.payments.models import PaymentAttempt


def on_invoice_event(entry: InvoiceEvent, **_: object) -> None:
    found = from_timeline(entry.kind, entry.data or {})
    if found is None:
        return
    event_type, own = found
    invoice = entry.invoice
    data = data_for(event_type, invoice, own)
    if entry.kind == "payment_recorded":  # recorded before the status follows the amount (billing.record_payment)
        status = payable_status(invoice)
        if invoice.status in PAUSED and status != InvoiceStatus.PAID:
            status = invoice.status
        data["invoice"]["status"] = status
    record(invoice.creditor_id, event_type, data, invoice_id=invoice.id, livemode=invoice.livemode,
           now=entry.created_at)


#: Bills read per statement by `_bills` (well below SQLite's limit of bound parameters).
CHUNK = 5000


def _bills(ids: set[int]) -> dict[int, Any]:
    """What the events of many bills carry of each (`catalogue.BILL_COLUMNS`), by invoice id: a few
    statements of plain rows, not an Invoice and a lazily loaded customer per bill (a dunning run's
    100,000 reminders, a bank file's 95,000 payments)."""
    ordered = sorted(ids)
    found: dict[int, Any] = {}
    for start in range(0, len(ordered), CHUNK):
        statement = (select(*BILL_COLUMNS).join(Customer, Customer.id == Invoice.customer_id)
                     .where(Invoice.id.in_(ordered[start:start + CHUNK])))
        found.update((row.id, row) for row in db.session.execute(statement))
    return found


def on_reminders_written(creditor_id: int, *, events: Sequence[dict[str, Any]], **_: object) -> None:
    if not events:
        return
    invoices = _bills({e["invoice_id"] for e in events})
    rows = []
    for entry in events:
        found = from_timeline(entry["kind"], entry["data"])
        invoice = invoices.get(entry["invoice_id"])
        if found is None or invoice is None:
            continue
        event_type, own = found
        rows.append({"creditor_id": creditor_id, "type": event_type, "invoice_id": invoice.id,
                     "livemode": invoice.livemode, "data": data_for(event_type, invoice, own)})
    record_many(rows, now=events[0].get("created_at"))


def on_bank_payments(_sender: object, *, entries: Sequence[tuple[int, str]], at: datetime,
                     bills: Mapping[int, Any] | None = None, **_: object) -> None:
    """Payments a bank file booked, set-wise: `payment.succeeded` of each (the invoices as now stored:
    the settlement's own states of them, which hold what an event carries, else read again)."""
    invoices = bills if bills is not None else _bills({invoice_id for invoice_id, _data in entries})
    rows = []
    for invoice_id, data in entries:
        invoice = invoices.get(invoice_id)
        found = from_timeline("payment_recorded", json.loads(data) if isinstance(data, str) else data)
        if invoice is None or found is None:
            continue
        event_type, own = found
        rows.append({"creditor_id": invoice.creditor_id, "type": event_type, "invoice_id": invoice.id,
                     "livemode": invoice.livemode, "data": data_for(event_type, invoice, own)})
    record_many(rows, now=at)


def on_message_failed(message: OutboxMessage, *, reason: str, bounced: bool, **_: object) -> None:
    """A reminder of the portal's that did not arrive (an SMS undelivered, an e-mail bounced or dead)."""
    if message.kind != DUNNING_KIND:
        return
    sent = db.session.scalar(select(Message).where(Message.outbox_message_id == message.id))
    if sent is None:
        return
    # Its notices, or where they went: dunning's own receiver may have moved them to the message that
    # replaces it already (`dunning.services.fall_back`).
    replacing = select(Message.id).where(Message.replaces_id == sent.id)
    invoice_ids = sorted(set(db.session.scalars(select(Notice.invoice_id).where(
        or_(Notice.message_id == sent.id, Notice.message_id.in_(replacing))))))
    why = "bounced" if bounced else "not_delivered"
    for invoice_id in invoice_ids:
        invoice = db.session.get(Invoice, invoice_id)
        if invoice is not None:
            record_for_invoice(invoice, "reminder.failed", {"channel": sent.channel, "reason": why})


def on_payment_failed(attempt: PaymentAttempt, **_: object) -> None:
    invoice = db.session.get(Invoice, attempt.invoice_id)
    if invoice is None:
        return
    record_for_invoice(invoice, "payment.failed", {
        "amount": attempt.amount, "currency": attempt.currency, "provider": attempt.provider,
        "failure_reason": attempt.failure_reason})


def on_contact_changed(customer: Customer, *, fields: Sequence[str] = (), **_: object) -> None:
    """A customer's contact details changed: one event, of the customer (no values, only which fields)."""
    record(customer.creditor_id, "contact_details.changed",
           data_for("contact_details.changed", None, {"fields": list(fields)}, customer_ref=customer.external_ref),
           livemode=customer.livemode)

