"""The back office's overview of one creditor: links opened, payments, disputes and the median days
from link to payment over the last 30 days, per day and in total, and a small chart of them.

Plain functions that only read (no flush, no Flask objects). Days are the creditor's local days:
the window's two ends are turned into UTC instants, the timestamps between them are read (only the
columns needed, three statements whatever the data size) and each is put on its local day in
Python. A GROUP BY on the day would need time-zone functions that SQLite and PostgreSQL spell
differently, and the rows of 60 days of one creditor are few enough to bucket here.

The chart is server-rendered SVG with presentation attributes only: the back office's
Content-Security-Policy allows no inline style without a nonce, and the page runs no script.
Every word in it comes from the caller, already translated; numbers, amounts and dates are
formatted here with Babel in the locale the caller gives.
"""

from __future__ import annotations

import re
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from babel.dates import format_interval, format_skeleton
from babel.numbers import format_decimal
from markupsafe import Markup, escape
from sqlalchemy import func, select

from app.billing.models import Invoice, InvoiceEvent, InvoiceStatus
from app.debt_collection.services import PROVIDER as PARTNER_PROVIDER  # what partners report paid to them
from app.extensions import db
from app.i18n import country_zone
from app.links.models import AccessLink
from app.money import format_money
from app.outbox.models import OutboxMessage, OutboxStatus
from app.payments.models import Payment
from app.resolutions.models import Kind, Resolution, Status
from app.support.models import SupportMessage, SupportRequest

#: A request that came to nothing is no promise or plan agreed.
NOT_AGREED = (Status.DECLINED, Status.OPEN)

DEFAULT_DAYS = 30
SECONDS_A_DAY = 86400


# --- the figures ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DayFigures:
    """One local day of the creditor. `paid_amount` is minor units per currency, like `Totals.paid`."""

    day: date
    links_opened: int
    payments: int
    paid_amount: dict[str, int]
    disputes: int


@dataclass(frozen=True)
class Totals:
    """One period's figures.

    `paid` is minor units per currency: a creditor normally bills in one currency, but nothing
    stops an invoice in another, and sums of different currencies mean nothing.
    `median_days_to_payment` is over the period's payments that followed a link (see
    `creditor_overview`), None when there are none."""

    links_opened: int
    payments: int
    paid: dict[str, int]
    disputes: int
    median_days_to_payment: float | None
    # What the collection partner reported paid to it: not the portal's doing, so counted apart.
    partner_payments: int = 0
    partner_paid: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Overview:
    """The window `first_day`..`last_day` (the creditor's local dates, both included), day by day
    in `series`, its `totals`, and the `previous` period of the same length for "up/down"."""

    creditor_id: int
    first_day: date
    last_day: date
    series: list[DayFigures]
    totals: Totals
    previous: Totals

    @property
    def median_days_to_payment(self) -> float | None:
        return self.totals.median_days_to_payment


