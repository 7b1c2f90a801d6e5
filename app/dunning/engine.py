"""The run's decisions and writes, set-wise, one batch of customers at a time. No commits: the
loop that commits each batch is `worker.py`.

A batch is a few hundred customers with bills due (`dunning_next_on` on or before today), taken
with their rows locked (`FOR UPDATE SKIP LOCKED` on the customers: two runners never decide the
same customer, and a customer's bills are decided together). For a batch, a handful of reads
(customers, bills, live resolutions, open questions, each customer's last message, notices already
written) and then, per customer, in Python: the pause rule (`resolutions.pause.dunning`), an open
question, exclusions, the cap across the customer's bills, the channel (the steps' channels in
order of preference, the customer's preferred one first, filtered by consents and contact points;
Norway's inkassovarsel by letter unless electronic notices were agreed to), quiet hours, Sundays
and holidays. Then one set of bulk writes: messages (one per customer: consolidated), outbox rows
or letters, notices, fee lines (`billing.services.add_charges`), reminders, events, and each bill's
next step. Every bill of the batch gets a `dunning_next_on` again: the next step's day, the day the
pause or the cap ends, tomorrow, or None when dunning is over for it (paid, closed, in collection,
excluded, plan done), so that a second run the same day finds nothing to decide.

Test bills (`Invoice.livemode` false, docs/api.md "Test mode") are never read: neither enrolled nor
reminded, whatever plan the API gave them.

Idempotent: a notice is unique per (invoice, plan, position); it is written in the same
transaction as its message and the bill's next step, so a crash leaves either all or none.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from types import SimpleNamespace
from typing import Protocol

from blinker import signal
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import Select, func, select

from app.billing.models import Customer, Invoice, InvoiceEvent, InvoiceStatus, Reminder
from app.billing.services import Charge, add_charges
from app.billing.texts import PORTAL_LINE_TEXTS
from app.core.bulk import in_ids, insert_rows, update_rows
from app.core.validation import is_e164, is_email
from app.creditors.models import Creditor
from app.dunning import calendar, variants
from app.dunning.interest import interest_due
from app.dunning.jurisdictions import DE_FLAT_FEE, in_force, reminder_fee_cap
from app.dunning.models import (
    Channel,
    Jurisdiction,
    Letter,
    LetterStatus,
    Message,
    MessageStatus,
    Notice,
    NoticeStatus,
    Plan,
    Settings,
    Step,
    StepKind,
)
from app.dunning.settings import languages_of
from app.extensions import db
from app.i18n import country_zone, normalise_locale
from app.models import utcnow
from app.outbox.services import enqueue_many
from app.resolutions.models import Resolution, Status
from app.resolutions.pause import dunning, pause_words
from app.support.models import RequestStatus, SupportRequest

ACTOR = "dunning"
KIND = "dunning.message"  # the outbox kind; rendered by app.dunning.messages
#: Sent (sender: the creditor's id; `events`, the `reminder_sent` timeline entries written, as dicts)
#: after the run wrote a batch's reminders, in its transaction. Events (app.events) tells the creditor.
reminders_written = signal("dunning-reminders-written")
STOPPED = ("paid", "closed", "in_collection")  # pause reasons that end dunning for the bill

# --- the clock -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Clock:
    """The run's day where the creditor is, and the moment quiet hours are read at."""

    today: date
    now: datetime

    @classmethod
    def of(cls, country: str, on: date | None, at: time, real_now: datetime | None = None) -> Clock:
        """`on` given (`--date`): that local day at `at` o'clock; else now."""
        if on is None:
            now = real_now or utcnow()
            return cls(now.astimezone(country_zone(country)).date(), now)
        local = datetime.combine(on, at).replace(tzinfo=calendar.zone(None, country))
        return cls(on, local.astimezone(UTC))


# --- what a run needs of a creditor, once ---------------------------------------------------------------


