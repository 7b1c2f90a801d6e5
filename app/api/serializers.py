"""The API's output: plain dicts for JSON. The invoice's and customer's row ids, the bill page's
public id and the customer's date of birth are never part of it. Amounts are integer minor
units; times are ISO 8601 in UTC."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from app.billing.invoice_law import rates_of
from app.billing.models import CreditNote, Customer, Invoice, InvoiceEvent, InvoiceLine
from app.billing.texts import given
from app.core.dates import utc_iso
from app.dunning.models import Plan
from app.dunning.outlook import NextStep
from app.links.services import IssuedLink


def _date(value: date | None) -> str | None:
    return value.isoformat() if value else None


def _quantity(value: Decimal) -> str:
    """A decimal as a plain string without trailing zeros ('1', '2.5')."""
    return format(value.normalize(), "f")


def _address(customer: Customer) -> dict | None:
    address = {
        "line1": customer.address_line1,
        "line2": customer.address_line2,
        "postcode": customer.postcode,
        "city": customer.city,
        "country": customer.country,
    }
    return address if any(address.values()) else None


def consents_json(customer: Customer) -> dict:
    return {"email": customer.email_allowed, "sms": customer.sms_allowed,
            "electronic_notices": customer.electronic_notices_allowed}


def customer_json(customer: Customer) -> dict:
    return {
        "external_ref": customer.external_ref,
        "name": customer.name,
        "kind": customer.kind,
        "email": customer.email,
        "phone": customer.phone,
        "address": _address(customer),
        "preferred_locale": customer.preferred_locale,
        "preferred_channel": customer.preferred_channel,
        "time_zone": customer.time_zone,
        "consents": consents_json(customer),
        "org_number": customer.org_number,
        "vat_id": customer.vat_id,
    }


def contact_json(customer: Customer) -> dict:
    """A customer's contact points and preferences for reminders, and what they turned off themselves."""
    return {
        "external_ref": customer.external_ref,
        "email": customer.email,
        "phone": customer.phone,
        "address": _address(customer),
        "preferred_channel": customer.preferred_channel,
        "preferred_locale": customer.preferred_locale,
        "time_zone": customer.time_zone,
        "consents": consents_json(customer),
        "email_unsubscribed_at": utc_iso(customer.email_unsubscribed_at) if customer.email_unsubscribed_at else None,
        "sms_stopped_at": utc_iso(customer.sms_stopped_at) if customer.sms_stopped_at else None,
        "dunning_excluded": customer.dunning_excluded,
    }


