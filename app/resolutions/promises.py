"""Promises to pay: a date within the creditor's limit; reminders wait until then plus the grace days."""

from __future__ import annotations

from datetime import date, timedelta

from app.billing.models import Invoice
from app.billing.services import record_event
from app.errors import InvalidData
from app.resolutions.models import Kind, Resolution, Status
from app.resolutions.services import ACTOR, create_once, require, submitted_before, to_customer


def promise_window(invoice: Invoice, today: date) -> tuple[date, date]:
    """The dates a customer may promise: from tomorrow to the creditor's limit."""
    return today + timedelta(days=1), today + timedelta(days=invoice.creditor.promise_max_days)


def check_promise(invoice: Invoice, promised: date | None, today: date) -> None:
    require(invoice, "promise", today)
    first, last = promise_window(invoice, today)
    if promised is None or not first <= promised <= last:
        raise InvalidData({"date": "range"})


def make_promise(invoice: Invoice, promised: date, *, locale: str, submission_key: str,
                 today: date) -> tuple[Resolution, bool]:
    """Reminders pause until the promised date plus the grace days; an e-mail confirms it (with a
    calendar file) and another comes the day before."""
    existing = submitted_before(invoice, submission_key) if submission_key else None
    if existing is not None:
        return existing, False
    check_promise(invoice, promised, today)

    def after(promise: Resolution) -> None:
        record_event(invoice, "promise_made", ACTOR, reference=promise.reference, date=promised.isoformat(),
                     amount=promise.amount)
        to_customer(promise, "promise_confirmed")

    return create_once(invoice, submission_key, lambda: Resolution(
        kind=Kind.PROMISE, status=Status.ACTIVE, new_date=promised, amount=invoice.balance, locale=locale,
    ), after)
