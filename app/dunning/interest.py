"""German default interest (§§ 286, 288 BGB) on an invoice: when default began, what it runs on,
and what a step adds. The arithmetic and the base rates are in `jurisdictions`."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import func, select

from app.billing.models import FEE_KINDS, Invoice, InvoiceLine, Reminder
from app.core.dates import local_today
from app.dunning import jurisdictions
from app.dunning.settings import consumer_default_notice
from app.extensions import db


def default_begins(invoice: Invoice) -> date | None:
    """Germany: the first day of default interest, or None while the customer is not in default:
    the day after the first reminder sent after the due date (§ 286(1) BGB), or the 31st day after
    the due date for a business, and for a consumer where the creditor's invoices say so (§ 286(3))."""
    country = invoice.creditor.country
    first = db.session.scalar(select(func.min(Reminder.sent_at)).where(Reminder.invoice_id == invoice.id))
    days = []
    if first is not None and local_today(country, first) > invoice.due_date:
        days.append(local_today(country, first) + timedelta(days=1))
    if invoice.customer.kind == "business" or consumer_default_notice(invoice.creditor):
        days.append(invoice.due_date + timedelta(days=jurisdictions.DE_DEFAULT_DAYS + 1))
    return min(days) if days else None


def principal_owed(invoice: Invoice) -> int:
    """What interest runs on: the balance less the fees and interest not paid yet (payments settle
    costs and interest first, § 367 BGB; interest is not charged on interest, § 289)."""
    charges = db.session.scalar(select(func.coalesce(func.sum(InvoiceLine.gross), 0))
                                .where(InvoiceLine.invoice_id == invoice.id, InvoiceLine.kind.in_(FEE_KINDS)))
    return max(invoice.balance - max(int(charges or 0) - invoice.amount_paid, 0), 0)


def default_interest(invoice: Invoice, today: date) -> jurisdictions.Interest:
    """German default interest on the invoice up to `today`, in minor units, with its rates and the day
    it runs from (`since` None and 0 while not in default). What interest lines charged already is not
    taken off: `interest_due` does that."""
    since = default_begins(invoice)
    if since is None or since > today:
        return jurisdictions.Interest(0, principal_owed(invoice), None, today)
    return jurisdictions.default_interest_amount(principal_owed(invoice), since, today,
                                                 business=invoice.customer.kind == "business")


def interest_due(invoice: Invoice, today: date) -> int:
    """Default interest to date less what interest lines charged already: what a step adds."""
    charged = db.session.scalar(select(func.coalesce(func.sum(InvoiceLine.gross), 0))
                                .where(InvoiceLine.invoice_id == invoice.id, InvoiceLine.kind == "interest"))
    return max(default_interest(invoice, today).amount - int(charged or 0), 0)
