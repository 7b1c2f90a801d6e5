"""Where a bill stands, for the agent's row in the inbox and the side of a request: its state in a word
(due, overdue, in collection, paid, closed), what is left to pay, and the next reminder and its day
(or why none goes); and the clock of an item against the creditor's service-level target (answer
within so many working days where the creditor is)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from flask_babel import gettext as _

from app.billing.models import Invoice, InvoiceStatus
from app.dunning.calendar import is_holiday
from app.dunning.outlook import next_step
from app.i18n import country_zone
from app.resolutions.pause import pause_words
from app.resolutions.services import dunning_for

STATES = ("due", "overdue", "in_collection", "paid", "closed")


@dataclass(frozen=True)
class Standing:
    state: str  # one of STATES
    left: int  # what is left to pay (never below zero)
    currency: str
    next_reminder: date | None  # the day the next step of its plan goes, while reminders may go
    paused: str | None  # why no reminder goes now (words), if one would otherwise
    paused_until: date | None = None

    @property
    def label(self) -> str:
        return state_label(self.state)


def state_label(state: str) -> str:
    return {"due": _("Due"), "overdue": _("Overdue"), "in_collection": _("In debt collection"), "paid": _("Paid"),
            "closed": _("Closed")}.get(state, state)


def standing(invoice: Invoice, today: date) -> Standing:
    """Where `invoice` stands on `today` (the creditor's day)."""
    left = max(invoice.balance, 0)
    if invoice.status == InvoiceStatus.PAID or (left == 0 and not invoice.is_closed):
        return Standing("paid", 0, invoice.currency, None, None)
    if invoice.is_closed:
        return Standing("closed", 0, invoice.currency, None, None)
    if invoice.status == InvoiceStatus.IN_COLLECTION:
        return Standing("in_collection", left, invoice.currency, None, None)
    state = "overdue" if invoice.due_date < today else "due"
    pause = dunning_for(invoice, today)
    if not pause.may_remind:
        return Standing(state, left, invoice.currency, None, pause_words(pause.reason), pause.until)
    step = next_step(invoice, today)
    return Standing(state, left, invoice.currency, step.on if step else None, None)


def answer_by(since: datetime, working_days: int, country: str) -> datetime:
    """The moment an answer is due: `working_days` working days (no weekends, no public holidays where
    the creditor is) after `since`, at the same time of day there."""
    zone = country_zone(country)
    local = since.astimezone(zone)
    day = local.date()
    added = 0
    while added < working_days:
        day += timedelta(days=1)
        if day.weekday() < 5 and not is_holiday(day, country):  # Monday to Friday, not a public holiday
            added += 1
    due = datetime.combine(day, local.timetz().replace(tzinfo=None))
    return zone.localize(due) if hasattr(zone, "localize") else due.replace(tzinfo=zone)