@dataclass(frozen=True)
class StepInfo:
    id: int
    position: int
    kind: str
    anchor: str
    offset_days: int
    channels: tuple[str, ...]
    fee: int
    deadline_days: int
    starts_hand_off: bool
    adds_interest: bool
    flat_fee: bool
    locales: tuple[str, ...]
    variants: tuple[VariantInfo, ...] = ()  # the active variants of its text (`variants.assign`)


@dataclass(frozen=True)
class VariantInfo:
    key: str
    weight: int


@dataclass(frozen=True)
class PlanInfo:
    id: int
    name: str
    version: int
    jurisdiction: str
    steps: dict[int, StepInfo]


@dataclass
class Context:
    creditor_id: int
    slug: str
    country: str
    currency: str
    default_locale: str
    grace_days: int
    languages: tuple[str, ...]
    interval_days: int
    quiet_from: int
    quiet_until: int
    plans: dict[int, PlanInfo]
    default_plan_id: int | None
    fee_words: dict[tuple[str, str], str] = field(default_factory=dict)

    @property
    def pause_creditor(self) -> SimpleNamespace:
        return SimpleNamespace(grace_days=self.grace_days)


def load_context(creditor: Creditor) -> Context:
    settings = db.session.get(Settings, creditor.id)
    plans: dict[int, PlanInfo] = {}
    default = None
    for plan in db.session.scalars(select(Plan).where(Plan.creditor_id == creditor.id)):
        plans[plan.id] = PlanInfo(plan.id, plan.name, plan.version, plan.jurisdiction, {
            s.position: StepInfo(s.id, s.position, s.kind, s.anchor, s.offset_days, tuple(s.channels), s.fee,
                                 s.deadline_days, s.starts_hand_off, s.adds_interest, s.flat_fee, tuple(s.texts),
                                 tuple(VariantInfo(v.key, v.weight) for v in s.variants if v.active))
            for s in plan.steps})
        if plan.is_default:
            default = plan.id
    return Context(creditor.id, creditor.slug, creditor.country, creditor.currency,
                   normalise_locale(creditor.default_locale) or "en", creditor.grace_days,
                   tuple(languages_of(creditor)), settings.message_interval_days if settings else 3,
                   settings.quiet_from if settings else 21, settings.quiet_until if settings else 8, plans, default)


# --- the schedule (as services.step_date, on StepInfo) ---------------------------------------------------------


class Timed(Protocol):
    """A step as its day is reckoned: a saved `Step`, a `StepInfo`, a draft."""

    @property
    def anchor(self) -> str: ...
    @property
    def offset_days(self) -> int: ...


def step_day(step: Timed, due_date: date, sent_on: date, previous_deadline_days: int) -> date:
    planned = due_date + timedelta(days=step.offset_days) if step.anchor == "due_date" \
        else sent_on + timedelta(days=step.offset_days)
    gap = previous_deadline_days + 1 if previous_deadline_days > 0 else 1
    return max(planned, sent_on + timedelta(days=gap))


def first_position(plan: PlanInfo, due_date: date, today: date) -> tuple[int, date] | None:
    for position in sorted(plan.steps):
        step = plan.steps[position]
        day = due_date + timedelta(days=step.offset_days)
        if step.kind == StepKind.PRE_DUE and day < today:
            continue
        return position, max(day, today)
    return None


# --- enrolment --------------------------------------------------------------------------------------------


def enrol(ctx: Context, today: date, *, limit: int = 5000) -> int:
    """Give open bills without a plan the creditor's default plan and their first step (a pre-due nudge
    whose day has passed is skipped; every other step is kept, the first due at once). Bills of
    excluded customers stay out. Returns how many were enrolled (up to `limit` a call)."""
    plan = ctx.plans.get(ctx.default_plan_id) if ctx.default_plan_id else None
    if plan is None:
        return 0
    rows = db.session.execute(
        select(Invoice.id, Invoice.due_date).join(Customer, Customer.id == Invoice.customer_id)
        .where(Invoice.creditor_id == ctx.creditor_id, Invoice.dunning_plan_id.is_(None), Invoice.livemode.is_(True),
               Invoice.dunning_excluded.is_(False), Invoice.status.in_(("open", "partially_paid")),
               Customer.dunning_excluded.is_(False))
        .order_by(Invoice.id).limit(limit)).all()
    updates = []
    for invoice_id, due_date in rows:
        first = first_position(plan, due_date, today)
        updates.append({"id": invoice_id, "dunning_plan_id": plan.id,
                        "dunning_next_position": first[0] if first else None,
                        "dunning_next_on": first[1] if first else None})
    _update_invoices(updates)
    return len(updates)


