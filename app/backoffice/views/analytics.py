"""Funnel analytics per creditor (docs/analytics.md): sent → delivered → opened → paid by week,
channel, reminder step, plan version, language or text variant, what became of the bills, and the
same as CSV. Read from the rollups `flask analytics rollup` keeps; limited to the agent's creditors."""

from __future__ import annotations

from datetime import timedelta

from flask import abort, render_template, request
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import login_required
from sqlalchemy import select

from app.analytics import funnel as funnels
from app.analytics.rollup import watermark
from app.backoffice import analytics as words
from app.backoffice.export import csv_response
from app.backoffice.views import bp, record, scope
from app.core.dates import local_today
from app.creditors.models import Creditor
from app.errors import InvalidData
from app.extensions import db
from app.i18n import country_zone, format_locale
from app.models import utcnow


def _problems(errors: dict[str, str]) -> list[str]:
    said = {
        "date": _("Please enter the dates as 2026-12-31."),
        "range": _("The period must end after it begins and be at most three years long."),
        "dimension": _("Please choose one of the ways to split the figures."),
        "number": _("A reminder step or plan version is a number."),
        "text": _("A filter is at most 40 characters long."),
    }
    found: list[str] = []
    for code in errors.values():
        if said[code] not in found:
            found.append(said[code])
    return found


def _figures():
    """The creditor asked for (by default the first the agent may see), its query and its funnel."""
    visible = scope()
    creditors = list(db.session.scalars(
        select(Creditor).where(Creditor.id.in_(visible.creditor_ids)).order_by(Creditor.name)))
    if not creditors:
        return None
    wanted = request.args.get("creditor", "")
    if wanted:
        if not wanted.isdigit() or not visible.allows(int(wanted)):
            abort(404)
        creditor = next(c for c in creditors if c.id == int(wanted))
    else:
        creditor = creditors[0]
    today = local_today(creditor.country, utcnow())
    problems: list[str] = []
    try:
        query = funnels.parse_query(request.args, creditor.id, today)
    except InvalidData as exc:
        problems = _problems(exc.errors)
        query = funnels.parse_query({}, creditor.id, today)
    figures = funnels.funnel(query, country_zone(creditor.country), today)
    return creditors, creditor, figures, problems


def _arguments(creditor_id: int, query: funnels.Query) -> dict[str, object]:
    """The page's query as parameters again (the CSV link)."""
    found: dict[str, object] = {"creditor": creditor_id, "from": query.first_week.isoformat(),
                                "to": query.last_week.isoformat(), "by": query.by}
    for name in funnels.FILTERS:
        value = getattr(query, name)
        if value is not None:
            found[name] = "-" if value == "" else value
    return found


@bp.get("/analytics")
@login_required
def analytics_page():
    """The funnel of one creditor's reminders, its chart, and what became of its bills."""
    found = _figures()
    if found is None:
        return render_template("backoffice/analytics.html", creditors=[], figures=None)
    creditors, creditor, figures, problems = found
    plans = words.plan_names(creditor.id)
    labels = [words.key_label(figures.query.by, row.key, plans) for row in figures.rows]
    locale = format_locale(str(get_locale()))
    chart = words.chart_svg(figures, labels, title=_("Reminders sent, delivered, opened and paid: %(dimension)s",
                                                     dimension=words.dimension_words()[figures.query.by]),
                            locale=locale)
    record("analytics_viewed", creditor_id=creditor.id, by=figures.query.by)
    db.session.commit()
    return render_template(
        "backoffice/analytics.html", creditors=creditors, creditor=creditor, figures=figures, labels=labels,
        chart=chart, problems=problems, plans=plans, options=funnels.options(creditor.id), locale=locale,
        last_day=figures.query.last_week + timedelta(days=6), csv_args=_arguments(creditor.id, figures.query),
        dimensions=words.dimension_words(), words=words, updated_at=watermark(),
    ), 422 if problems else 200


@bp.get("/analytics.csv")
@login_required
def analytics_csv():
    """The funnel's rows as CSV: one line per row and currency, then the total."""
    found = _figures()
    if found is None:
        abort(404)
    _creditors, creditor, figures, problems = found
    if problems:
        abort(422)
    plans = words.plan_names(creditor.id)
    record("analytics_exported", creditor_id=creditor.id, by=figures.query.by)
    db.session.commit()
    name = f"funnel-{creditor.slug}-{figures.query.first_week.isoformat()}-{figures.query.last_week.isoformat()}.csv"
    return csv_response(name, words.csv_header(), words.csv_rows(creditor.name, figures, plans))
