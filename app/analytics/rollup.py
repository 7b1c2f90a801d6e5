"""The weekly rollups the funnel is read from, kept by `flask analytics rollup` (cron, every few minutes).

A run:

1. attributes the payments not attributed yet (`attribution.attribute_pending`);
2. finds the weeks whose raw rows changed since its last success (less a margin of
   `MARGIN`, for transactions that committed after the last run read): messages created or moved
   (delivered, opened, failed: `status_at`) since, the weeks of the messages given a payment now,
   payments recorded since, bills created or changed since, reminders sent since, hand-offs since;
3. recomputes each of those weeks of each creditor from the raw rows: its rows are deleted and the
   week's sums inserted again. A week's rows are therefore what its raw rows say as of the run.

`rebuild` (or a first run) empties the rollups and the attributions, attributes every payment again and
recomputes every week. The run's last success is
its watermark (`job_runs`, "analytics"). Weeks are the creditor's local weeks (Monday to Sunday):
a message's by when it was created, a payment's by when it was received, a bill's by its due date.

Runs do not overlap: on PostgreSQL a run holds a transaction-level advisory lock.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from sqlalchemy import and_, delete, exists, func, insert, or_, select

from app.analytics.models import Attribution, BillWeek, FunnelPayment, FunnelWeek, PaymentWeek
from app.billing.models import Invoice, InvoiceStatus
from app.core.jobs import JobRun, record_success
from app.creditors.models import Creditor
from app.debt_collection.models import Case
from app.debt_collection.services import PROVIDER as PARTNER_PROVIDER
from app.dunning.models import Message, MessageStatus, Notice, NoticeStatus, StepKind
from app.extensions import db
from app.i18n import country_zone
from app.models import utcnow
from app.payments.models import Payment

JOB = "analytics"
MARGIN = timedelta(minutes=10)
LOCK_KEY = 733_018  # pg_advisory_xact_lock: one rollup run at a time
SECONDS_A_DAY = 86400

SENT = frozenset(MessageStatus) - {MessageStatus.QUEUED}
DELIVERED = frozenset({MessageStatus.DELIVERED, MessageStatus.OPENED})
FAILED = frozenset({MessageStatus.FAILED, MessageStatus.BOUNCED})
#: A reminder counts as sent for "paid before the first reminder" unless it never went out.
NOT_SENT_NOTICES = (NoticeStatus.SKIPPED, NoticeStatus.PAID_BEFORE)
OPEN_STATUSES_EXCLUDED = (InvoiceStatus.PAID, InvoiceStatus.CANCELLED, InvoiceStatus.WRITTEN_OFF)

Dims = tuple[str, int, int, str, str]  # channel, position, plan_id, locale, variant


def week_of(day: date) -> date:
    """The Monday of `day`'s week."""
    return day - timedelta(days=day.weekday())


def day_start(day: date, zone: tzinfo) -> datetime:
    """The UTC instant at which the local `day` begins (pytz zones need `localize`)."""
    midnight = datetime.combine(day, time())
    local = zone.localize(midnight) if hasattr(zone, "localize") else midnight.replace(tzinfo=zone)
    return local.astimezone(UTC)


def local_week(moment: datetime, zone: tzinfo) -> date:
    return week_of(moment.astimezone(zone).date())


# --- a message and what it brought ---------------------------------------------------------------------


@dataclass(frozen=True)
class MessageFact:
    """A reminder message as the funnel sees it. A message carrying several bills' notices counts under
    its highest step (and that step's plan version; the highest plan id on a tie)."""

    id: int
    created_at: datetime
    channel: str
    locale: str
    variant: str
    status: str
    position: int
    plan_id: int

    @property
    def dims(self) -> Dims:
        return (self.channel, self.position, self.plan_id, self.locale, self.variant)