def _day_starts(day: date, zone: tzinfo) -> datetime:
    """The UTC instant at which the local `day` begins. pytz zones (which Babel returns when pytz
    is installed) need `localize`; zoneinfo zones take the tzinfo directly."""
    midnight = datetime.combine(day, time())
    local = zone.localize(midnight) if hasattr(zone, "localize") else midnight.replace(tzinfo=zone)
    return local.astimezone(UTC)


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def creditor_overview(creditor_id: int, country: str, today: date, days: int = DEFAULT_DAYS) -> Overview:
    """The `days` local days ending with `today` (the creditor's local date), and the `days` before.

    Three statements whatever the data size, each limited to the creditor (links and payments
    through their invoice) and to the two periods' UTC bounds:

    - links opened: `link_opened` events (recorded at most once per link per half hour, so
      reloads and mail-scanner prefetches do not inflate them);
    - payments: received_at, amount and currency of every Payment (money received, refunds not
      deducted), with the invoice's first link issued at or before it;
    - disputes: Resolution rows of kind dispute, by created_at (whatever became of them since).

    Days to payment: from the `created_at` of the invoice's first AccessLink issued at or before
    the payment to the payment's `received_at`, in days (elapsed time, fractional). The AccessLink
    row is the link itself, written in the same moment as its `link_issued` event, and found
    through its invoice index by a correlated subquery, not a scan of the timeline. Payments
    without a link before them (no link at all, or money that came before any link, such as a
    bank transfer with the KID from a paper bill) are left out.

    The caller checks that the agent may see `creditor_id` (`Scope.get(Creditor, id)`)."""
    if days < 1:
        raise ValueError("days must be at least 1")
    zone = country_zone(country)  # as local_today: "today" is the day the bill pages call today
    first_day = today - timedelta(days=days - 1)
    previous_first = first_day - timedelta(days=days)
    since, until = _day_starts(previous_first, zone), _day_starts(today + timedelta(days=1), zone)

    opened_at = db.session.scalars(
        select(InvoiceEvent.created_at)
        .join(Invoice, InvoiceEvent.invoice_id == Invoice.id)
        .where(Invoice.creditor_id == creditor_id, Invoice.livemode.is_(True), InvoiceEvent.kind == "link_opened",
               InvoiceEvent.created_at >= since, InvoiceEvent.created_at < until)
    ).all()
    first_link = (
        select(func.min(AccessLink.created_at))
        .where(AccessLink.invoice_id == Payment.invoice_id, AccessLink.created_at <= Payment.received_at)
        .correlate(Payment)
        .scalar_subquery()
    )
    payments = db.session.execute(
        select(Payment.received_at, Payment.amount, Payment.currency, first_link, Payment.provider)
        .join(Invoice, Payment.invoice_id == Invoice.id)
        .where(Invoice.creditor_id == creditor_id, Invoice.livemode.is_(True), Payment.received_at >= since,
               Payment.received_at < until)
    ).all()
    disputed_at = db.session.scalars(
        select(Resolution.created_at)
        .join(Invoice, Resolution.invoice_id == Invoice.id)
        .where(Resolution.creditor_id == creditor_id, Invoice.livemode.is_(True), Resolution.kind == Kind.DISPUTE,
               Resolution.created_at >= since, Resolution.created_at < until)
    ).all()

    def local_day(moment: datetime) -> date:
        return moment.astimezone(zone).date()

    opened = Counter(local_day(moment) for moment in opened_at)
    disputes = Counter(local_day(moment) for moment in disputed_at)
    paid_count: Counter[date] = Counter()
    paid: defaultdict[date, Counter[str]] = defaultdict(Counter)
    waits: dict[bool, list[float]] = {True: [], False: []}  # current period?, days from link to payment
    partner_count: Counter[date] = Counter()
    partner_paid: defaultdict[date, Counter[str]] = defaultdict(Counter)
    for received_at, amount, currency, linked_at, provider in payments:
        day = local_day(received_at)
        if provider == PARTNER_PROVIDER:
            partner_count[day] += 1
            partner_paid[day][currency] += amount
            continue
        paid_count[day] += 1
        paid[day][currency] += amount
        if linked_at is not None:
            waits[day >= first_day].append((received_at - linked_at).total_seconds() / SECONDS_A_DAY)

    def totals(start: date, end: date, current: bool) -> Totals:
        def in_period(counter: Counter[date]) -> int:
            return sum(n for day, n in counter.items() if start <= day <= end)

        def summed(by_day: defaultdict[date, Counter[str]]) -> dict[str, int]:
            amounts: Counter[str] = Counter()
            for day, by_currency in by_day.items():
                if start <= day <= end:
                    amounts.update(by_currency)
            return dict(sorted(amounts.items()))

        return Totals(
            links_opened=in_period(opened), payments=in_period(paid_count), paid=summed(paid),
            disputes=in_period(disputes), median_days_to_payment=_median(waits[current]),
            partner_payments=in_period(partner_count), partner_paid=summed(partner_paid),
        )

    series = [
        DayFigures(day=day, links_opened=opened[day], payments=paid_count[day],
                   paid_amount=dict(sorted(paid[day].items())) if day in paid else {}, disputes=disputes[day])
        for day in (first_day + timedelta(days=i) for i in range(days))
    ]
    return Overview(
        creditor_id=creditor_id, first_day=first_day, last_day=today, series=series,
        totals=totals(first_day, today, True), previous=totals(previous_first, first_day - timedelta(days=1), False),
    )