def _update_invoices(rows: list[dict]) -> None:
    """Each bill's next step: rows of id, dunning_next_on, dunning_next_position (and dunning_plan_id)."""
    update_rows(db.session, Invoice.__table__, rows)


# --- a batch: who, and what we know of them -------------------------------------------------------------------


def candidate_customers(creditor_id: int, today: date) -> list[int]:
    """The customers with a bill due for a look (one range scan of ix_invoices_dunning_next_on), in order."""
    return list(db.session.scalars(
        select(Invoice.customer_id).where(Invoice.creditor_id == creditor_id, Invoice.dunning_next_on.is_not(None),
                                          Invoice.dunning_next_on <= today, Invoice.livemode.is_(True))
        .distinct().order_by(Invoice.customer_id)))


CUSTOMER_COLUMNS = (Customer.id, Customer.name, Customer.kind, Customer.email, Customer.phone, Customer.address_line1,
                    Customer.address_line2, Customer.postcode, Customer.city, Customer.country,
                    Customer.preferred_locale, Customer.preferred_channel, Customer.email_allowed,
                    Customer.sms_allowed, Customer.electronic_notices_allowed, Customer.email_unsubscribed_at,
                    Customer.sms_stopped_at, Customer.dunning_excluded, Customer.time_zone)
INVOICE_COLUMNS = (Invoice.id, Invoice.customer_id, Invoice.number, Invoice.status, Invoice.total, Invoice.amount_paid,
                   Invoice.due_date, Invoice.hold_until, Invoice.dunning_plan_id, Invoice.dunning_excluded,
                   Invoice.dunning_next_on, Invoice.dunning_next_position)


class Bill(SimpleNamespace):
    """An invoice as the pause rule reads it (status, balance, hold, creditor's grace days)."""

    @property
    def balance(self) -> int:
        return self.total - self.amount_paid

    @property
    def is_closed(self) -> bool:
        return self.status in InvoiceStatus.CLOSED


@dataclass
class Batch:
    customers: dict[int, SimpleNamespace]
    bills: dict[int, list[Bill]]  # by customer, oldest due first
    live: dict[int, list[SimpleNamespace]]  # resolutions by invoice
    questions: set[int]  # invoices with an open support request
    last_message: dict[int, datetime]  # by customer
    sent: set[tuple[int, int, int]]  # (invoice, plan, position) of notices written already


