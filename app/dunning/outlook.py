"""What happens next to a bill, by its plan, in facts (the words are the bill page's and the API's):
the deadline the last notice gave, the next step that costs the customer something or warns them
(a nudge before the due date is passed over: it is only a nudge), its day, fee and channel, the
first day the bill may go to debt collection once a collection warning went, and why the dialogue
waits when it does.

Read-only. A few small statements (the plan's steps, the bill's notices, an open question); the bill
page calls it when it renders, never on a cached view (the page's version holds every column the
answer depends on: `access.services.bill_access`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import select

from app.billing.models import Invoice, InvoiceStatus
from app.dunning import engine
from app.dunning.jurisdictions import DE_DEFAULT_DAYS, DE_FLAT_FEE, in_force, reminder_fee_cap
from app.dunning.models import Jurisdiction, Notice, NoticeStatus, Plan, Step, StepKind
from app.dunning.settings import consumer_default_notice
from app.extensions import db
from app.resolutions.pause import Dunning
from app.support.models import RequestStatus, SupportRequest

#: Why the dialogue waits, worth telling the customer (the others speak for themselves on the page:
#: paid, closed, in collection).
TOLD = ("dispute", "disputed", "deferral_request", "deferral", "promise", "plan", "plan_request", "on_hold",
        "open_question")


@dataclass(frozen=True)
class NextStep:
    """A step still to come: its kind, the day it is due by the plan, what it adds (fee, and whether
    it adds default interest), the channel it would go by today."""

    position: int
    kind: str
    on: date
    fee: int
    interest: bool
    channel: str | None
    channels: tuple[str, ...]
    deadline_days: int

    def pay_by(self, today: date) -> date | None:
        """The last day a payment keeps the step from going; None when it is due already."""
        day = self.on - timedelta(days=1)
        return day if day >= today else None


@dataclass(frozen=True)
class Outlook:
    """What happens next to a bill (see the module). `step` is None when nothing more is planned."""

    plan_name: str
    plan_version: int
    jurisdiction: str
    step: NextStep | None = None
    deadline: date | None = None  # the payment deadline of the last notice sent, if still ahead (or today)
    deadline_kind: str | None = None
    hand_off_from: date | None = None  # a collection warning went: the first day of a hand-off
    waits: str | None = None  # why the dialogue waits (a pause reason, open_question)
    waits_until: date | None = None

    @property
    def anything(self) -> bool:
        return bool(self.step or self.deadline or self.hand_off_from or self.waits)


def has_open_question(invoice_id: int) -> bool:
    return db.session.scalar(select(SupportRequest.id).where(
        SupportRequest.invoice_id == invoice_id, SupportRequest.status == RequestStatus.OPEN).limit(1)) is not None


def outlook(invoice: Invoice, today: date, pause: Dunning, *, open_question: bool | None = None) -> Outlook | None:
    """What happens next to the invoice by its plan, or None: no plan runs it (none assigned, or
    excluded), or it is paid, closed or with a collection partner. `pause`: the pause rule's answer
    today (`resolutions.services.dunning_for`); `open_question`: whether a question of the customer
    waits for an answer (read here when not given)."""
    if invoice.dunning_plan_id is None or invoice.dunning_excluded or invoice.customer.dunning_excluded:
        return None
    if invoice.is_closed or invoice.balance <= 0 or invoice.status in (InvoiceStatus.PAID,
                                                                        InvoiceStatus.IN_COLLECTION):
        return None
    plan = db.session.get(Plan, invoice.dunning_plan_id)
    if plan is None:
        return None
    steps = {step.position: step for step in plan.steps}
    sent = list(db.session.scalars(select(Notice).where(Notice.invoice_id == invoice.id, Notice.plan_id == plan.id,
                                                        Notice.status != NoticeStatus.SKIPPED)
                                   .order_by(Notice.position)))
    deadline = deadline_kind = hand_off_from = None
    if sent:
        last = sent[-1]
        if last.deadline is not None and last.deadline >= today:
            deadline, deadline_kind = last.deadline, last.kind
        started = [n.deadline for n in sent if n.deadline is not None and n.position in steps
                   and steps[n.position].starts_hand_off]
        if started:
            hand_off_from = started[-1] + timedelta(days=1)
            if hand_off_from <= today:
                deadline = None
    waits = until = None
    if not pause.may_remind:
        waits, until = pause.reason, pause.until
    elif open_question if open_question is not None else has_open_question(invoice.id):
        waits = "open_question"
    return Outlook(plan.name, plan.version, plan.jurisdiction, _next_step(invoice, plan, steps, today),
                   deadline, deadline_kind, hand_off_from, waits if waits in TOLD else None, until)


def next_step(invoice: Invoice, today: date) -> NextStep | None:
    """The invoice's next step by its plan, a nudge included (the creditor API), or None: no plan runs
    it, or no step is left."""
    if invoice.dunning_plan_id is None or invoice.dunning_excluded or invoice.customer.dunning_excluded:
        return None
    plan = db.session.get(Plan, invoice.dunning_plan_id)
    if plan is None:
        return None
    return _next_step(invoice, plan, {step.position: step for step in plan.steps}, today, skip_nudges=False)


def _next_step(invoice: Invoice, plan: Plan, steps: dict[int, Step], today: date, *,
               skip_nudges: bool = True) -> NextStep | None:
    """The invoice's next step (that is not a nudge, with `skip_nudges`), with the day it is due by the
    plan when every step before it goes on its day."""
    position, on = invoice.dunning_next_position, invoice.dunning_next_on
    if position is None or on is None:
        return None
    step = steps.get(position)
    while skip_nudges and step is not None and step.kind == StepKind.PRE_DUE:
        following = steps.get(step.position + 1)
        if following is None:
            return None
        on = engine.step_day(engine_step(following), invoice.due_date, max(on, today), step.deadline_days)
        step = following
    if step is None:
        return None
    fee = step.fee
    if fee and plan.jurisdiction == Jurisdiction.NO:
        fee = min(fee, reminder_fee_cap(max(on, today)))
    if step.flat_fee and invoice.customer.kind == "business":
        fee += int(in_force(DE_FLAT_FEE, max(on, today)).value)
    info = engine_step(step)
    channel = engine.choose_channel(invoice.customer, engine_plan(plan), info)
    return NextStep(step.position, step.kind, max(on, today), fee, step.adds_interest, channel,
                    tuple(step.channels), step.deadline_days)


def engine_step(step: Step) -> engine.StepInfo:
    return engine.StepInfo(step.id, step.position, step.kind, step.anchor, step.offset_days, tuple(step.channels),
                           step.fee, step.deadline_days, step.starts_hand_off, step.adds_interest, step.flat_fee,
                           tuple(step.texts))


def engine_plan(plan: Plan) -> engine.PlanInfo:
    return engine.PlanInfo(plan.id, plan.name, plan.version, plan.jurisdiction,
                           {step.position: engine_step(step) for step in plan.steps})


def default_notice_date(invoice: Invoice) -> date | None:
    """Germany, § 286(3) BGB: where the creditor's invoices tell consumers that they are in default 30
    days after the due date and receipt, the first day of default at the earliest (the bill page and
    the invoice PDF say so); None elsewhere, and for business customers (in default then by law anyway)."""
    if invoice.customer.kind != "consumer" or not consumer_default_notice(invoice.creditor):
        return None
    return invoice.due_date + timedelta(days=DE_DEFAULT_DAYS + 1)