@dataclass(frozen=True)
class Book:
    """The rest of a creditor's picture: what customers arranged and wrote in the window, and what is
    owed now. Amounts are minor units per currency."""

    promises: int  # promises to pay made in the window
    plans: int  # instalment plans agreed in the window (by the customer within the rules, or granted)
    customer_messages: int  # messages customers wrote in the window
    messages_sent: int  # e-mails and SMS delivered to customers in the window (reminders included)
    open_bills: int
    outstanding: dict[str, int]  # what is left to pay on every bill not paid or closed (the partner's too)
    overdue: dict[str, int]  # the part of it past its due date
    with_partner: dict[str, int]  # the part the collection partner has


def creditor_book(creditor_id: int, country: str, today: date, days: int = DEFAULT_DAYS) -> Book:
    """Promises, plans and messages of the `days` local days ending `today`, and the balance outstanding
    now: a handful of statements, each limited to the creditor."""
    zone = country_zone(country)
    since, until = _day_starts(today - timedelta(days=days - 1), zone), _day_starts(today + timedelta(days=1), zone)

    def made(kind: str) -> int:
        return db.session.scalar(select(func.count()).select_from(Resolution).join(
            Invoice, Resolution.invoice_id == Invoice.id).where(
            Resolution.creditor_id == creditor_id, Invoice.livemode.is_(True), Resolution.kind == kind,
            Resolution.created_at >= since, Resolution.created_at < until, Resolution.status.not_in(NOT_AGREED))) or 0

    customer_messages = db.session.scalar(
        select(func.count()).select_from(SupportMessage).join(SupportRequest)
        .join(Invoice, SupportRequest.invoice_id == Invoice.id)
        .where(SupportRequest.creditor_id == creditor_id, Invoice.livemode.is_(True),
               SupportMessage.author == "customer", SupportMessage.created_at >= since,
               SupportMessage.created_at < until)) or 0
    messages_sent = db.session.scalar(
        select(func.count()).select_from(OutboxMessage)
        .where(OutboxMessage.creditor_id == creditor_id, OutboxMessage.channel.in_(("email", "sms")),
               OutboxMessage.status == OutboxStatus.DELIVERED, OutboxMessage.livemode.is_(True),
               OutboxMessage.kind.not_like("agent.%"),
               OutboxMessage.kind != "support.notification",
               OutboxMessage.delivered_at >= since, OutboxMessage.delivered_at < until)) or 0
    outstanding: Counter[str] = Counter()
    overdue: Counter[str] = Counter()
    with_partner: Counter[str] = Counter()
    open_bills = 0
    for currency, status, due_date, left, count in db.session.execute(
        select(Invoice.currency, Invoice.status, Invoice.due_date,
               func.sum(Invoice.total - Invoice.amount_paid), func.count())
        .where(Invoice.creditor_id == creditor_id, Invoice.livemode.is_(True),
               Invoice.status.not_in((InvoiceStatus.PAID, InvoiceStatus.CANCELLED, InvoiceStatus.WRITTEN_OFF)),
               Invoice.total > Invoice.amount_paid)
        .group_by(Invoice.currency, Invoice.status, Invoice.due_date)  # plain columns: the same on both databases
    ):
        open_bills += count
        outstanding[currency] += int(left or 0)
        if due_date < today:
            overdue[currency] += int(left or 0)
        if status == InvoiceStatus.IN_COLLECTION:
            with_partner[currency] += int(left or 0)
    return Book(made(Kind.PROMISE), made(Kind.PLAN), customer_messages, messages_sent, open_bills,
                dict(sorted(outstanding.items())), dict(sorted(overdue.items())), dict(sorted(with_partner.items())))


# --- the chart -----------------------------------------------------------------------------------------