def claim(ctx: Context, customer_ids: Sequence[int], today: date, *, lock: bool) -> Batch:
    """Read a batch. `lock` (the run): the customers' rows FOR UPDATE SKIP LOCKED (those another runner
    holds are left to it) and their due bills FOR UPDATE; the preview reads without locks."""
    query: Select = select(*CUSTOMER_COLUMNS).where(in_ids(db.session, Customer.id, customer_ids),
                                                    Customer.creditor_id == ctx.creditor_id).order_by(Customer.id)
    if lock:
        query = query.with_for_update(skip_locked=True)
    customers = {row.id: SimpleNamespace(**row._mapping) for row in db.session.execute(query)}
    if not customers:
        return Batch({}, {}, {}, set(), {}, set())
    bills_query: Select = select(*INVOICE_COLUMNS).where(
        in_ids(db.session, Invoice.customer_id, list(customers)), Invoice.creditor_id == ctx.creditor_id,
        Invoice.dunning_next_on.is_not(None), Invoice.dunning_next_on <= today, Invoice.livemode.is_(True),
    ).order_by(Invoice.customer_id, Invoice.due_date, Invoice.id)
    if lock:
        bills_query = bills_query.with_for_update()
    bills: dict[int, list[Bill]] = defaultdict(list)
    creditor = ctx.pause_creditor
    for row in db.session.execute(bills_query):
        bills[row.customer_id].append(Bill(**row._mapping, creditor=creditor))
    invoice_ids = [bill.id for group in bills.values() for bill in group]
    live: dict[int, list[SimpleNamespace]] = defaultdict(list)
    questions: set[int] = set()
    sent: set[tuple[int, int, int]] = set()
    if invoice_ids:
        for row in db.session.execute(select(Resolution.invoice_id, Resolution.kind, Resolution.status,
                                             Resolution.new_date)
                                      .where(in_ids(db.session, Resolution.invoice_id, invoice_ids),
                                             Resolution.status.in_(Status.LIVE))):
            live[row.invoice_id].append(SimpleNamespace(kind=row.kind, status=row.status, new_date=row.new_date))
        questions = set(db.session.scalars(select(SupportRequest.invoice_id).where(
            in_ids(db.session, SupportRequest.invoice_id, invoice_ids), SupportRequest.status == RequestStatus.OPEN)))
        sent = {(row[0], row[1], row[2]) for row in db.session.execute(
            select(Notice.invoice_id, Notice.plan_id, Notice.position).where(Notice.invoice_id.in_(invoice_ids)))}
    last_message = dict(db.session.execute(
        select(Message.customer_id, func.max(Message.created_at))
        .where(in_ids(db.session, Message.customer_id, list(bills))).group_by(Message.customer_id)).all()) \
        if bills else {}
    return Batch(customers, dict(bills), dict(live), questions, last_message, sent)


# --- deciding -------------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What the run does with one bill now: send its step, wait (until `next_on`), or stop."""

    bill: Bill
    action: str  # send | wait | stop
    reason: str | None = None  # why it waits or stops
    step: StepInfo | None = None
    plan: PlanInfo | None = None
    next_on: date | None = None
    next_position: int | None = None

    @property
    def to_send(self) -> tuple[PlanInfo, StepInfo]:
        """The plan and the step of an outcome that sends (or was to): both are set then."""
        assert self.plan is not None and self.step is not None
        return self.plan, self.step


@dataclass
class Decision:
    """A customer's bills decided together, and the one message that carries the steps that go."""

    customer: SimpleNamespace
    outcomes: list[Outcome] = field(default_factory=list)
    channel: str | None = None
    recipient: str | None = None
    locale: str | None = None
    variant: str | None = None  # the key of the lead step's text variant the message carries

    @property
    def sending(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.action == "send"]


def postal_address(customer) -> dict | None:
    if not (customer.address_line1 and customer.city and customer.country):
        return None
    return {"name": customer.name, "line1": customer.address_line1, "line2": customer.address_line2,
            "postcode": customer.postcode, "city": customer.city, "country": customer.country}


def reachable(customer, channel: str, *, legal: bool) -> bool:
    """As `services.reachable`, on a row (consent, not unsubscribed or stopped, a contact point on file;
    a legal notice electronically only with consent to electronic notices; a letter needs an address)."""
    if channel == Channel.LETTER:
        return postal_address(customer) is not None
    if legal and not customer.electronic_notices_allowed:
        return False
    if channel == Channel.EMAIL:
        return bool(customer.email_allowed and customer.email_unsubscribed_at is None and is_email(customer.email))
    if channel == Channel.SMS:
        return bool(customer.sms_allowed and customer.sms_stopped_at is None and is_e164(customer.phone))
    return False


def is_legal_notice(plan: PlanInfo | Plan, step: StepInfo | Step) -> bool:
    """A notice the law wants in writing: Norway's inkassovarsel."""
    return plan.jurisdiction == Jurisdiction.NO and step.kind == StepKind.COLLECTION_WARNING


def choose_channel(customer, plan: PlanInfo, step: StepInfo) -> str | None:
    """The first of the step's channels (the customer's preferred one first, if the step has it) that
    reaches the customer; a letter when none does (and the customer has an address); else None."""
    legal = is_legal_notice(plan, step)
    order = list(step.channels)
    if customer.preferred_channel in order:
        order.remove(customer.preferred_channel)
        order.insert(0, customer.preferred_channel)
    for channel in order:
        if reachable(customer, channel, legal=legal):
            return channel
    return Channel.LETTER if reachable(customer, Channel.LETTER, legal=legal) else None


