"""Jinja filters: money, dates, numbers and rates, all through Babel in the page's locale."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import lru_cache

from babel.dates import format_date as babel_format_date
from babel.dates import format_datetime as babel_format_datetime
from flask import Flask
from flask_babel import get_locale, ngettext
from jinja2 import pass_context
from jinja2.runtime import Context
from markupsafe import Markup

from app.core.validation import safe_web_address
from app.i18n import country_zone, format_locale
from app.money import format_money, format_quantity, format_rate, to_decimal


def current_format_locale() -> str:
    return format_locale(str(get_locale()))


#: Where each render's context keeps the name of the locale it formats in (`init_templating`).
TEMPLATE_FORMAT_LOCALE = "_format_locale"


def _render_locale(context: Context) -> str:
    """The locale `render_template` put in this context (looked up once per render: Flask-Babel's
    `get_locale` walks the request's context at each call, 4 µs, and a bill page formats some 80
    amounts, dates and quantities); where none is (a macro imported without context, a template
    rendered directly), the current one."""
    found = context.get(TEMPLATE_FORMAT_LOCALE)
    return found if found is not None else current_format_locale()


@lru_cache(maxsize=4096)
def _date(value: date, fmt: str, locale: str) -> str:
    return babel_format_date(value, format=fmt, locale=locale)


def date_range(start: date | None, end: date | None, locale: str | None = None) -> Markup:
    """A period in the same date format as the `date` filter, each end kept on one line
    ("1 November 2026 – 30 November 2026"): one date format per language on a page."""
    locale = locale or current_format_locale()
    if start is None or end is None or start == end:
        return Markup('<span class="nw">{}</span>').format(date_filter(start or end, locale=locale))
    return Markup('<span class="nw">{}</span> – <span class="nw">{}</span>').format(
        date_filter(start, locale=locale), date_filter(end, locale=locale))


#: Units counted in words, as creditors send them in their own language ("text", "mnd", "Monat"): each is
#: said in the page's language with Babel's plural rules. Abbreviations (kWh, GB, min, m³) stay as sent.
UNIT_KINDS = {
    **dict.fromkeys(("text", "texts", "sms", "melding", "meldinger", "nachricht", "nachrichten"), "text"),
    **dict.fromkeys(("month", "months", "mnd", "mnd.", "måned", "måneder", "monat", "monate"), "month"),
    **dict.fromkeys(("day", "days", "dag", "dager", "tag", "tage"), "day"),
    **dict.fromkeys(("piece", "pieces", "pcs", "item", "items", "stk", "stk.", "stück"), "item"),
}


def _unit_words(kind: str, count: int, number: str) -> str:
    if kind == "text":
        return ngettext("%(number)s text message", "%(number)s text messages", count, number=number)
    if kind == "month":
        return ngettext("%(number)s month", "%(number)s months", count, number=number)
    if kind == "day":
        return ngettext("%(number)s day", "%(number)s days", count, number=number)
    return ngettext("%(number)s item", "%(number)s items", count, number=number)


def quantity_with_unit(quantity: Decimal, unit: str | None, locale: str | None = None) -> str:
    """A line's quantity and unit in the page's language, plural by Babel's rules: "3 text messages",
    "1 måned", "2 Monate"; a unit we do not know (kWh, GB) as sent, after the number."""
    number = format_quantity(quantity, locale or current_format_locale())
    kind = UNIT_KINDS.get((unit or "").strip().lower())
    if kind is None:
        return f"{number} {unit}" if unit else number
    count = int(quantity) if quantity == quantity.to_integral() else 2  # a fraction takes the plural
    return _unit_words(kind, count, number)


def money(amount: int, currency: str, locale: str | None = None) -> str:
    return format_money(amount, currency, locale or current_format_locale())


def date_filter(value: date | None, fmt: str = "long", locale: str | None = None) -> str:
    return "" if value is None else _date(value, fmt, locale or current_format_locale())


def datetime_filter(value: datetime | None, fmt: str = "short", country: str | None = None,
                    locale: str | None = None) -> str:
    """A moment (stored in UTC) as the clock read where the creditor is (`country`), else in UTC."""
    if value is None:
        return ""
    zone = country_zone(country) if country else UTC
    return babel_format_datetime(value, format=fmt, tzinfo=zone, locale=locale or current_format_locale())


def _in_render_locale(format_value: Callable[..., str]) -> Callable[..., str]:
    """`format_value` (which takes a `locale`) as a template filter: in the render's locale (`_render_locale`)."""

    @pass_context
    def in_render_locale(context: Context, *args, **kwargs) -> str:
        return format_value(*args, **kwargs, locale=_render_locale(context))

    return in_render_locale


def init_templating(app: Flask) -> None:
    app.jinja_env.globals["get_locale"] = get_locale
    for name, format_value in (("money", money), ("date", date_filter), ("datetime", datetime_filter),
                               ("quantity", format_quantity), ("quantity_unit", quantity_with_unit),
                               ("date_range", date_range), ("rate", format_rate)):
        app.jinja_env.filters[name] = _in_render_locale(format_value)
    app.jinja_env.filters["plain_amount"] = lambda amount, currency: str(to_decimal(amount, currency))
    app.jinja_env.filters["fromiso"] = date.fromisoformat
    app.jinja_env.filters["web_address"] = safe_web_address
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True
    # The render's locale, once (a render inside `force_locale` gets that locale's, as the translations do).
    app.context_processor(lambda: {TEMPLATE_FORMAT_LOCALE: current_format_locale()})


def compile_templates(app: Flask) -> int:
    """Compile every template now (Jinja caches them), so that a server can move them out of the
    garbage collector's reach with the rest of what loading made (wsgi.py's gc.freeze()); else the
    templates compiled by the first requests make every later full collection walk them."""
    names = [name for name in app.jinja_env.list_templates() if name.endswith((".html", ".txt", ".svg", ".xml"))]
    for name in names:
        app.jinja_env.get_template(name)
    return len(names)
