"""The funnel of one creditor's reminders, and what became of its bills: read from the weekly rollups
(`funnel`), or computed from the raw rows (`funnel_from_raw`, the reference the rollups are tested
against). Both give the same `Funnel`. docs/analytics.md defines every figure.

Plain functions that only read. The caller checks that its agent or API key may see the creditor
(the back office's `Scope`, the API's `access`).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo

from sqlalchemy import func, select

from app.analytics.attribution import Paid, counted_payments, last_touches
from app.analytics.clarity import Clarity, clarity
from app.analytics.models import BillWeek, FunnelPayment, FunnelWeek, PaymentWeek
from app.analytics.rollup import (
    Cell,
    MessageFact,
    bill_facts,
    cells_of,
    day_start,
    local_week,
    message_facts,
    week_of,
)
from app.billing.models import Invoice
from app.debt_collection.services import PROVIDER as PARTNER_PROVIDER
from app.extensions import db
from app.payments.models import Payment
from app.resolutions.models import Kind, Resolution, Status

#: The dimensions a funnel is split by, and the rollup's column of each.
DIMENSIONS = ("week", "channel", "step", "plan", "language", "variant")
COLUMN = {"week": "week", "channel": "channel", "step": "position", "plan": "plan_id", "language": "locale",
          "variant": "variant"}
SOURCES = ("reminder", "direct", "partner")
DSO_DAYS = 91  # 13 weeks
MAX_WEEKS = 156  # the longest range asked for at once: three years


@dataclass(frozen=True)
class Query:
    """One creditor's weeks `first_week`..`last_week` (Mondays, both included), split by `by`, limited to
    the messages matching the filters (None: any; variant '': messages without a variant)."""

    creditor_id: int
    first_week: date
    last_week: date
    by: str = "week"
    channel: str | None = None
    step: int | None = None
    plan: int | None = None
    language: str | None = None
    variant: str | None = None

    def __post_init__(self) -> None:
        if self.by not in DIMENSIONS:
            raise ValueError(f"by: one of {', '.join(DIMENSIONS)}")
        if self.first_week.weekday() or self.last_week.weekday():
            raise ValueError("weeks begin on a Monday")
        if self.last_week < self.first_week:
            raise ValueError("the last week is before the first")
        if (self.last_week - self.first_week).days // 7 >= MAX_WEEKS:
            raise ValueError(f"at most {MAX_WEEKS} weeks at once")

    @property
    def filters(self) -> dict[str, object]:
        """The filters set, by the rollup's column."""
        given = {"channel": self.channel, "step": self.step, "plan": self.plan, "language": self.language,
                 "variant": self.variant}
        return {COLUMN[name]: value for name, value in given.items() if value is not None}