def _stop(bill: Bill, reason: str) -> Outcome:
    return Outcome(bill, "stop", reason)


def _wait(bill: Bill, reason: str, until: date, position: int | None = None) -> Outcome:
    return Outcome(bill, "wait", reason, next_on=until, next_position=position or bill.dunning_next_position)


def decide(ctx: Context, batch: Batch, clock: Clock) -> list[Decision]:
    """Each customer's bills decided together (see the module's docstring)."""
    today, tomorrow = clock.today, clock.today + timedelta(days=1)
    decisions = []
    for customer_id, bills in batch.bills.items():
        customer = batch.customers[customer_id]
        decision = Decision(customer)
        decisions.append(decision)
        due: list[Outcome] = []
        for bill in bills:
            plan = ctx.plans.get(bill.dunning_plan_id)
            step = plan.steps.get(bill.dunning_next_position) if plan else None
            if customer.dunning_excluded or bill.dunning_excluded:
                decision.outcomes.append(_stop(bill, "excluded"))
                continue
            if plan is None or step is None:
                decision.outcomes.append(_stop(bill, "plan_done"))
                continue
            answer = dunning(bill, today, batch.live.get(bill.id, ()))
            if not answer.may_remind:
                if answer.reason in STOPPED:
                    decision.outcomes.append(_stop(bill, answer.reason))
                else:
                    until = answer.until + timedelta(days=1) if answer.until else tomorrow
                    decision.outcomes.append(_wait(bill, answer.reason or "paused", max(until, tomorrow)))
                continue
            if bill.id in batch.questions:
                decision.outcomes.append(_wait(bill, "open_question", tomorrow))
                continue
            if (bill.id, plan.id, step.position) in batch.sent:
                decision.outcomes.append(_advance_after_sent(bill, plan, step, today))
                continue
            if step.kind == StepKind.PRE_DUE and today >= bill.due_date:
                decision.outcomes.append(_skip_nudge(bill, plan, step, today))
                continue
            outcome = Outcome(bill, "send", step=step, plan=plan)
            decision.outcomes.append(outcome)
            due.append(outcome)
        if due:
            _decide_message(ctx, decision, due, batch, clock)
    return decisions


def _advance_after_sent(bill: Bill, plan: PlanInfo, step: StepInfo, today: date) -> Outcome:
    """The step went out before (the notice exists): move on to the next one, as after sending."""
    following = plan.steps.get(step.position + 1)
    if following is None:
        return _stop(bill, "plan_done")
    return _wait(bill, "sent_before", step_day(following, bill.due_date, today, step.deadline_days),
                 following.position)


def _skip_nudge(bill: Bill, plan: PlanInfo, step: StepInfo, today: date) -> Outcome:
    """A pre-due nudge whose day passed while it waited is not sent late: the next step follows."""
    following = plan.steps.get(step.position + 1)
    if following is None:
        return _stop(bill, "plan_done")
    day = max(bill.due_date + timedelta(days=following.offset_days), today)
    return _wait(bill, "nudge_too_late", day, following.position)


