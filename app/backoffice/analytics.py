"""The back office's analytics page: the funnel's rows in words, its chart and its CSV.

The figures come from `app.analytics.funnel` (the same the creditor API answers with). The chart is
server-drawn SVG with presentation attributes only, as the overview's (no script, no inline style):
four bars per row (sent, delivered, opened, paid), each series in its own colour and pattern of
lightness, a legend, and the figures of each row as its tooltip; screen readers get the title and a
description of the totals. Every word comes translated from here or from the caller.
"""

from __future__ import annotations

from babel.numbers import format_decimal, format_percent
from flask_babel import format_date
from flask_babel import gettext as _
from markupsafe import Markup, escape
from sqlalchemy import select

from app.analytics.funnel import Funnel, Row
from app.backoffice.case import channel_label
from app.backoffice.words import locale_label
from app.dunning.models import Plan
from app.extensions import db
from app.money import format_money

# Each at least 3:1 on white (WCAG 1.4.11) and distinct in lightness, darkest last.
COLOURS = ("#6b7a8f", "#1f77b4", "#b35c00", "#1f4b99")
SERIES = ("sent", "delivered", "opened", "paid")
WIDTH, HEIGHT = 900, 260
PLOT_LEFT, PLOT_RIGHT, PLOT_TOP, BASELINE = 48, 890, 34, 210
LABEL_Y = 228
FONT_SIZE = 12


def dimension_words() -> dict[str, str]:
    return {"week": _("Week"), "channel": _("Channel"), "step": _("Reminder step"), "plan": _("Plan version"),
            "language": _("Language"), "variant": _("Text variant")}


def series_words() -> dict[str, str]:
    return {"sent": _("Sent"), "delivered": _("Delivered"), "opened": _("Opened"), "paid": _("Paid")}


def plan_names(creditor_id: int) -> dict[int, str]:
    """Each plan version of the creditor, by id: "Standard, version 2"."""
    return {pid: _("%(name)s, version %(version)s", name=name, version=version)
            for pid, name, version in db.session.execute(
                select(Plan.id, Plan.name, Plan.version).where(Plan.creditor_id == creditor_id))}


def key_label(by: str, key: object, plans: dict[int, str]) -> str:
    """A row's value of the dimension, in words."""
    if by == "week":
        return _("Week of %(day)s", day=format_date(key, "medium"))
    if by == "channel":
        return channel_label(str(key))
    if by == "step":
        return _("Step %(n)s", n=key) if key else _("No step")
    if by == "plan":
        return plans.get(key, _("No plan")) if isinstance(key, int) and key else _("No plan")
    if by == "language":
        return locale_label(str(key))
    return str(key) if key else _("No variant")


def share(value: float | None, locale: str) -> str:
    return "—" if value is None else format_percent(value, format="#,##0.0 %", locale=locale)


def days(value: float | None, locale: str) -> str:
    return "—" if value is None else format_decimal(value, format="#,##0.#", locale=locale)


def amounts(by_currency: dict[str, int], locale: str) -> str:
    return ", ".join(format_money(amount, currency, locale) for currency, amount in by_currency.items()) or "—"


def csv_header() -> list[str]:
    return [_("Creditor"), _("Dimension"), _("Value"), _("Sent"), _("Delivered"), _("Opened"), _("Failed"),
            _("Paid"), _("Payments"), _("Currency"), _("Amount paid (minor units)"), _("Median days to pay"),
            _("Delivered rate"), _("Opened rate"), _("Paid rate")]