# Each at least 3:1 on white (WCAG 1.4.11, graphics): 8.3:1, 4.7:1, 7.3:1. The three series also
# differ in shape (bars, a line, diamonds), so colour is not the only way to tell them apart.
PAYMENTS_COLOUR = "#1f4b99"
LINKS_COLOUR = "#b35c00"
DISPUTES_COLOUR = "#b00020"

# The drawing's own units (viewBox): 400 wide, so at a phone's 360 px the 11-unit text is about
# 10 px, and the chart scales up with the width of a desktop column.
WIDTH, HEIGHT = 400, 220
PLOT_LEFT, PLOT_RIGHT = 40, 392
PLOT_TOP, BASELINE = 34, 172
MARKER_Y = 184  # the lane of the dispute markers, under the baseline
DATE_Y = 210
FONT_SIZE = 11
ID_PREFIX = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")


def _n(value: float) -> str:
    """A coordinate, short: 12.5, not 12.500000000001."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _text(x: float, y: float, content: str, anchor: str = "start") -> str:
    return (f'<text x="{_n(x)}" y="{_n(y)}" text-anchor="{anchor}" fill="currentColor">'
            f"{escape(content)}</text>")


def _describe(overview: Overview, labels: dict[str, str], locale: str) -> str:
    """The totals in words, for the chart's <desc>: the period, then each figure after its label."""
    totals = overview.totals
    number = lambda value: format_decimal(value, locale=locale)  # noqa: E731
    amounts = ", ".join(format_money(amount, currency, locale) for currency, amount in totals.paid.items())
    payments = number(totals.payments) + (f" ({amounts})" if amounts else "")
    parts = [
        format_interval(overview.first_day, overview.last_day, "yMMMd", locale=locale),
        f"{labels['payments']}: {payments}",
        f"{labels['links_opened']}: {number(totals.links_opened)}",
        f"{labels['disputes']}: {number(totals.disputes)}",
    ]
    if labels.get("median_days") and totals.median_days_to_payment is not None:
        median = format_decimal(totals.median_days_to_payment, format="#,##0.#", locale=locale)
        parts.append(f"{labels['median_days']}: {median}")
    return ". ".join(parts) + "."