def _decide_message(ctx: Context, decision: Decision, due: list[Outcome], batch: Batch, clock: Clock) -> None:
    customer, today = decision.customer, clock.today

    def hold(reason: str, until: date) -> None:
        for outcome in due:
            outcome.action, outcome.reason, outcome.next_on = "wait", reason, until
            outcome.next_position = outcome.bill.dunning_next_position

    found = [choose_channel(customer, *o.to_send) for o in due]
    channels = [channel for channel in found if channel is not None]
    if len(channels) < len(found):
        hold("no_contact", today + timedelta(days=1))
        return
    lead = max(range(len(due)), key=lambda i: (StepKind(due[i].to_send[1].kind).rank, -i))
    channel = Channel.LETTER if Channel.LETTER in channels else channels[lead]
    last = batch.last_message.get(customer.id)
    if last is not None and ctx.interval_days > 0:
        allowed = last.astimezone(country_zone(ctx.country)).date() + timedelta(days=ctx.interval_days)
        if today < allowed:
            hold("cap", allowed)
            return
    if channel in Channel.ELECTRONIC:
        zone = calendar.zone(customer.time_zone, ctx.country)
        why = calendar.may_message(clock.now, zone, ctx.country, quiet_from=ctx.quiet_from,
                                   quiet_until=ctx.quiet_until)
        if why == "rest_day":
            hold("rest_day", calendar.next_working_day(today + timedelta(days=1), ctx.country))
            return
        if why == "quiet_hours":
            hold("quiet_hours", today)
            return
    decision.channel = channel
    decision.recipient = customer.email if channel == Channel.EMAIL else customer.phone \
        if channel == Channel.SMS else None
    lead_step = due[lead].to_send[1]
    decision.variant = variants.assign(lead_step.id, customer.id, lead_step.variants)
    wanted = normalise_locale(customer.preferred_locale)
    decision.locale = next((loc for loc in (wanted, ctx.default_locale, *ctx.languages, "en")
                            if loc and loc in lead_step.locales), lead_step.locales[0])
    for outcome in due:
        plan, step = outcome.to_send
        following = plan.steps.get(step.position + 1)
        if following is None:
            outcome.next_on, outcome.next_position = None, None
        else:
            outcome.next_on = step_day(following, outcome.bill.due_date, today, step.deadline_days)
            outcome.next_position = following.position


# --- writing -----------------------------------------------------------------------------------------------


@dataclass
class Written:
    messages: int = 0
    notices: int = 0
    letters: int = 0
    fees: int = 0
    by_channel: dict[str, int] = field(default_factory=lambda: defaultdict(int))


def _fee_words(ctx: Context, text_key: str, locale: str) -> str:
    """A fee line's description in the customer's language as stored (pages show the line's `text_key` in
    the reader's language, billing.texts), remembered for the run (switching locales costs). Not
    process-wide: a cache that outlives the app would keep words from another app's catalogs."""
    key = (text_key, locale)
    if key not in ctx.fee_words:
        with force_locale(locale):
            ctx.fee_words[key] = str(PORTAL_LINE_TEXTS[text_key])
    return ctx.fee_words[key]


def write(ctx: Context, decisions: Iterable[Decision], clock: Clock) -> Written:
    """Everything the decisions send, set-wise, and every decided bill's next step (see the module)."""
    written = Written()
    real_now = utcnow()
    sending = [d for d in decisions if d.channel is not None and d.sending]
    next_steps = [{"id": o.bill.id, "dunning_next_on": o.next_on, "dunning_next_position": o.next_position}
                  for d in decisions for o in d.outcomes]
    if sending:
        message_ids = _insert_messages(ctx, sending, clock)
        _insert_outbox_and_letters(ctx, sending, message_ids, real_now, written)
        _insert_notices(ctx, sending, message_ids, clock, written)
        written.messages += len(sending)
    _update_invoices(next_steps)
    return written


def _insert_messages(ctx: Context, sending: list[Decision], clock: Clock) -> list[int]:
    rows = [{"creditor_id": ctx.creditor_id, "customer_id": d.customer.id, "channel": d.channel,
             "recipient": d.recipient, "locale": d.locale, "outbox_message_id": None, "replaces_id": None,
             "status": MessageStatus.QUEUED, "failure": None, "subject": None, "body": None,
             "variant": d.variant, "created_at": clock.now, "status_at": None} for d in sending]
    return insert_rows(db.session, Message.__table__, rows)


