"""A creditor's invoices as a list (`GET /api/v1/invoices`): filtered by status, due date, customer
and last change, in a stable order (creation: the id), a page at a time by an opaque cursor."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select

from app.billing.models import Customer, Invoice, InvoiceStatus
from app.core import cursors
from app.errors import InvalidData
from app.extensions import db

PREFIX = "inc"
DEFAULT_LIMIT = 50
MAX_LIMIT = 200


@dataclass(frozen=True)
class InvoiceFilter:
    statuses: tuple[str, ...] = ()
    due_from: date | None = None
    due_to: date | None = None
    customer_ref: str | None = None
    updated_since: datetime | None = None


def check(found: InvoiceFilter) -> None:
    errors = {}
    unknown = [s for s in found.statuses if s not in set(InvoiceStatus)]
    if unknown:
        errors["status"] = f"one or more of {', '.join(InvoiceStatus)}"
    if found.due_from and found.due_to and found.due_from > found.due_to:
        errors["due_to"] = "before due_from"
    if errors:
        raise InvalidData(errors)


def page(creditor_id: int, found: InvoiceFilter, *, after: str | None, livemode: bool = True,
         limit: int = DEFAULT_LIMIT) -> tuple[list[Invoice], str | None]:
    """Up to `limit` of the creditor's invoices of this mode (live, or test) that match, after the
    cursor, oldest first; the next page's cursor (None when this page is the last)."""
    check(found)
    query = select(Invoice).where(Invoice.creditor_id == creditor_id, Invoice.livemode == livemode)
    if after:
        try:
            (last,) = cursors.decode(PREFIX, after, 1)
        except ValueError:
            raise InvalidData({"after": "a next_cursor from an earlier answer of this list"}) from None
        query = query.where(Invoice.id > last)
    if found.statuses:
        query = query.where(Invoice.status.in_(found.statuses))
    if found.due_from:
        query = query.where(Invoice.due_date >= found.due_from)
    if found.due_to:
        query = query.where(Invoice.due_date <= found.due_to)
    if found.customer_ref is not None:
        query = query.join(Customer, Customer.id == Invoice.customer_id).where(
            Customer.creditor_id == creditor_id, Customer.livemode == livemode,
            Customer.external_ref == found.customer_ref)
    if found.updated_since:
        query = query.where(Invoice.updated_at >= found.updated_since)
    invoices = list(db.session.scalars(query.order_by(Invoice.id).limit(limit + 1)))
    more = len(invoices) > limit
    invoices = invoices[:limit]
    return invoices, cursors.encode(PREFIX, invoices[-1].id) if more else None