def chart_svg(overview: Overview, *, title: str, labels: dict[str, str], locale: str,
              id_prefix: str | None = None, width: int = WIDTH) -> Markup:
    """An inline SVG of the window: bars for payments a day, a line for links opened, a diamond
    under the days with disputes.

    `title` and `labels` ("payments", "links_opened", "disputes"; "median_days" optional, to name
    the median in the description) come translated from the caller; `locale` is the formatting
    locale (`app.i18n.format_locale`, e.g. en_GB). All of it is escaped here. The ids inside the
    drawing start with `id_prefix` (by default `overview-<creditor id>`), so several charts can
    share a page; pass one when the same creditor's chart appears twice.

    Screen readers get one image named by the title and described by the totals (role="img" with
    aria-labelledby); pointer users get each day's figures as a tooltip. `width`: the drawing's width in
    its own units (the height stays): 400 reads well on a phone, a wider one fills a desktop's card."""
    plot_right = width - (WIDTH - PLOT_RIGHT)
    prefix = id_prefix or f"overview-{overview.creditor_id}"
    if not ID_PREFIX.match(prefix):
        raise ValueError("id_prefix: a letter, then letters, digits, '-' or '_'")
    title_id, desc_id = f"{prefix}-title", f"{prefix}-desc"
    series = overview.series
    count = len(series)
    top = max([max(d.payments, d.links_opened) for d in series] + [0])
    scale = (BASELINE - PLOT_TOP) / max(top, 1)
    slot = (plot_right - PLOT_LEFT) / max(count, 1)
    centre = lambda i: PLOT_LEFT + slot * (i + 0.5)  # noqa: E731
    height = lambda value: value * scale  # noqa: E731
    number = lambda value: format_decimal(value, locale=locale)  # noqa: E731
    short_date = lambda day: format_skeleton("MMMd", day, locale=locale)  # noqa: E731

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {HEIGHT}" width="100%" role="img" '
        f'aria-labelledby="{title_id} {desc_id}" font-size="{FONT_SIZE}">',
        f'<title id="{title_id}">{escape(title)}</title>',
        f'<desc id="{desc_id}">{escape(_describe(overview, labels, locale))}</desc>',
    ]

    # Legend: one third of the width each, the mark before its word.
    third = width / 3
    parts.append(f'<rect x="8" y="5" width="10" height="10" fill="{PAYMENTS_COLOUR}"/>')
    parts.append(_text(22, 14, labels["payments"]))
    parts.append(f'<line x1="{_n(third + 4)}" y1="10" x2="{_n(third + 18)}" y2="10" stroke="{LINKS_COLOUR}" '
                 f'stroke-width="2" stroke-linecap="round"/>')
    parts.append(_text(third + 22, 14, labels["links_opened"]))
    parts.append(f'<path d="{_diamond(2 * third + 12, 10)}" fill="{DISPUTES_COLOUR}"/>')
    parts.append(_text(2 * third + 22, 14, labels["disputes"]))

    # Axes: the largest value at the top line, zero at the baseline; first, middle and last day.
    parts.append(f'<line x1="{PLOT_LEFT}" y1="{PLOT_TOP}" x2="{plot_right}" y2="{PLOT_TOP}" stroke="currentColor" '
                 f'stroke-opacity="0.3" stroke-dasharray="2 3"/>')
    parts.append(_text(PLOT_LEFT - 4, PLOT_TOP + 4, number(top), "end"))
    parts.append(_text(PLOT_LEFT - 4, BASELINE + 4, number(0), "end"))
    if count:
        marks = {0: "start", count // 2: "middle", count - 1: "end"}  # a one-day window keeps "end"
        for i, anchor in marks.items():
            x = {"start": PLOT_LEFT, "middle": centre(i), "end": plot_right}[anchor]
            parts.append(_text(x, DATE_Y, short_date(series[i].day), anchor))

    # Payments: bars.
    bar = slot * 0.6
    for i, figures in enumerate(series):
        if figures.payments:
            h = height(figures.payments)
            parts.append(f'<rect x="{_n(centre(i) - bar / 2)}" y="{_n(BASELINE - h)}" width="{_n(bar)}" '
                         f'height="{_n(h)}" fill="{PAYMENTS_COLOUR}"/>')
    parts.append(f'<line x1="{PLOT_LEFT}" y1="{BASELINE}" x2="{plot_right}" y2="{BASELINE}" stroke="currentColor"/>')

    # Links opened: a line over the bars.
    points = " ".join(f"{_n(centre(i))},{_n(BASELINE - height(d.links_opened))}" for i, d in enumerate(series))
    if points:
        parts.append(f'<polyline points="{points}" fill="none" stroke="{LINKS_COLOUR}" stroke-width="2" '
                     f'stroke-linejoin="round" stroke-linecap="round"/>')

    # Disputes: a diamond under each day that had any.
    for i, figures in enumerate(series):
        if figures.disputes:
            parts.append(f'<path d="{_diamond(centre(i), MARKER_Y)}" fill="{DISPUTES_COLOUR}"/>')

    # A transparent column per day, on top, carrying the day's figures as its tooltip.
    for i, figures in enumerate(series):
        tip = (f"{short_date(figures.day)}: {labels['payments']} {number(figures.payments)}, "
               f"{labels['links_opened']} {number(figures.links_opened)}, "
               f"{labels['disputes']} {number(figures.disputes)}")
        parts.append(f'<rect x="{_n(PLOT_LEFT + slot * i)}" y="{PLOT_TOP}" width="{_n(slot)}" '
                     f'height="{MARKER_Y + 6 - PLOT_TOP}" fill="#ffffff" fill-opacity="0">'
                     f"<title>{escape(tip)}</title></rect>")

    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704  numbers, constants and a checked id prefix; every text escaped above


def _diamond(x: float, y: float, r: float = 4.5) -> str:
    return f"M{_n(x)} {_n(y - r)}L{_n(x + r)} {_n(y)}L{_n(x)} {_n(y + r)}L{_n(x - r)} {_n(y)}Z"