@dataclass
class Cell:
    """The sums of one group of messages; `payments` maps (currency, whole days to pay) to
    [payments, amount]."""

    sent: int = 0
    delivered: int = 0
    opened: int = 0
    failed: int = 0
    paid: int = 0
    payments: dict[tuple[str, int], list[int]] = field(default_factory=dict)

    def add_message(self, fact: MessageFact, paid: bool) -> None:
        self.sent += fact.status in SENT
        self.delivered += fact.status in DELIVERED
        self.opened += fact.status == MessageStatus.OPENED
        self.failed += fact.status in FAILED
        self.paid += paid

    def add_payment(self, currency: str, days: int, payments: int, amount: int) -> None:
        slot = self.payments.setdefault((currency, days), [0, 0])
        slot[0] += payments
        slot[1] += amount

    def merge(self, other: Cell) -> None:
        self.sent += other.sent
        self.delivered += other.delivered
        self.opened += other.opened
        self.failed += other.failed
        self.paid += other.paid
        for (currency, days), (n, amount) in other.payments.items():
            self.add_payment(currency, days, n, amount)


def message_facts(creditor_id: int, start: datetime, end: datetime) -> list[MessageFact]:
    """The creditor's reminder messages of live bills created in [start, end)."""
    rows = db.session.execute(
        select(Message.id, Message.created_at, Message.channel, Message.locale, Message.variant, Message.status,
               func.max(Notice.position), func.max(Notice.plan_id))
        .join(Notice, Notice.message_id == Message.id)
        .join(Invoice, Invoice.id == Notice.invoice_id)
        .where(Message.creditor_id == creditor_id, Message.created_at >= start, Message.created_at < end,
               Invoice.livemode.is_(True))
        .group_by(Message.id, Message.created_at, Message.channel, Message.locale, Message.variant, Message.status)
    ).all()
    return [MessageFact(mid, created, channel, locale, variant or "", status, position or 0, plan or 0)
            for mid, created, channel, locale, variant, status, position, plan in rows]