def csv_rows(creditor_name: str, figures: Funnel, plans: dict[int, str]) -> list[list[object]]:
    """One line per row and currency (a row without payments: one line, no currency), then the total.
    Numbers as numbers (dot decimals), for a spreadsheet."""
    dimension = dimension_words()[figures.query.by]
    lines: list[list[object]] = []

    def rate(row: Row, count: int) -> str:
        value = row.rate(count)
        return "" if value is None else f"{value:.4f}"

    for row, label in [*((r, key_label(figures.query.by, r.key, plans)) for r in figures.rows),
                       (figures.total, _("Total"))]:
        by_currency = row.paid_amounts.items() or [("", 0)]
        for currency, amount in by_currency:
            lines.append([creditor_name, dimension, label, row.sent, row.delivered, row.opened, row.failed, row.paid,
                          row.payments, currency, amount if currency else "",
                          "" if row.median_days is None else f"{row.median_days:g}",
                          rate(row, row.delivered), rate(row, row.opened), rate(row, row.paid)])
    return lines


def _n(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _text(x: float, y: float, content: str, anchor: str = "start") -> str:
    return (f'<text x="{_n(x)}" y="{_n(y)}" text-anchor="{anchor}" fill="currentColor">'
            f"{escape(content)}</text>")


def chart_svg(figures: Funnel, labels: list[str], *, title: str, locale: str) -> Markup:
    """Grouped bars: for each row (`labels`, in the rows' order) its messages sent, delivered, opened
    and paid, on one scale from zero to the most sent."""
    words = series_words()
    number = lambda value: format_decimal(value, locale=locale)  # noqa: E731
    total = figures.total
    desc = ". ".join([f"{words[name]}: {number(getattr(total, name))}" for name in SERIES]) + "."
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" role="img" '
        f'aria-labelledby="funnel-title funnel-desc" font-size="{FONT_SIZE}">',
        f'<title id="funnel-title">{escape(title)}</title>',
        f'<desc id="funnel-desc">{escape(desc)}</desc>',
    ]
    quarter = WIDTH / 4
    for i, name in enumerate(SERIES):
        x = 8 + quarter * i
        parts.append(f'<rect x="{_n(x)}" y="6" width="12" height="12" fill="{COLOURS[i]}"/>')
        parts.append(_text(x + 18, 16, words[name]))
    rows = figures.rows
    top = max([row.sent for row in rows] + [0])
    scale = (BASELINE - PLOT_TOP) / max(top, 1)
    parts.append(_text(PLOT_LEFT - 6, PLOT_TOP + 4, number(top), "end"))
    parts.append(_text(PLOT_LEFT - 6, BASELINE + 4, number(0), "end"))
    parts.append(f'<line x1="{PLOT_LEFT}" y1="{PLOT_TOP}" x2="{PLOT_RIGHT}" y2="{PLOT_TOP}" stroke="currentColor" '
                 f'stroke-opacity="0.3" stroke-dasharray="2 3"/>')
    slot = (PLOT_RIGHT - PLOT_LEFT) / max(len(rows), 1)
    bar = slot * 0.8 / len(SERIES)
    every = max(1, len(rows) // 12)  # at most about twelve labels under the axis
    for i, (row, label) in enumerate(zip(rows, labels, strict=True)):
        left = PLOT_LEFT + slot * i + slot * 0.1
        for j, name in enumerate(SERIES):
            value = getattr(row, name)
            if value:
                h = value * scale
                parts.append(f'<rect x="{_n(left + bar * j)}" y="{_n(BASELINE - h)}" width="{_n(bar)}" '
                             f'height="{_n(h)}" fill="{COLOURS[j]}"/>')
        if i % every == 0:
            parts.append(_text(PLOT_LEFT + slot * (i + 0.5), LABEL_Y, label[:24], "middle"))
        tip = f"{label}: " + ", ".join(f"{words[name]} {number(getattr(row, name))}" for name in SERIES)
        parts.append(f'<rect x="{_n(PLOT_LEFT + slot * i)}" y="{PLOT_TOP}" width="{_n(slot)}" '
                     f'height="{BASELINE - PLOT_TOP}" fill="#ffffff" fill-opacity="0">'
                     f"<title>{escape(tip)}</title></rect>")
    parts.append(f'<line x1="{PLOT_LEFT}" y1="{BASELINE}" x2="{PLOT_RIGHT}" y2="{BASELINE}" stroke="currentColor"/>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704  numbers and constants; every text escaped above