def line_json(line: InvoiceLine) -> dict:
    return {
        "position": line.position,
        "kind": line.kind,
        "description": given(line.description, line.texts, "description"),  # in the shape it was sent
        "note": given(line.note, line.texts, "note"),
        "quantity": _quantity(line.quantity),
        "unit": line.unit,
        "product_code": line.product_code,
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


@dataclass(frozen=True)
class DunningState:
    """What the API says of an invoice's reminders today (the view gathers it): whether reminders and
    the hand-off may go ahead (the pause rule, an open question, the due date, the plan's collection
    warning), and the plan the portal reminds it by, with its next step."""

    may_remind: bool
    may_hand_off: bool
    paused_by: str | None
    paused_until: date | None
    hand_off_not_before: date | None
    plan: Plan | None
    excluded: bool
    next_step: NextStep | None


def dunning_json(state: DunningState) -> dict:
    plan, step = state.plan, state.next_step
    return {
        "may_remind": state.may_remind, "may_hand_off": state.may_hand_off, "paused_by": state.paused_by,
        "paused_until": _date(state.paused_until), "hand_off_not_before": _date(state.hand_off_not_before),
        "plan": {"name": plan.name, "version": plan.version, "jurisdiction": plan.jurisdiction} if plan else None,
        "excluded": state.excluded,
        "next_step": {"position": step.position, "kind": step.kind, "date": _date(step.on), "channel": step.channel,
                      "channels": list(step.channels), "fee": step.fee, "deadline_days": step.deadline_days}
        if step else None,
    }


def invoice_json(invoice: Invoice, events: list[InvoiceEvent], dunning: DunningState) -> dict:
    """The invoice with its customer, lines, amounts, timeline (`events`, oldest first) and whether
    reminders and the hand-off may go ahead today, with the portal's next step (`dunning`)."""
    return {
        "number": invoice.number,
        "livemode": invoice.livemode,
        "status": invoice.status,
        "currency": invoice.currency,
        "issue_date": _date(invoice.issue_date),
        "due_date": _date(invoice.due_date),
        "period_start": _date(invoice.period_start),
        "period_end": _date(invoice.period_end),
        "summary": given(invoice.summary, invoice.texts, "summary"),
        "kind": invoice.kind,
        "payment_reference": invoice.payment_reference,
        "subtotal": invoice.subtotal,
        "vat_total": invoice.vat_total,
        "vat_rates": [{"rate": r.rate, "net": r.net, "vat": r.vat} for r in rates_of(invoice)],
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


def credit_note_json(note: CreditNote, invoice: Invoice) -> dict:
    """A credit note with its lines (by the invoice line's position) and what the invoice asks for after it."""
    positions = {line.id: line.position for line in invoice.lines}
    return {
        "number": note.number,
        "id": note.external_ref,
        "invoice_number": invoice.number,
        "currency": invoice.currency,
        "reason": note.reason,
        "dispute": note.reference,
        "subtotal": note.subtotal,
        "vat_total": note.vat_total,
        "total": note.total,
        "lines": [{"position": positions.get(line.invoice_line_id) if line.invoice_line_id else None,
                   "description": line.description, "vat_rate": line.vat_rate, "net": line.net, "vat": line.vat,
                   "gross": line.gross} for line in note.lines],
        "created_at": utc_iso(note.created_at),
        "invoice": {"status": invoice.status, "total": invoice.total, "credited": invoice.credited,
                    "amount_paid": invoice.amount_paid, "balance": invoice.balance},
    }


def reminder_json(reminder) -> dict:
    return {"id": reminder.external_ref, "channel": reminder.channel, "sent_at": utc_iso(reminder.sent_at),
            "final": reminder.final}


def link_json(issued: IssuedLink) -> dict:
    return {"url": issued.url, "expires_at": utc_iso(issued.link.expires_at)}


def invoice_summary_json(invoice: Invoice) -> dict:
    """An invoice in a list (`GET /invoices`): its amounts and dates, its customer's reference."""
    return {
        "number": invoice.number, "livemode": invoice.livemode, "status": invoice.status,
        "currency": invoice.currency, "issue_date": _date(invoice.issue_date), "due_date": _date(invoice.due_date),
        "total": invoice.total, "amount_paid": invoice.amount_paid, "credited": invoice.credited,
        "balance": invoice.balance, "customer_ref": invoice.customer.external_ref,
        "created_at": utc_iso(invoice.created_at), "updated_at": utc_iso(invoice.updated_at),
    }


def block_json(block) -> dict:
    """A content block as the API shows it (`app.content.models.Block`)."""
    return {
        "id": block.public_id, "livemode": block.livemode, "name": block.name, "kind": block.kind,
        "placements": list(block.placements or ()), "priority": block.priority,
        "starts_on": _date(block.starts_on), "ends_on": _date(block.ends_on), "action": block.action,
        "target_url": block.target_url, "cap_days": block.cap_days, "targeting": dict(block.targeting or {}),
        "texts": {locale: {"title": t["title"], "body": t["body"], "cta": t["cta"]}
                  for locale, t in (block.variants[0].texts or {}).items()} if block.variants else {},
        "variants": [{"name": v.name, "weight": v.weight, "stopped": v.stopped_at is not None}
                     for v in block.variants],
        "stopped": block.stopped_at is not None,
    }


def _funnel_row_json(row, key) -> dict:
    def rate(count: int) -> float | None:
        value = row.rate(count)
        return None if value is None else round(value, 4)

    return {"key": key, "sent": row.sent, "delivered": row.delivered, "opened": row.opened, "failed": row.failed,
            "paid": row.paid, "payments": row.payments,
            "paid_amounts": [{"currency": currency, "amount": amount} for currency, amount in row.paid_amounts.items()],
            "median_days_to_pay": row.median_days,
            "rates": {"delivered": rate(row.delivered), "opened": rate(row.opened), "paid": rate(row.paid)}}


def funnel_json(figures, *, window_days: int, computed_at) -> dict:
    """The funnel (app.analytics.funnel.Funnel) as the API answers it; docs/analytics.md defines each figure."""
    from datetime import date, timedelta

    query = figures.query

    def key(value):
        return value.isoformat() if isinstance(value, date) else value

    def by_currency(sums: dict) -> list[dict]:
        return [{"currency": currency, "count": n, "amount": amount} for currency, (n, amount) in sums.items()]

    bills = figures.bills
    filters = {name: getattr(query, name) for name in ("channel", "step", "plan", "language", "variant")}
    return {
        "from": query.first_week.isoformat(), "to": (query.last_week + timedelta(days=6)).isoformat(),
        "by": query.by, "filters": {name: value for name, value in filters.items() if value is not None},
        "attribution_window_days": window_days,
        "computed_at": computed_at.isoformat().replace("+00:00", "Z") if computed_at else None,
        "rows": [_funnel_row_json(row, key(row.key)) for row in figures.rows],
        "total": _funnel_row_json(figures.total, None),
        "payments": {source: by_currency(sums) for source, sums in figures.payments.items()},
        "bills": {
            "due": bills.bills, "paid": bills.paid, "paid_before_first_reminder": bills.paid_before_reminder,
            "handed_off": bills.handed_off,
            "promises": {"made": bills.promises, "kept": bills.promises_kept, "broken": bills.promises_broken},
            "plans": {"made": bills.plans, "completed": bills.plans_completed, "broken": bills.plans_broken},
            "days_sales_outstanding": [{"currency": currency, "days": round(days, 2)}
                                       for currency, days in bills.dso.items()],
        },
        "clarity": {"answers": figures.clarity.answers, "clear": figures.clarity.clear,
                    "comments": figures.clarity.comments,
                    "score": None if figures.clarity.score is None else round(figures.clarity.score, 4)},
    }