def days_between(sent: datetime, paid: datetime) -> int:
    """Whole days from a message to a payment (elapsed time, rounded down; never below 0)."""
    return max(0, int((paid - sent).total_seconds() // SECONDS_A_DAY))


def cells_of(facts: Iterable[MessageFact], paid: dict[int, list[tuple[int, str, datetime]]],
             key) -> dict[object, Cell]:
    """Sum messages into cells by `key(fact)`; `paid` maps a message to its payments (amount,
    currency, received)."""
    cells: dict[object, Cell] = {}
    for fact in facts:
        cell = cells.setdefault(key(fact), Cell())
        payments = paid.get(fact.id, [])
        cell.add_message(fact, bool(payments))
        for amount, currency, received_at in payments:
            cell.add_payment(currency, days_between(fact.created_at, received_at), 1, amount)
    return cells


def _attributed(creditor_id: int, start: datetime, end: datetime) -> dict[int, list[tuple[int, str, datetime]]]:
    paid: defaultdict[int, list[tuple[int, str, datetime]]] = defaultdict(list)
    for message_id, amount, currency, received_at in db.session.execute(
        select(Attribution.message_id, Payment.amount, Payment.currency, Payment.received_at)
        .join(Payment, Payment.id == Attribution.payment_id)
        .join(Message, Message.id == Attribution.message_id)
        .where(Message.creditor_id == creditor_id, Message.created_at >= start, Message.created_at < end)
    ):
        if message_id is not None:
            paid[message_id].append((amount, currency, received_at))
    return paid


# --- recomputing one week ------------------------------------------------------------------------------


def _dims_of(dims: Dims) -> dict[str, object]:
    channel, position, plan_id, locale, variant = dims
    return {"channel": channel, "position": position, "plan_id": plan_id, "locale": locale, "variant": variant}


def rebuild_message_week(creditor_id: int, week: date, zone: tzinfo) -> None:
    start, end = day_start(week, zone), day_start(week + timedelta(days=7), zone)
    for model in (FunnelWeek, FunnelPayment):
        db.session.execute(delete(model).where(model.creditor_id == creditor_id, model.week == week))
    cells: dict[Dims, Cell] = cells_of(message_facts(creditor_id, start, end),  # type: ignore[assignment]
                                       _attributed(creditor_id, start, end), lambda fact: fact.dims)
    if not cells:
        return
    base = {"creditor_id": creditor_id, "week": week}
    db.session.execute(insert(FunnelWeek), [
        {**base, **_dims_of(dims), "sent": c.sent, "delivered": c.delivered, "opened": c.opened, "failed": c.failed,
         "paid": c.paid} for dims, c in cells.items()])
    payments = [{**base, **_dims_of(dims), "currency": currency, "days": days, "payments": n, "amount": amount}
                for dims, c in cells.items() for (currency, days), (n, amount) in c.payments.items()]
    if payments:
        db.session.execute(insert(FunnelPayment), payments)


def payment_sources(creditor_id: int, start: datetime, end: datetime) -> list[tuple[datetime, str, int, str]]:
    """(received, currency, amount, source) of the creditor's live bills' payments received in [start, end):
    source `reminder`, `direct` or `partner`; a payment not attributed yet counts as `direct`."""
    rows = db.session.execute(
        select(Payment.received_at, Payment.currency, Payment.amount, Payment.provider, Attribution.message_id)
        .join(Invoice, Payment.invoice_id == Invoice.id)
        .outerjoin(Attribution, Attribution.payment_id == Payment.id)
        .where(Invoice.creditor_id == creditor_id, Invoice.livemode.is_(True),
               Payment.received_at >= start, Payment.received_at < end)
    ).all()
    return [(received, currency, amount,
             "partner" if provider == PARTNER_PROVIDER else "reminder" if message_id is not None else "direct")
            for received, currency, amount, provider, message_id in rows]


def rebuild_payment_week(creditor_id: int, week: date, zone: tzinfo) -> None:
    start, end = day_start(week, zone), day_start(week + timedelta(days=7), zone)
    db.session.execute(delete(PaymentWeek).where(PaymentWeek.creditor_id == creditor_id, PaymentWeek.week == week))
    sums: dict[tuple[str, str], list[int]] = {}
    for _received, currency, amount, source in payment_sources(creditor_id, start, end):
        slot = sums.setdefault((currency, source), [0, 0])
        slot[0] += 1
        slot[1] += amount
    if sums:
        db.session.execute(insert(PaymentWeek), [
            {"creditor_id": creditor_id, "week": week, "currency": currency, "source": source, "payments": n,
             "amount": amount} for (currency, source), (n, amount) in sums.items()])


def bill_facts(creditor_id: int, first_due: date, last_due: date) -> list[tuple]:
    """(due date, plan id, currency, total, paid in full?, reminded?, handed off?, outstanding) of the
    creditor's live bills (not cancelled) due from `first_due` to `last_due`."""
    reminded = exists().where(Notice.invoice_id == Invoice.id, Notice.kind.in_(StepKind.AFTER_DUE),
                              Notice.status.not_in(NOT_SENT_NOTICES))
    handed = exists().where(Case.invoice_id == Invoice.id)
    rows = db.session.execute(
        select(Invoice.due_date, Invoice.dunning_plan_id, Invoice.currency, Invoice.total, Invoice.amount_paid,
               Invoice.status, reminded, handed)
        .where(Invoice.creditor_id == creditor_id, Invoice.due_date >= first_due, Invoice.due_date <= last_due,
               Invoice.livemode.is_(True), Invoice.status != InvoiceStatus.CANCELLED)
    ).all()
    return [(due, plan or 0, currency, total, status == InvoiceStatus.PAID, bool(was_reminded), bool(was_handed),
             max(0, total - paid) if status not in OPEN_STATUSES_EXCLUDED else 0)
            for due, plan, currency, total, paid, status, was_reminded, was_handed in rows]


def rebuild_bill_week(creditor_id: int, week: date) -> None:
    db.session.execute(delete(BillWeek).where(BillWeek.creditor_id == creditor_id, BillWeek.week == week))
    sums: dict[tuple[int, str], Counter[str]] = defaultdict(Counter)
    for _due, plan_id, currency, total, paid, reminded, handed, outstanding in bill_facts(
            creditor_id, week, week + timedelta(days=6)):
        s = sums[(plan_id, currency)]
        s.update({"bills": 1, "billed": total, "paid": int(paid), "paid_before_reminder": int(paid and not reminded),
                  "handed_off": int(handed), "outstanding": outstanding})
    names = ("bills", "billed", "paid", "paid_before_reminder", "handed_off", "outstanding")
    if sums:
        db.session.execute(insert(BillWeek), [
            {"creditor_id": creditor_id, "week": week, "plan_id": plan_id, "currency": currency,
             **{name: s[name] for name in names}} for (plan_id, currency), s in sums.items()])


# --- the run -------------------------------------------------------------------------------------------


@dataclass
class Report:
    attributed_messages: int = 0
    message_weeks: int = 0
    payment_weeks: int = 0
    bill_weeks: int = 0
    rebuilt: bool = False


def _lock() -> None:
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(select(func.pg_advisory_xact_lock(LOCK_KEY)))


def watermark() -> datetime | None:
    return db.session.scalar(select(JobRun.last_success_at).where(JobRun.name == JOB))


def run(*, window_days: int, rebuild: bool = False, now: datetime | None = None) -> Report:
    """Attribute new payments and recompute the weeks that changed; adds and flushes, the caller commits."""
    from app.analytics.attribution import attribute_pending

    _lock()
    now = now or utcnow()
    last = None if rebuild else watermark()
    since = last - MARGIN if last is not None else None
    report = Report(rebuilt=since is None)
    if since is None:
        for model in (Attribution, FunnelWeek, FunnelPayment, PaymentWeek, BillWeek):
            db.session.execute(delete(model))
    given = attribute_pending(window_days, now=now)
    report.attributed_messages = len(given)
    zones = {cid: country_zone(country) for cid, country in db.session.execute(select(Creditor.id, Creditor.country))}

    message_weeks: set[tuple[int, date]] = set()
    changed = select(Message.creditor_id, Message.created_at)
    if since is not None:
        changed = changed.where(or_(Message.created_at >= since, Message.status_at >= since))
    for creditor_id, created_at in db.session.execute(changed):
        message_weeks.add((creditor_id, local_week(created_at, zones[creditor_id])))
    for chunk_start in range(0, len(given), 900):
        chunk = sorted(given)[chunk_start:chunk_start + 900]
        for creditor_id, created_at in db.session.execute(
                select(Message.creditor_id, Message.created_at).where(Message.id.in_(chunk))):
            message_weeks.add((creditor_id, local_week(created_at, zones[creditor_id])))

    payment_weeks: set[tuple[int, date]] = set()
    paid = select(Invoice.creditor_id, Payment.received_at).join(Invoice, Payment.invoice_id == Invoice.id)
    if since is not None:
        paid = paid.where(Payment.created_at >= since)
    for creditor_id, received_at in db.session.execute(paid):
        payment_weeks.add((creditor_id, local_week(received_at, zones[creditor_id])))

    bill_weeks: set[tuple[int, date]] = set()
    bills = select(Invoice.creditor_id, Invoice.due_date)
    if since is not None:
        bills = bills.where(or_(
            Invoice.created_at >= since, Invoice.updated_at >= since,
            exists().where(Notice.invoice_id == Invoice.id, Notice.sent_at >= since),
            exists().where(and_(Case.invoice_id == Invoice.id, Case.handed_off_at >= since))))
    for creditor_id, due in db.session.execute(bills):
        bill_weeks.add((creditor_id, week_of(due)))

    for creditor_id, week in sorted(message_weeks):
        rebuild_message_week(creditor_id, week, zones[creditor_id])
    for creditor_id, week in sorted(payment_weeks):
        rebuild_payment_week(creditor_id, week, zones[creditor_id])
    for creditor_id, week in sorted(bill_weeks):
        rebuild_bill_week(creditor_id, week)
    report.message_weeks, report.payment_weeks, report.bill_weeks = (
        len(message_weeks), len(payment_weeks), len(bill_weeks))
    record_success(JOB, at=now)
    db.session.flush()
    return report

