"""The funnel against a history whose answers are worked out by hand (tests/unit/analytics/history.py),
and the rollups against the raw rows, after a first run and after changes picked up incrementally."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from app.analytics import rollup
from app.analytics.funnel import DSO_DAYS, Query, funnel, funnel_from_raw, median_of
from app.analytics.models import Attribution
from app.extensions import db
from app.i18n import country_zone
from app.models import utcnow
from tests.unit.analytics.history import TODAY, TOTAL, WEEK1, WEEK2, WEEK3, build

WINDOW = 7


@pytest.fixture
def history(app, session):
    with app.test_request_context():
        yield build()


def figures(h, by="week", **filters):
    query = Query(h.creditor.id, WEEK1, WEEK3, by=by, **filters)
    zone = country_zone(h.creditor.country)
    return funnel(query, zone, TODAY), funnel_from_raw(query, zone, TODAY, WINDOW)


def counts(row):
    return (row.sent, row.delivered, row.opened, row.failed, row.paid, row.payments, row.paid_amounts, row.median_days)


def test_median_of_a_histogram_is_the_median_of_its_values():
    import statistics

    for values in ([3], [1, 2], [2, 1, 3], [0, 0, 5, 9], [4, 4, 4, 1, 7, 7]):
        histogram: dict[int, int] = {}
        for value in values:
            histogram[value] = histogram.get(value, 0) + 1
        assert median_of(histogram) == statistics.median(values)
    assert median_of({}) is None


def test_payments_are_attributed_to_the_last_reminder_opened_within_the_window(history):
    rollup.run(window_days=WINDOW)
    h = history
    given = dict(db.session.execute(select(Attribution.payment_id, Attribution.message_id)).all())
    m = {name: message.id for name, message in h.messages.items()}
    p = {name: payment.id for name, payment in h.payments.items()}
    assert given == {p["P1"]: m["m1"], p["P2"]: None, p["P3"]: None, p["P4"]: m["m6"], p["P5"]: m["m8"],
                     p["P8"]: None}  # the partner's payment and the test bill's are not the portal's


def test_the_funnel_by_channel_is_the_one_worked_out_by_hand(history):
    rollup.run(window_days=WINDOW)
    rolled, raw = figures(history, by="channel")
    by = {row.key: counts(row) for row in rolled.rows}
    assert by == {
        "sms": (3, 3, 2, 0, 1, 1, {"NOK": TOTAL}, 2),
        "email": (3, 2, 2, 1, 1, 1, {"NOK": TOTAL}, 1),
        "letter": (1, 1, 1, 0, 1, 1, {"NOK": TOTAL}, 3),
    }
    assert counts(rolled.total) == (7, 6, 5, 1, 3, 3, {"NOK": 3 * TOTAL}, 2)
    assert rolled.total.rate(rolled.total.paid) == pytest.approx(3 / 7)
    assert rolled == raw


@pytest.mark.parametrize(("by", "expected"), [
    ("week", {WEEK1: (4, 3, 2, 1, 1), WEEK2: (3, 3, 3, 0, 2)}),
    ("step", {1: (4, 4, 3, 0, 1), 2: (3, 2, 2, 1, 2)}),
    ("variant", {"A": (2, 2, 2, 0, 1), "B": (1, 1, 0, 0, 0), "": (4, 3, 3, 1, 2)}),
    ("language", {"nb": (4, 4, 3, 0, 2), "en": (3, 2, 2, 1, 1)}),
])
def test_the_funnel_by_each_dimension(history, by, expected):
    rollup.run(window_days=WINDOW)
    rolled, raw = figures(history, by=by)
    assert {row.key: counts(row)[:5] for row in rolled.rows} == expected
    assert rolled == raw


def test_the_funnel_by_plan_version_and_filtered(history):
    rollup.run(window_days=WINDOW)
    rolled, raw = figures(history, by="plan")
    assert [(row.key, row.sent) for row in rolled.rows] == [(history.plan.id, 7)]
    assert rolled == raw
    rolled, raw = figures(history, by="channel", language="nb", step=1)  # m1, m2, m5 (queued), m7
    assert {row.key: counts(row)[:5] for row in rolled.rows} == {"sms": (3, 3, 2, 0, 1)}
    assert rolled == raw


def test_payments_bills_promises_and_days_sales_outstanding(history):
    rollup.run(window_days=WINDOW)
    rolled, raw = figures(history)
    assert rolled.payments == {"reminder": {"NOK": (3, 3 * TOTAL)}, "direct": {"NOK": (3, 3 * TOTAL)},
                               "partner": {"NOK": (1, 5000)}}
    bills = rolled.bills
    # Step 1 of the Norwegian plan is the nudge before the due date, not a reminder: I1, I2, I3 and I8
    # were paid with no reminder after the due date; I6 and X had step 2 (a reminder) first.
    assert (bills.bills, bills.paid, bills.paid_before_reminder, bills.handed_off) == (9, 6, 4, 1)
    assert (bills.promises, bills.promises_kept, bills.promises_broken) == (3, 1, 1)
    assert bills.promises_kept_share == 0.5
    assert (bills.plans, bills.plans_completed, bills.plans_completed_share) == (1, 1, 1.0)
    outstanding = TOTAL + TOTAL + (TOTAL - 5000)  # I4, I5 open; I9 with the partner, 50.00 paid
    assert bills.dso == {"NOK": pytest.approx(outstanding / (9 * TOTAL) * DSO_DAYS)}
    assert (rolled.clarity.answers, rolled.clarity.clear, rolled.clarity.comments, rolled.clarity.score) == (
        2, 1, 1, 0.5)
    assert rolled == raw


def test_a_narrower_window_attributes_less(history):
    rollup.run(window_days=1)  # m1 opened 27 h before P1, m6 27 h before P4: only m8 (1 h) remains
    rolled = funnel(Query(history.creditor.id, WEEK1, WEEK3), country_zone("NO"), TODAY)
    assert (rolled.total.paid, rolled.total.payments) == (1, 1)
    assert rolled == funnel_from_raw(rolled.query, country_zone("NO"), TODAY, 1)


def test_changes_after_a_run_reach_the_rollups_incrementally(history):
    h = history
    first = rollup.run(window_days=WINDOW)
    assert first.rebuilt
    # Later: the queued m5 goes out and is opened, its bill is paid an hour after; m4's bill is paid with
    # no opening; m2 is opened. Only the weeks these touch are recomputed, and the figures follow.
    now = utcnow()
    m5, m2 = h.messages["m5"], h.messages["m2"]
    m5.status, m5.status_at = "opened", now
    h.open(m5, now - timedelta(hours=2))
    h.pay("P9", h.invoices["I5"], now - timedelta(hours=1))
    h.pay("P10", h.invoices["I4"], now - timedelta(minutes=30))
    m2.status, m2.status_at = "opened", now
    db.session.flush()
    second = rollup.run(window_days=WINDOW)
    assert not second.rebuilt
    assert second.message_weeks == 1  # week 1 of the creditor: both messages are in it
    rolled, raw = figures(h, by="variant")
    assert {row.key: counts(row)[:5] for row in rolled.rows} == {
        "A": (3, 3, 3, 0, 2), "B": (1, 1, 1, 0, 0), "": (4, 3, 3, 1, 2)}
    assert rolled == raw
    days = (now - timedelta(hours=1) - h.messages["m5"].created_at).days
    row_a = next(row for row in rolled.rows if row.key == "A")
    assert row_a.median_days == (2 + days) / 2


def test_a_rebuild_gives_what_the_incremental_runs_gave(history):
    rollup.run(window_days=WINDOW)
    before = figures(history, by="step")[0]
    report = rollup.run(window_days=WINDOW, rebuild=True)
    assert report.rebuilt
    assert figures(history, by="step")[0] == before


def test_another_creditors_figures_are_not_mixed_in(history):
    rollup.run(window_days=WINDOW)
    other = build()
    rollup.run(window_days=WINDOW, rebuild=True)
    mine, raw = figures(history, by="channel")
    assert mine.total.sent == 7 and mine == raw
    assert figures(other, by="channel")[0].total.sent == 7


@pytest.mark.parametrize("bad", [
    {"by": "colour"}, {"first_week": WEEK1 + timedelta(days=1)}, {"last_week": WEEK1 - timedelta(days=7)},
    {"first_week": WEEK1 - timedelta(days=7 * 200)},
])
def test_a_query_out_of_bounds_is_refused(bad):
    fields = {"creditor_id": 1, "first_week": WEEK1, "last_week": WEEK2, **bad}
    with pytest.raises(ValueError):
        Query(**fields)


def test_a_rebuild_with_another_window_attributes_every_payment_again(history):
    rollup.run(window_days=WINDOW)
    rollup.run(window_days=1, rebuild=True)
    rolled = funnel(Query(history.creditor.id, WEEK1, WEEK3), country_zone("NO"), TODAY)
    assert (rolled.total.paid, rolled.payments["reminder"]) == (1, {"NOK": (1, TOTAL)})
    assert set(db.session.scalars(select(Attribution.window_days))) == {1}
