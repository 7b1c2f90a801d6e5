"""Results of an experiment on a reminder step's text, per variant: for the creditor console's plan
pages, and for the API later.

What is counted, for one step of one plan version (its variants, stopped ones too):

- **sent**: the messages of the run whose text this step chose (a message for several bills speaks
  with its most advanced step) that carried the variant's key and reached their channel (status sent,
  delivered or opened: a message that failed or bounced is not counted, its fall-back carries the same
  key and is counted instead);
- **opened**: of those, the messages whose link was opened (once or more), with its rate;
- **clicks**: how many times the messages' links were opened in all, and the mean per message;
- **paid**: of the messages sent at least `window_days` (14) days ago (**in window**), those whose
  bills (every bill of this step the message reminded of) were paid in full within `window_days` days
  of the message, with its rate; **days to pay**: the mean, over those, of the days from the message
  to the last payment recorded on its bills (`payment_recorded`, whatever way it came).

Rates carry the Wilson interval and means Student's t (`intervals`, SciPy), at 95 %. Test bills
(`Invoice.livemode` false) are never counted (the run does not remind them either).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select

from app.analytics.intervals import Interval, mean_interval, rate_interval
from app.billing.models import Invoice, InvoiceEvent, InvoiceStatus
from app.dunning.models import Message, MessageStatus, Notice, Step, StepKind, StepVariant
from app.extensions import db
from app.links.models import AccessLink
from app.models import utcnow

#: the days after a message within which a payment counts as its result
WINDOW_DAYS = 14
#: every payment, whatever its way (card, transfer, the partner, an agent), is recorded as this event
PAYMENT_EVENT = "payment_recorded"
REACHED = (MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.OPENED)


@dataclass(frozen=True)
class VariantResult:
    key: str
    weight: int
    active: bool
    sent: int
    opened: int
    open_rate: Interval
    clicks: int
    clicks_per_message: Interval
    in_window: int
    paid: int
    pay_rate: Interval
    days_to_pay: Interval


@dataclass
class _Tally:
    sent: int = 0
    opened: int = 0
    clicks: list[int] | None = None
    in_window: int = 0
    paid_days: list[float] | None = None


def _led_by(step_id: int, message_ids: set[int]) -> set[int]:
    """The messages among these whose text this step chose: a consolidated message speaks with its most
    advanced step (the oldest bill's, among equals), as `dunning.messages` writes it."""
    if not message_ids:
        return set()
    leads: dict[int, tuple[tuple[int, int], int]] = {}
    for message_id, notice_step, kind, due_date in db.session.execute(
            select(Notice.message_id, Notice.step_id, Notice.kind, Invoice.due_date)
            .join(Invoice, Invoice.id == Notice.invoice_id).where(Notice.message_id.in_(message_ids))):
        rank = (StepKind(kind).rank, -due_date.toordinal())
        if message_id is None:
            continue
        if message_id not in leads or rank > leads[message_id][0]:
            leads[message_id] = (rank, notice_step)
    return {message_id for message_id, (_rank, lead) in leads.items() if lead == step_id}


def step_results(creditor_id: int, step_id: int, *, window_days: int = WINDOW_DAYS,
                 now: datetime | None = None) -> list[VariantResult]:
    """Each variant of the step (by key), with its results; [] for a step of another creditor."""
    now = now or utcnow()
    found = db.session.scalars(
        select(StepVariant).join(Step, Step.id == StepVariant.step_id)
        .where(StepVariant.step_id == step_id, Step.plan.has(creditor_id=creditor_id))
        .order_by(StepVariant.id)).all()
    if not found:
        return []
    rows = db.session.execute(
        select(Message.id, Message.variant, Message.created_at, Message.status, AccessLink.open_count,
               AccessLink.last_opened_at, Invoice.id, Invoice.status)
        .join(Notice, Notice.message_id == Message.id)
        .join(Invoice, Invoice.id == Notice.invoice_id)
        .outerjoin(AccessLink, AccessLink.id == Message.link_id)
        .where(Message.creditor_id == creditor_id, Notice.creditor_id == creditor_id, Notice.step_id == step_id,
               Message.variant.in_([variant.key for variant in found]), Message.status.in_(REACHED),
               Invoice.livemode.is_(True))).all()
    led = _led_by(step_id, {row[0] for row in rows})
    rows = [row for row in rows if row[0] in led]
    paid_ids = {row[6] for row in rows if row[7] == InvoiceStatus.PAID}
    paid_at: dict[int, datetime] = dict(db.session.execute(
        select(InvoiceEvent.invoice_id, func.max(InvoiceEvent.created_at))
        .where(InvoiceEvent.invoice_id.in_(paid_ids), InvoiceEvent.kind == PAYMENT_EVENT)
        .group_by(InvoiceEvent.invoice_id)).all()) if paid_ids else {}
    messages: dict[int, dict] = {}
    for message_id, key, created_at, status, open_count, last_opened_at, invoice_id, invoice_status in rows:
        one = messages.setdefault(message_id, {"key": key, "at": created_at, "clicks": open_count or 0,
                                               "opened": status == MessageStatus.OPENED or last_opened_at is not None,
                                               "bills": []})
        one["bills"].append(paid_at.get(invoice_id) if invoice_status == InvoiceStatus.PAID else None)
    tallies = {variant.key: _Tally(clicks=[], paid_days=[]) for variant in found}
    window = timedelta(days=window_days)
    for one in messages.values():
        tally = tallies[one["key"]]
        tally.sent += 1
        tally.opened += one["opened"]
        assert tally.clicks is not None and tally.paid_days is not None
        tally.clicks.append(one["clicks"])
        if one["at"] + window > now:
            continue  # its window is still open: not counted for payment yet
        tally.in_window += 1
        bills = one["bills"]
        if all(at is not None for at in bills):
            last = max(bills)
            if last - one["at"] <= window:
                tally.paid_days.append(max((last - one["at"]).total_seconds(), 0) / 86400)
    results = []
    for variant in found:
        tally = tallies[variant.key]
        assert tally.clicks is not None and tally.paid_days is not None
        results.append(VariantResult(
            variant.key, variant.weight, variant.active, tally.sent, tally.opened,
            rate_interval(tally.opened, tally.sent), sum(tally.clicks), mean_interval(tally.clicks),
            tally.in_window, len(tally.paid_days), rate_interval(len(tally.paid_days), tally.in_window),
            mean_interval(tally.paid_days)))
    return results
