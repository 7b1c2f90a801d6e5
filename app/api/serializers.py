"""The API's output: plain dicts for JSON. The invoice's and customer's row ids, the bill page's
public id and the customer's date of birth are never part of it. Amounts are integer minor
units; times are ISO 8601 in UTC."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from app.billing.models import Customer, Invoice, InvoiceEvent, InvoiceLine
from app.core.dates import utc_iso
from app.links.services import IssuedLink
from app.resolutions.pause import Dunning


def _date(value: date | None) -> str | None:
    return value.isoformat() if value else None


def _quantity(value: Decimal) -> str:
    """A decimal as a plain string without trailing zeros ('1', '2.5')."""
    return format(value.normalize(), "f")


def customer_json(customer: Customer) -> dict:
    address = {
        "line1": customer.address_line1,
        "line2": customer.address_line2,
        "postcode": customer.postcode,
        "city": customer.city,
        "country": customer.country,
    }
    return {
        "external_ref": customer.external_ref,
        "name": customer.name,
        "kind": customer.kind,
        "email": customer.email,
        "phone": customer.phone,
        "address": address if any(address.values()) else None,
        "preferred_locale": customer.preferred_locale,
    }


def line_json(line: InvoiceLine) -> dict:
    return {
        "position": line.position,
        "kind": line.kind,
        "description": line.description,
        "note": line.note,
        "quantity": _quantity(line.quantity),
        "unit": line.unit,
        "unit_price": line.unit_price,
        "vat_rate": line.vat_rate,
        "net": line.net,
        "vat": line.vat,
        "gross": line.gross,
        "period_start": _date(line.period_start),
        "period_end": _date(line.period_end),
    }


def event_json(event: InvoiceEvent) -> dict:
    return {"kind": event.kind, "actor": event.actor, "created_at": utc_iso(event.created_at), "data": event.data}


def dunning_json(dunning: Dunning) -> dict:
    return {"may_remind": dunning.may_remind, "may_hand_off": dunning.may_hand_off, "paused_by": dunning.reason,
            "paused_until": _date(dunning.until)}


def invoice_json(invoice: Invoice, events: list[InvoiceEvent], dunning: Dunning) -> dict:
    """The invoice with its customer, lines, amounts, timeline (`events`, oldest first) and whether
    the creditor's reminders may go out today (`dunning`, from resolutions.pause)."""
    return {
        "number": invoice.number,
        "status": invoice.status,
        "currency": invoice.currency,
        "issue_date": _date(invoice.issue_date),
        "due_date": _date(invoice.due_date),
        "period_start": _date(invoice.period_start),
        "period_end": _date(invoice.period_end),
        "summary": invoice.summary,
        "payment_reference": invoice.payment_reference,
        "subtotal": invoice.subtotal,
        "vat_total": invoice.vat_total,
        "total": invoice.total,
        "amount_paid": invoice.amount_paid,
        "credited": invoice.credited,
        "balance": invoice.balance,
        "customer": customer_json(invoice.customer),
        "lines": [line_json(line) for line in invoice.lines],
        "events": [event_json(event) for event in events],
        "dunning": dunning_json(dunning),
        "created_at": utc_iso(invoice.created_at),
        "updated_at": utc_iso(invoice.updated_at),
    }


def reminder_json(reminder) -> dict:
    return {"id": reminder.external_ref, "channel": reminder.channel, "sent_at": utc_iso(reminder.sent_at),
            "final": reminder.final}


def link_json(issued: IssuedLink) -> dict:
    return {"url": issued.url, "expires_at": utc_iso(issued.link.expires_at)}