def median_of(histogram: dict[int, int]) -> float | None:
    """The median of the values counted in `histogram` (value -> how many), as `statistics.median` gives it."""
    n = sum(histogram.values())
    if not n:
        return None
    wanted = sorted({(n - 1) // 2, n // 2})
    found: list[int] = []
    seen = 0
    for value in sorted(histogram):
        seen += histogram[value]
        while len(found) < len(wanted) and seen > wanted[len(found)]:
            found.append(value)
    return sum(found) / len(found)


@dataclass(frozen=True)
class Row:
    """One value of the dimension (or the total): counts of messages, the payments they brought."""

    key: object
    sent: int
    delivered: int
    opened: int
    failed: int
    paid: int  # messages that brought a payment
    payments: int
    paid_amounts: dict[str, int]  # minor units per currency
    median_days: float | None  # from the message to the payment, whole days

    @staticmethod
    def of(key: object, cell: Cell) -> Row:
        amounts: Counter[str] = Counter()
        days: Counter[int] = Counter()
        for (currency, day), (n, amount) in cell.payments.items():
            amounts[currency] += amount
            days[day] += n
        return Row(key, cell.sent, cell.delivered, cell.opened, cell.failed, cell.paid, sum(days.values()),
                   dict(sorted(amounts.items())), median_of(dict(days)))

    def rate(self, count: int) -> float | None:
        """`count` as a share of the messages sent."""
        return count / self.sent if self.sent else None


@dataclass(frozen=True)
class Bills:
    """Live bills due in the range (cancelled ones left out), and the creditor's promises and plans made in it."""

    bills: int = 0
    paid: int = 0
    paid_before_reminder: int = 0
    handed_off: int = 0
    promises: int = 0
    promises_kept: int = 0
    promises_broken: int = 0
    plans: int = 0
    plans_completed: int = 0
    plans_broken: int = 0
    dso: dict[str, float] = field(default_factory=dict)  # days, per currency

    def share(self, count: int) -> float | None:
        return count / self.bills if self.bills else None

    @property
    def promises_kept_share(self) -> float | None:
        ended = self.promises_kept + self.promises_broken
        return self.promises_kept / ended if ended else None

    @property
    def plans_completed_share(self) -> float | None:
        ended = self.plans_completed + self.plans_broken
        return self.plans_completed / ended if ended else None


@dataclass(frozen=True)
class Funnel:
    query: Query
    rows: list[Row]
    total: Row
    payments: dict[str, dict[str, tuple[int, int]]]  # source -> currency -> (payments, amount)
    bills: Bills
    clarity: Clarity  # "Was this bill clear?" answered in the period


def _ordered(cells: dict[object, Cell]) -> list[Row]:
    return [Row.of(key, cells[key]) for key in sorted(cells)]  # type: ignore[type-var]  # one type per dimension


def _total(cells: dict[object, Cell]) -> Row:
    total = Cell()
    for cell in cells.values():
        total.merge(cell)
    return Row.of(None, total)


def _resolutions(query: Query, zone: tzinfo) -> dict[str, int]:
    start, end = day_start(query.first_week, zone), day_start(query.last_week + timedelta(days=7), zone)
    counts: Counter[tuple[str, str]] = Counter()
    for kind, status, n in db.session.execute(
        select(Resolution.kind, Resolution.status, func.count())
        .join(Invoice, Invoice.id == Resolution.invoice_id)
        .where(Resolution.creditor_id == query.creditor_id, Resolution.kind.in_((Kind.PROMISE, Kind.PLAN)),
               Resolution.created_at >= start, Resolution.created_at < end, Invoice.livemode.is_(True),
               Resolution.status.not_in((Status.OPEN, Status.DECLINED)))
        .group_by(Resolution.kind, Resolution.status)
    ):
        counts[(kind, status)] += n
    def made(kind: str) -> int:
        return sum(n for (k, _s), n in counts.items() if k == kind)
    return {"promises": made(Kind.PROMISE), "promises_kept": counts[(Kind.PROMISE, Status.KEPT)],
            "promises_broken": counts[(Kind.PROMISE, Status.BROKEN)], "plans": made(Kind.PLAN),
            "plans_completed": counts[(Kind.PLAN, Status.KEPT)], "plans_broken": counts[(Kind.PLAN, Status.BROKEN)]}


def _clarity(query: Query, zone: tzinfo) -> Clarity:
    return clarity(query.creditor_id, day_start(query.first_week, zone),
                   day_start(query.last_week + timedelta(days=7), zone))


def _dso(outstanding: dict[str, int], billed: dict[str, int]) -> dict[str, float]:
    return {currency: outstanding.get(currency, 0) / amount * DSO_DAYS
            for currency, amount in sorted(billed.items()) if amount > 0}


# --- from the rollups ----------------------------------------------------------------------------------


def funnel(query: Query, zone: tzinfo, today: date) -> Funnel:
    """The funnel from the rollups: a handful of grouped statements over one creditor's weeks."""
    col = COLUMN[query.by]

    def where(model):
        conditions = [model.creditor_id == query.creditor_id, model.week >= query.first_week,
                      model.week <= query.last_week]
        conditions += [getattr(model, name) == value for name, value in query.filters.items()]
        return conditions

    cells: dict[object, Cell] = {}
    for key, sent, delivered, opened, failed, paid in db.session.execute(
        select(getattr(FunnelWeek, col), func.sum(FunnelWeek.sent), func.sum(FunnelWeek.delivered),
               func.sum(FunnelWeek.opened), func.sum(FunnelWeek.failed), func.sum(FunnelWeek.paid))
        .where(*where(FunnelWeek)).group_by(getattr(FunnelWeek, col))
    ):
        cells[key] = Cell(int(sent), int(delivered), int(opened), int(failed), int(paid))
    for key, currency, days, n, amount in db.session.execute(
        select(getattr(FunnelPayment, col), FunnelPayment.currency, FunnelPayment.days,
               func.sum(FunnelPayment.payments), func.sum(FunnelPayment.amount))
        .where(*where(FunnelPayment))
        .group_by(getattr(FunnelPayment, col), FunnelPayment.currency, FunnelPayment.days)
    ):
        cells.setdefault(key, Cell()).add_payment(currency, days, int(n), int(amount))

    payments: dict[str, dict[str, tuple[int, int]]] = {source: {} for source in SOURCES}
    for source, currency, n, amount in db.session.execute(
        select(PaymentWeek.source, PaymentWeek.currency, func.sum(PaymentWeek.payments), func.sum(PaymentWeek.amount))
        .where(PaymentWeek.creditor_id == query.creditor_id, PaymentWeek.week >= query.first_week,
               PaymentWeek.week <= query.last_week)
        .group_by(PaymentWeek.source, PaymentWeek.currency)
    ):
        payments[source][currency] = (int(n), int(amount))

    bill_where = [BillWeek.creditor_id == query.creditor_id, BillWeek.week >= query.first_week,
                  BillWeek.week <= query.last_week]
    if query.plan is not None:
        bill_where.append(BillWeek.plan_id == query.plan)
    bills, paid, before, handed = db.session.execute(
        select(func.sum(BillWeek.bills), func.sum(BillWeek.paid), func.sum(BillWeek.paid_before_reminder),
               func.sum(BillWeek.handed_off)).where(*bill_where)).one()
    this_week = week_of(today)
    outstanding = dict(db.session.execute(
        select(BillWeek.currency, func.sum(BillWeek.outstanding))
        .where(BillWeek.creditor_id == query.creditor_id, BillWeek.week <= this_week).group_by(BillWeek.currency)
    ).all())
    billed = dict(db.session.execute(
        select(BillWeek.currency, func.sum(BillWeek.billed))
        .where(BillWeek.creditor_id == query.creditor_id, BillWeek.week <= this_week,
               BillWeek.week > this_week - timedelta(days=DSO_DAYS)).group_by(BillWeek.currency)
    ).all())
    figures = Bills(int(bills or 0), int(paid or 0), int(before or 0), int(handed or 0), **_resolutions(query, zone),
                    dso=_dso({c: int(v) for c, v in outstanding.items()}, {c: int(v) for c, v in billed.items()}))
    return Funnel(query, _ordered(cells), _total(cells), payments, figures, _clarity(query, zone))


# --- from the raw rows ---------------------------------------------------------------------------------


def _key(query: Query, zone: tzinfo) -> Callable[[MessageFact], object]:
    return {
        "week": lambda fact: local_week(fact.created_at, zone),
        "channel": lambda fact: fact.channel,
        "step": lambda fact: fact.position,
        "plan": lambda fact: fact.plan_id,
        "language": lambda fact: fact.locale,
        "variant": lambda fact: fact.variant,
    }[query.by]


def _matches(query: Query, fact: MessageFact) -> bool:
    values = {"channel": fact.channel, "position": fact.position, "plan_id": fact.plan_id, "locale": fact.locale,
              "variant": fact.variant}
    return all(values[name] == value for name, value in query.filters.items())


def funnel_from_raw(query: Query, zone: tzinfo, today: date, window_days: int) -> Funnel:
    """The same figures computed from the raw rows, with every payment attributed afresh: slow, the
    reference the rollups are held to."""
    start, end = day_start(query.first_week, zone), day_start(query.last_week + timedelta(days=7), zone)
    facts = [fact for fact in message_facts(query.creditor_id, start, end) if _matches(query, fact)]
    rows = db.session.execute(counted_payments().where(Invoice.creditor_id == query.creditor_id)).all()
    touches = last_touches([Paid(pid, invoice_id, at) for pid, invoice_id, at, _c in rows],
                           timedelta(days=window_days))
    amounts = dict(db.session.execute(
        select(Payment.id, Payment.amount).join(Invoice, Payment.invoice_id == Invoice.id)
        .where(Invoice.creditor_id == query.creditor_id)).all())
    currencies = dict(db.session.execute(
        select(Payment.id, Payment.currency).join(Invoice, Payment.invoice_id == Invoice.id)
        .where(Invoice.creditor_id == query.creditor_id)).all())
    paid: defaultdict[int, list[tuple[int, str, datetime]]] = defaultdict(list)
    for pid, _invoice_id, received_at, _c in rows:
        touch = touches[pid]
        if touch is not None:
            paid[touch.message_id].append((amounts[pid], currencies[pid], received_at))
    cells = cells_of(facts, paid, _key(query, zone))

    payments: dict[str, dict[str, tuple[int, int]]] = {source: {} for source in SOURCES}
    for pid, currency, amount, provider in db.session.execute(
        select(Payment.id, Payment.currency, Payment.amount, Payment.provider)
        .join(Invoice, Payment.invoice_id == Invoice.id)
        .where(Invoice.creditor_id == query.creditor_id, Invoice.livemode.is_(True),
               Payment.received_at >= start, Payment.received_at < end)
    ):
        source = ("partner" if provider == PARTNER_PROVIDER
                  else "reminder" if touches.get(pid) is not None else "direct")
        n, total = payments[source].get(currency, (0, 0))
        payments[source][currency] = (n + 1, total + amount)
    for source in SOURCES:
        payments[source] = dict(sorted(payments[source].items()))

    counts: Counter[str] = Counter()
    for _due, plan_id, _currency, _total_amount, was_paid, reminded, handed, _left in bill_facts(
            query.creditor_id, query.first_week, query.last_week + timedelta(days=6)):
        if query.plan is not None and plan_id != query.plan:
            continue
        counts.update({"bills": 1, "paid": int(was_paid), "before": int(was_paid and not reminded),
                       "handed": int(handed)})
    this_week = week_of(today)
    outstanding: Counter[str] = Counter()
    billed: Counter[str] = Counter()
    for due, _plan, currency, total_amount, _paid, _reminded, _handed, left in bill_facts(
            query.creditor_id, date.min, this_week + timedelta(days=6)):
        outstanding[currency] += left
        if week_of(due) > this_week - timedelta(days=DSO_DAYS):
            billed[currency] += total_amount
    figures = Bills(counts["bills"], counts["paid"], counts["before"], counts["handed"], **_resolutions(query, zone),
                    dso=_dso(dict(outstanding), dict(billed)))
    return Funnel(query, _ordered(cells), _total(cells), payments, figures, _clarity(query, zone))


# --- a query from a request's parameters (the back office's form, the API) -----------------------------

DEFAULT_WEEKS = 12
FILTERS = ("channel", "step", "plan", "language", "variant")


def parse_query(params, creditor_id: int, today: date) -> Query:
    """A `Query` from text parameters (`from`, `to`: dates, snapped to their weeks' Mondays; `by`; the
    filters); by default the `DEFAULT_WEEKS` weeks ending with `today`'s. Raises `InvalidData` naming
    each bad parameter: `date`, `range`, `dimension`, `number` or `text`."""
    from app.core.dates import parse_date
    from app.errors import InvalidData

    errors: dict[str, str] = {}
    last = week_of(today)
    first = last - timedelta(days=7 * (DEFAULT_WEEKS - 1))
    for name in ("from", "to"):
        text = (params.get(name) or "").strip()
        if text:
            day = parse_date(text)
            if day is None:
                errors[name] = "date"
            elif name == "from":
                first = week_of(day)
            else:
                last = week_of(day)
    if "from" not in errors and "to" not in errors and (
            last < first or (last - first).days // 7 >= MAX_WEEKS):
        errors["to"] = "range"
    by = (params.get("by") or "week").strip()
    if by not in DIMENSIONS:
        errors["by"] = "dimension"
    filters: dict[str, object] = {}
    for name in FILTERS:
        value = (params.get(name) or "").strip()
        if not value:
            continue  # any
        if name in ("step", "plan"):
            if not value.isdigit() or len(value) > 9:
                errors[name] = "number"
            else:
                filters[name] = int(value)
        elif len(value) > 40:
            errors[name] = "text"
        else:
            filters[name] = "" if (name == "variant" and value == "-") else value  # "-": messages without one
    if errors:
        raise InvalidData(errors)
    return Query(creditor_id, first, last, by=by, **filters)  # type: ignore[arg-type]


def options(creditor_id: int) -> dict[str, list]:
    """The values each filter can take for the creditor (from its rollup rows): channels, steps, plans,
    languages, variants."""
    found: dict[str, set] = {name: set() for name in FILTERS}
    for channel, position, plan_id, locale, variant in db.session.execute(
        select(FunnelWeek.channel, FunnelWeek.position, FunnelWeek.plan_id, FunnelWeek.locale, FunnelWeek.variant)
        .where(FunnelWeek.creditor_id == creditor_id).distinct()
    ):
        for name, value in zip(FILTERS, (channel, position, plan_id, locale, variant), strict=True):
            found[name].add(value)
    return {name: sorted(values) for name, values in found.items()}
