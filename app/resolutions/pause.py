"""The one rule for pausing: may this invoice be reminded, or handed to debt collection, today?

Everything that sends a reminder or hands an invoice off asks `dunning()` first: the creditor API
shows its answer with every invoice (`dunning` in the invoice JSON), and the debt-collection
hand-off calls it before a case leaves. Whatever the customer chose on the bill page (a dispute,
a promise, a deferral, an instalment plan) pauses every channel and the hand-off at once, and
the pause ends by itself when its date passes (a promise's date plus the grace days, a deferral's
new due date, an agent's hold until a day) or when someone acts (an agent answers a dispute or a
request, or resumes reminders; a plan is broken).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Protocol

from flask_babel import gettext as _

from app.billing.models import Invoice, InvoiceStatus
from app.resolutions.models import Kind, Resolution, Status


@dataclass(frozen=True)
class Dunning:
    """The answer: whether reminders and the hand-off may go ahead, and if not, why and until when.

    reason: paid, closed, in_collection, dispute, deferral_request, deferral, promise, plan,
    plan_request, disputed or on_hold (an agent's hold). until: the last day of the pause when it
    ends by itself; None when it lasts until someone acts."""

    may_remind: bool
    may_hand_off: bool
    reason: str | None = None
    until: date | None = None

    @property
    def paused(self) -> bool:
        return not (self.may_remind and self.may_hand_off)


GO = Dunning(True, True)


def pause_words(reason: str | None) -> str:
    """Why reminders (and the hand-off) wait, in words, in the current locale."""
    return {
        "paid": _("the bill is paid"), "closed": _("the bill is closed"),
        "in_collection": _("it is in debt collection"),
        "dispute": _("a dispute is open"), "disputed": _("the bill is disputed"),
        "deferral_request": _("a request for more time waits"), "deferral": _("more time was granted"),
        "promise": _("the customer promised a date"), "plan": _("an instalment plan runs"),
        "plan_request": _("a request for a plan waits"), "on_hold": _("an agent paused them"),
    }.get(reason or "", reason or "")


class _Creditor(Protocol):
    @property
    def grace_days(self) -> int: ...


class Paused(Protocol):
    """What the rule reads of an invoice: an `Invoice`, or a row the dunning run read (`dunning.engine.Bill`)."""

    @property
    def status(self) -> str: ...
    @property
    def balance(self) -> int: ...
    @property
    def is_closed(self) -> bool: ...
    @property
    def hold_until(self) -> date | None: ...
    @property
    def creditor(self) -> _Creditor: ...


class Live(Protocol):
    """What the rule reads of a live resolution: a `Resolution`, or a row the dunning run read."""

    @property
    def kind(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def new_date(self) -> date | None: ...


def dunning(invoice: Paused | Invoice, today: date, live: Iterable[Live | Resolution]) -> Dunning:
    """Decide from the invoice and its live resolutions (`services.live_resolutions`)."""
    if invoice.is_closed:
        return Dunning(False, False, "closed")
    if invoice.balance <= 0 or invoice.status == InvoiceStatus.PAID:
        return Dunning(False, False, "paid")
    if invoice.status == InvoiceStatus.IN_COLLECTION:
        return Dunning(False, False, "in_collection")
    pauses = [pause for pause in (_pause(r, today, invoice.creditor.grace_days) for r in live) if pause]
    if invoice.status == InvoiceStatus.DISPUTED:
        pauses.append((InvoiceStatus.DISPUTED, None))
    elif invoice.status == InvoiceStatus.ON_HOLD and (invoice.hold_until is None or today <= invoice.hold_until):
        pauses.append((InvoiceStatus.ON_HOLD, invoice.hold_until))  # an agent's hold with a day ends by itself
    if not pauses:
        return GO
    # The longest pause wins; one that waits for someone beats any date.
    reason, until = max(pauses, key=lambda pause: (pause[1] is None, pause[1] or date.min))
    return Dunning(False, False, reason, until)


def _pause(resolution: Live | Resolution, today: date, grace_days: int) -> tuple[str, date | None] | None:
    kind, status = resolution.kind, resolution.status
    if kind == Kind.DISPUTE and status == Status.OPEN:
        return "dispute", None
    if kind == Kind.DEFERRAL and status == Status.OPEN:
        return "deferral_request", None
    if kind == Kind.DEFERRAL and status == Status.ACTIVE:
        assert resolution.new_date is not None  # a granted deferral has its date
        return ("deferral", resolution.new_date) if today <= resolution.new_date else None
    if kind == Kind.PROMISE and status == Status.ACTIVE:
        assert resolution.new_date is not None  # a promise has its date
        until = resolution.new_date + timedelta(days=grace_days)
        return ("promise", until) if today <= until else None
    if kind == Kind.PLAN and status == Status.ACTIVE:
        return "plan", None
    if kind == Kind.PLAN and status == Status.OPEN:
        return "plan_request", None
    return None