def _insert_outbox_and_letters(ctx: Context, sending: list[Decision], message_ids: list[int], real_now: datetime,
                               written: Written) -> None:
    electronic = [(d, mid) for d, mid in zip(sending, message_ids, strict=True) if d.channel != Channel.LETTER]
    outbox_ids = enqueue_many([{"channel": d.channel, "kind": KIND, "recipient": d.recipient,
                                "payload": {"message_id": mid}, "idempotency_key": f"{KIND}:{mid}",
                                "creditor_id": ctx.creditor_id, "locale": d.locale} for d, mid in electronic],
                              now=real_now)
    update_rows(db.session, Message.__table__, [{"id": mid, "outbox_message_id": oid}
                                                for (_d, mid), oid in zip(electronic, outbox_ids, strict=True)])
    letters = [{"creditor_id": ctx.creditor_id, "customer_id": d.customer.id, "message_id": mid,
                "status": LetterStatus.PENDING, "address": postal_address(d.customer), "batch": None, "pages": None,
                "sha256": None, "created_at": real_now, "printed_at": None}
               for d, mid in zip(sending, message_ids, strict=True) if d.channel == Channel.LETTER]
    insert_rows(db.session, Letter.__table__, letters, returning=False)
    written.letters += len(letters)
    for d in sending:
        if d.channel is not None:
            written.by_channel[d.channel] += 1


def _charges_of(ctx: Context, outcome: Outcome, customer, locale: str, today: date, interest: dict[int, int]
                ) -> list[Charge]:
    (plan, step), bill = outcome.to_send, outcome.bill
    found: list[Charge] = []
    fee = step.fee
    if fee and plan.jurisdiction == Jurisdiction.NO:
        fee = min(fee, reminder_fee_cap(today))  # the law on the day it is sent, whatever the plan said
    data = {"step": step.position, "plan": plan.name, "version": plan.version}
    if fee:
        found.append(Charge(bill.id, "reminder_fee", _fee_words(ctx, "reminder_fee", locale), fee, data,
                            text_key="reminder_fee"))
    if step.flat_fee and customer.kind == "business":
        found.append(Charge(bill.id, "other_fee", _fee_words(ctx, "flat_fee_late_payment", locale),
                            int(in_force(DE_FLAT_FEE, today).value), data, text_key="flat_fee_late_payment"))
    if step.adds_interest and interest.get(bill.id):
        found.append(Charge(bill.id, "interest", _fee_words(ctx, "default_interest", locale), interest[bill.id], data,
                            text_key="default_interest"))
    return found


def _interest_due(outcomes: list[Outcome], today: date) -> dict[int, int]:
    """German default interest for the bills whose step adds it (a few: loaded one by one)."""
    found = {}
    for outcome in outcomes:
        if outcome.to_send[1].adds_interest:
            invoice = db.session.get(Invoice, outcome.bill.id)
            assert invoice is not None  # a bill of this batch, its row locked
            found[outcome.bill.id] = interest_due(invoice, today)
    return found


def _insert_notices(ctx: Context, sending: list[Decision], message_ids: list[int], clock: Clock,
                    written: Written) -> None:
    today = clock.today
    notices: list[dict] = []
    reminders: list[dict] = []
    events: list[dict] = []
    charges: list[Charge] = []
    interest = _interest_due([o for d in sending for o in d.sending], today)
    for decision, message_id in zip(sending, message_ids, strict=True):
        assert decision.locale is not None  # a decision that sends has its language
        for outcome in decision.sending:
            (plan, step), bill = outcome.to_send, outcome.bill
            bill_charges = _charges_of(ctx, outcome, decision.customer, decision.locale, today, interest)
            charges += bill_charges
            deadline = today + timedelta(days=step.deadline_days) if step.deadline_days else None
            final = step.kind in StepKind.FINAL
            notices.append({
                "creditor_id": ctx.creditor_id, "invoice_id": bill.id, "customer_id": decision.customer.id,
                "plan_id": plan.id, "step_id": step.id, "position": step.position, "kind": step.kind,
                "status": NoticeStatus.SENT, "channel": decision.channel, "channel_index": 0,
                "message_id": message_id, "decided_on": today, "sent_at": clock.now, "deadline": deadline,
                "fee": sum(c.amount for c in bill_charges if c.kind != "interest"),
                "interest": sum(c.amount for c in bill_charges if c.kind == "interest")})
            reminders.append({"invoice_id": bill.id, "channel": decision.channel, "sent_at": clock.now,
                              "final": final, "external_ref": None, "created_at": clock.now})
            events.append({"invoice_id": bill.id, "kind": "reminder_sent", "actor": ACTOR, "created_at": clock.now,
                           "data": {"channel": decision.channel, "final": final, "sent_at": clock.now.isoformat(),
                                    "step": step.position, "step_kind": step.kind, "plan": plan.name,
                                    "version": plan.version, "message": message_id,
                                    "deadline": deadline.isoformat() if deadline else None}})
    insert_rows(db.session, Notice.__table__, notices, returning=False)
    insert_rows(db.session, Reminder.__table__, reminders, returning=False)
    insert_rows(db.session, InvoiceEvent.__table__, events, returning=False)
    reminders_written.send(ctx.creditor_id, events=events)
    written.fees += add_charges(charges, actor=ACTOR, now=clock.now)
    written.notices += len(notices)


def write_fallback(creditor: Creditor, customer: Customer, failed: Message, notices: list[Notice], channel: str, *,
                   now: datetime, today: date, deadline_days: dict[int, int]) -> Message:
    """The notices of a message that did not arrive, sent again by `channel` (see `services.fall_back`):
    a new message (through the outbox, or a pending letter), the notices moved to it with a new
    deadline counted from today, a reminder row per notice."""
    row = SimpleNamespace(**{column.key: getattr(customer, column.key) for column in CUSTOMER_COLUMNS})
    recipient = customer.email if channel == Channel.EMAIL else customer.phone if channel == Channel.SMS else None
    message = Message(creditor_id=creditor.id, customer_id=customer.id, channel=channel, recipient=recipient,
                      locale=failed.locale, replaces_id=failed.id, status=MessageStatus.QUEUED,
                      variant=failed.variant, created_at=now)
    db.session.add(message)
    db.session.flush()
    if channel == Channel.LETTER:
        db.session.add(Letter(creditor_id=creditor.id, customer_id=customer.id, message_id=message.id,
                              status=LetterStatus.PENDING, address=postal_address(row), created_at=now))
    else:
        (outbox_id,) = enqueue_many([{"channel": channel, "kind": KIND, "recipient": recipient,
                                      "payload": {"message_id": message.id}, "idempotency_key": f"{KIND}:{message.id}",
                                      "creditor_id": creditor.id, "locale": failed.locale}])
        message.outbox_message_id = outbox_id
    for notice in notices:
        notice.message_id, notice.channel, notice.status = message.id, channel, NoticeStatus.SENT
        notice.channel_index += 1
        notice.sent_at = now
        days = deadline_days.get(notice.id, 0)
        if days:
            notice.deadline = max(notice.deadline or today, today + timedelta(days=days))
        db.session.add(Reminder(invoice_id=notice.invoice_id, channel=channel, sent_at=now,
                                final=notice.kind in StepKind.FINAL, created_at=now))
        # The next step waits for the new deadline to pass.
        invoice = db.session.get(Invoice, notice.invoice_id)
        if notice.deadline and invoice and invoice.dunning_next_on and invoice.dunning_next_on <= notice.deadline:
            invoice.dunning_next_on = notice.deadline + timedelta(days=1)
    db.session.flush()
    return message


def reason_words(reason: str | None) -> str:
    """Why a bill waits or stops, in words, in the current locale (the preview; the back office later)."""
    words = {
        "excluded": _("the creditor excluded the bill or the customer"),
        "plan_done": _("every step of its plan has gone"),
        "open_question": _("the customer's question waits for an answer"),
        "sent_before": _("this step went before"),
        "nudge_too_late": _("the due date passed before the nudge could go"),
        "no_contact": _("no way to reach the customer: no allowed e-mail or mobile, and no postal address"),
        "cap": _("the customer had a message recently (one every few days at most)"),
        "rest_day": _("Sunday or a public holiday: no SMS or e-mail"),
        "quiet_hours": _("quiet hours where the customer is: no SMS or e-mail"),
    }
    return words.get(reason or "") or pause_words(reason)
