"""The overview's figures, on data made by the real services: local days in the creditor's time zone
(Europe/Oslo around midnight and across the end of summer time), the window's edges, the previous
period, the median from link to payment, one creditor only, a fixed number of statements; and the
chart: well-formed, accessible, escaped, without inline style, with ids unique per chart."""

from __future__ import annotations

import itertools
import re
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import insert, select

from app.backoffice.overview import (
    DISPUTES_COLOUR,
    LINKS_COLOUR,
    PAYMENTS_COLOUR,
    DayFigures,
    Overview,
    Totals,
    chart_svg,
    creditor_overview,
)
from app.billing.models import InvoiceEvent
from app.billing.services import import_invoice
from app.extensions import db
from app.links.services import issue_link, record_open, resolve_token
from app.links.signer import LinkSigner
from app.money import format_money
from app.payments.models import Payment
from app.payments.services import settle
from app.resolutions.disputes import open_dispute
from app.resolutions.models import Kind, Resolution, Status
from app.resolutions.promises import make_promise
from tests.factories import invoice_payload, make_creditor, make_invoice, take_card_payments
from tests.support.database import recorded_statements

TODAY = date(2026, 11, 30)  # the window: 1-30 November (CET, UTC+1); before it 2-31 October (CEST until the 25th)
FIRST_DAY = date(2026, 11, 1)
SIGNER = LinkSigner(["overview-key-" + "k" * 40], max_age_seconds=400 * 86400)
SVG = "{http://www.w3.org/2000/svg}"
LABELS = {"payments": "Payments", "links_opened": "Links opened", "disputes": "Disputes",
          "median_days": "Median days from link to payment"}
_seq = itertools.count(1)


def utc(month: int, day: int, hour: int = 12, minute: int = 0, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


@pytest.fixture
def ctx(app, session):
    """A request context: the services render e-mails (receipts, dispute notices) as they go."""
    with app.test_request_context():
        yield


@pytest.fixture
def creditor(ctx):
    return make_creditor("NO")


# --- building data through the services, then placing it in time -------------------------------------


def _date_newest(invoice, kind: str, at: datetime) -> None:
    """The services stamp their events with the clock; move the newest of `kind` to `at`."""
    newest = db.session.scalars(
        select(InvoiceEvent).where(InvoiceEvent.invoice_id == invoice.id, InvoiceEvent.kind == kind)
        .order_by(InvoiceEvent.id.desc()).limit(1)
    ).one()
    newest.created_at = at
    db.session.flush()


def issue(invoice, at: datetime):
    issued = issue_link(invoice, channel="sms", ttl_days=365, signer=SIGNER, base_url="https://pay.example.test",
                        actor="test", now=at)
    _date_newest(invoice, "link_issued", at)
    return issued


def open_link(issued, at: datetime) -> None:
    resolution = resolve_token(issued.token, signer=SIGNER, now=at)
    assert resolution.ok and record_open(resolution, interval_minutes=30, now=at)
    _date_newest(issued.link.invoice, "link_opened", at)


def opened_at(creditor, at: datetime) -> None:
    """A link of its own, issued a week before and opened at `at` (so opens never throttle each other)."""
    open_link(issue(make_invoice(creditor), at - timedelta(days=7)), at)


def pay(invoice, at: datetime, amount: int = 1000) -> Payment:
    payment = settle(invoice.id, provider="manual", payment_id=f"overview-{next(_seq)}", amount=amount,
                     currency=invoice.currency, method=None, received_at=at, actor="test")
    assert payment is not None
    return payment


def dispute(invoice, at: datetime, tmp_path) -> Resolution:
    found, created = open_dispute(
        invoice, reason="other", message="Not ours", line_ids=None, upload=None, attachment_dir=str(tmp_path),
        locale="en", submission_key=f"d-{next(_seq)}", today=at.date(),
    )
    assert created
    found.created_at = at
    db.session.flush()
    return found


def figures(overview: Overview) -> dict[date, tuple[int, int, dict[str, int], int]]:
    """The days with anything on them: (links opened, payments, paid, disputes)."""
    return {d.day: (d.links_opened, d.payments, d.paid_amount, d.disputes) for d in overview.series
            if d.links_opened or d.payments or d.disputes}


# --- the figures ----------------------------------------------------------------------------------------


def test_days_are_the_creditors_local_days_and_the_window_its_30_days(app, creditor, tmp_path):
    other = make_creditor("NO")
    # Links opened. November is CET (UTC+1): 23:00 UTC is local midnight.
    for at in (
        utc(11, 10, 22, 30),  # 23:30 on the 10th
        utc(11, 10, 23, 30),  # 00:30 on the 11th
        utc(10, 31, 23, 0),  # 00:00 on 1 November: the window's first moment
        utc(11, 30, 22, 59),  # 23:59 on the 30th: its last minute
        utc(11, 30, 23, 0),  # 1 December: after it
        utc(10, 31, 22, 59),  # 23:59 on 31 October: the previous period
        utc(10, 10, 22, 30),  # CEST (UTC+2): 00:30 on 11 October, previous
        utc(10, 1, 22, 0),  # CEST: 00:00 on 2 October, the previous period's first moment
        utc(10, 1, 21, 59),  # 23:59 on 1 October: before both
    ):
        opened_at(creditor, at)
    # Payments: partial ones on one invoice, and one in euros on an invoice of the same creditor.
    invoice = make_invoice(creditor)
    pay(invoice, utc(11, 10, 22, 30), 2000)  # the 10th
    pay(invoice, utc(11, 10, 23, 30), 1000)  # the 11th
    pay(invoice, utc(11, 11, 12, 0), 500)  # the 11th
    pay(invoice, utc(10, 31, 22, 59), 700)  # previous
    pay(invoice, utc(11, 30, 23, 0), 900)  # December
    take_card_payments(app, creditor)  # euros by card: its bank account is in kroner
    in_euros, _ = import_invoice(creditor, invoice_payload("EUR"), actor="test")
    pay(in_euros, utc(11, 20), 4200)
    # Disputes (one per invoice: an invoice has one open dispute at a time), and a promise, which is not one.
    dispute(make_invoice(creditor), utc(11, 10, 23, 30), tmp_path)  # the 11th
    dispute(make_invoice(creditor), utc(10, 31, 23, 0), tmp_path)  # 1 November
    dispute(make_invoice(creditor), utc(10, 15), tmp_path)  # previous
    dispute(make_invoice(creditor), utc(9, 20), tmp_path)  # before both
    make_promise(make_invoice(creditor), date(2026, 11, 20), locale="en", submission_key="p", today=date(2026, 11, 12))
    # Another creditor's figures, on the same days, count for that creditor only.
    opened_at(other, utc(11, 11))
    pay(make_invoice(other), utc(11, 11), 3000)
    dispute(make_invoice(other), utc(11, 11), tmp_path)

    overview = creditor_overview(creditor.id, creditor.country, TODAY)

    assert (overview.first_day, overview.last_day) == (FIRST_DAY, TODAY)
    assert [d.day for d in overview.series] == [FIRST_DAY + timedelta(days=i) for i in range(30)]
    assert figures(overview) == {
        date(2026, 11, 1): (1, 0, {}, 1),
        date(2026, 11, 10): (1, 1, {"NOK": 2000}, 0),
        date(2026, 11, 11): (1, 2, {"NOK": 1500}, 1),
        date(2026, 11, 20): (0, 1, {"EUR": 4200}, 0),
        date(2026, 11, 30): (1, 0, {}, 0),
    }
    assert overview.totals == Totals(links_opened=4, payments=4, paid={"EUR": 4200, "NOK": 3500}, disputes=2,
                                     median_days_to_payment=None)
    assert overview.previous == Totals(links_opened=3, payments=1, paid={"NOK": 700}, disputes=1,
                                       median_days_to_payment=None)

    theirs = creditor_overview(other.id, other.country, TODAY)
    assert figures(theirs) == {date(2026, 11, 11): (1, 1, {"NOK": 3000}, 1)}


def test_the_window_follows_the_given_length_and_today(creditor):
    opened_at(creditor, utc(11, 23, 23, 30))  # 00:30 on the 24th
    opened_at(creditor, utc(11, 20))
    week = creditor_overview(creditor.id, "NO", date(2026, 11, 24), days=7)
    assert (week.first_day, len(week.series)) == (date(2026, 11, 18), 7)
    assert figures(week) == {date(2026, 11, 20): (1, 0, {}, 0), date(2026, 11, 24): (1, 0, {}, 0)}
    # 21-23 November: the open at 00:30 on the 24th is after it, the 20th is in the three days before.
    day_before = creditor_overview(creditor.id, "NO", date(2026, 11, 23), days=3)
    assert (day_before.totals.links_opened, day_before.previous.links_opened) == (0, 1)
    with pytest.raises(ValueError):
        creditor_overview(creditor.id, "NO", TODAY, days=0)


def test_nothing_yet(creditor):
    overview = creditor_overview(creditor.id, creditor.country, TODAY)
    assert len(overview.series) == 30 and figures(overview) == {}
    assert overview.totals == overview.previous == Totals(0, 0, {}, 0, None)
    assert overview.median_days_to_payment is None


def test_median_days_from_the_first_link_to_the_payment(creditor):
    def paid_after_link(link_at: datetime, paid_at: datetime, *more_links: datetime):
        invoice = make_invoice(creditor)
        issue(invoice, link_at)
        for at in more_links:
            issue(invoice, at)
        pay(invoice, paid_at)
        return invoice

    paid_after_link(utc(11, 2, 10), utc(11, 3, 10))  # 1 day
    paid_after_link(utc(11, 5, 8), utc(11, 7, 8), utc(11, 6, 8))  # 2 days from the first of two links
    paid_after_link(utc(11, 10, 0), utc(11, 14, 12))  # 4.5 days
    paid_after_link(utc(10, 20), utc(11, 1, 12))  # a link before the window: 12 days
    pay(make_invoice(creditor), utc(11, 15))  # no link: left out
    early = make_invoice(creditor)
    pay(early, utc(11, 16, 10))  # paid before its first link (a transfer with the KID of a paper bill): left out
    issue(early, utc(11, 17))
    paid_after_link(utc(10, 5), utc(10, 8))  # the previous period: 3 days
    other = make_creditor("NO")
    other_invoice = make_invoice(other)
    issue(other_invoice, utc(11, 2))
    pay(other_invoice, utc(11, 29))  # another creditor's 27 days

    overview = creditor_overview(creditor.id, creditor.country, TODAY)
    assert overview.totals.payments == 6
    assert overview.median_days_to_payment == 3.25  # 1, 2, 4.5, 12: an even count, the mean of the middle two
    assert overview.previous.median_days_to_payment == 3.0

    paid_after_link(utc(11, 20, 0), utc(11, 26, 0))  # 6 days
    assert creditor_overview(creditor.id, creditor.country, TODAY).median_days_to_payment == 4.5  # odd: the middle


def test_a_fixed_number_of_statements_whatever_the_data(app, creditor, tmp_path):
    opened_at(creditor, utc(11, 5))
    pay(make_invoice(creditor), utc(11, 6))
    dispute(make_invoice(creditor), utc(11, 7), tmp_path)
    small, few = count_statements(app, lambda: creditor_overview(creditor.id, "NO", TODAY))
    assert (small.totals.links_opened, small.totals.payments, small.totals.disputes) == (1, 1, 1)

    # ~5,000 events, 1,000 payments and 200 disputes over both periods, written in bulk.
    invoices = [make_invoice(creditor) for _ in range(20)]
    issue(invoices[0], utc(9, 1))
    start = utc(10, 2)
    moment = lambda i: start + timedelta(minutes=17 * i)  # noqa: E731 - 5,000 steps of 17 minutes: 59 days
    db.session.execute(insert(InvoiceEvent), [
        {"invoice_id": invoices[i % 20].id, "kind": "link_opened", "actor": "customer", "data": {},
         "created_at": moment(i)} for i in range(5000)
    ])
    db.session.execute(insert(Payment), [
        {"invoice_id": invoices[i % 20].id, "provider": "manual", "provider_payment_id": f"bulk-{i}",
         "public_ref": f"bulk-{i}", "amount": 100, "currency": "NOK", "refund_due": 0,
         "received_at": moment(5 * i), "created_at": moment(5 * i)} for i in range(1000)
    ])
    db.session.execute(insert(Resolution), [
        {"reference": f"R-BULK{i:04d}", "creditor_id": creditor.id, "invoice_id": invoices[i % 20].id,
         "kind": Kind.DISPUTE, "status": Status.OPEN, "locale": "en", "submission_key": f"bulk-{i}",
         "created_at": moment(25 * i), "updated_at": moment(25 * i)} for i in range(200)
    ])
    db.session.flush()
    large, many = count_statements(app, lambda: creditor_overview(creditor.id, "NO", TODAY))

    assert len(few) == len(many) == 3
    both = lambda totals: (totals.links_opened, totals.payments, totals.disputes)  # noqa: E731
    assert tuple(a + b for a, b in zip(both(large.totals), both(large.previous), strict=True)) == (5001, 1001, 201)
    assert sum(d.links_opened for d in large.series) == large.totals.links_opened > 2000
    assert large.median_days_to_payment is not None  # the bulk payments follow invoices[0]'s link


def count_statements(app, fn):
    with app.app_context():
        engine = db.engine
    db.session.flush()  # what the test wrote is not the overview's
    with recorded_statements(engine) as statements:
        result = fn()
    return result, statements


# --- the chart ------------------------------------------------------------------------------------------


def sample(creditor_id: int = 7, days: int = 30) -> Overview:
    series = [
        DayFigures(day=FIRST_DAY + timedelta(days=i), links_opened=(i * 7) % 12, payments=i % 4,
                   paid_amount={"NOK": 10000 * (i % 4)} if i % 4 else {}, disputes=1 if i in (3, 17) else 0)
        for i in range(days)
    ]
    totals = Totals(
        links_opened=sum(d.links_opened for d in series), payments=sum(d.payments for d in series),
        paid={"NOK": sum(d.paid_amount.get("NOK", 0) for d in series)},
        disputes=sum(d.disputes for d in series), median_days_to_payment=2.5,
    )
    return Overview(creditor_id=creditor_id, first_day=series[0].day, last_day=series[-1].day, series=series,
                    totals=totals, previous=Totals(0, 0, {}, 0, None))


def parse(svg) -> ET.Element:
    return ET.fromstring(str(svg))


def texts(root: ET.Element) -> list[str]:
    return [el.text for el in root.iter(f"{SVG}text")]


def test_the_chart_is_an_image_named_and_described_by_its_totals():
    overview = sample()
    root = parse(chart_svg(overview, title="Last 30 days", labels=LABELS, locale="en_GB"))
    assert root.tag == f"{SVG}svg" and root.get("role") == "img"
    title_id, desc_id = root.get("aria-labelledby").split()
    by_id = {el.get("id"): el for el in root.iter() if el.get("id")}
    assert by_id[title_id].tag == f"{SVG}title" and by_id[title_id].text == "Last 30 days"
    assert by_id[desc_id].tag == f"{SVG}desc"
    assert root[0] is by_id[title_id] and root[1] is by_id[desc_id]
    t = overview.totals
    assert by_id[desc_id].text == (
        f"1–30 Nov 2026. Payments: {t.payments} ({format_money(t.paid['NOK'], 'NOK', 'en_GB')}). "
        f"Links opened: {t.links_opened}. Disputes: 2. Median days from link to payment: 2.5."
    )
    assert root.get("viewBox") == "0 0 400 220" and root.get("width") == "100%" and root.get("height") is None


def test_the_chart_draws_bars_a_line_markers_and_labels_its_axes():
    overview = sample()
    root = parse(chart_svg(overview, title="t", labels=LABELS, locale="en_GB"))
    bars = [el for el in root.iter(f"{SVG}rect") if el.get("fill") == PAYMENTS_COLOUR and el.get("y") != "5"]
    assert len(bars) == sum(1 for d in overview.series if d.payments)
    (line,) = root.iter(f"{SVG}polyline")
    assert line.get("stroke") == LINKS_COLOUR and line.get("fill") == "none"
    assert len(line.get("points").split()) == 30
    markers = [el for el in root.iter(f"{SVG}path") if el.get("fill") == DISPUTES_COLOUR]
    assert len(markers) == 2 + 1  # two days with disputes, and the legend's
    labels = texts(root)
    assert {"Payments", "Links opened", "Disputes"} <= set(labels)
    assert {"1 Nov", "16 Nov", "30 Nov"} <= set(labels)
    top = max(max(d.payments, d.links_opened) for d in overview.series)
    assert str(top) in labels and "0" in labels
    tips = [el.text for el in root.iter(f"{SVG}title")][1:]
    assert len(tips) == 30 and tips[3] == "4 Nov: Payments 3, Links opened 9, Disputes 1"
    # The tallest bar or point reaches the top line, zero sits on the baseline.
    ys = [float(el.get("y")) for el in bars] + [float(p.split(",")[1]) for p in line.get("points").split()]
    assert min(ys) == 34 and max(ys) == 172


def test_dates_and_numbers_follow_the_locale():
    root = parse(chart_svg(sample(), title="Siste 30 dager", labels=LABELS, locale="nb_NO"))
    assert {"1. nov.", "16. nov.", "30. nov."} <= set(texts(root))
    desc = root.find(f"{SVG}desc").text
    assert desc.startswith("1.–30. nov. 2026.") and "kr" in desc


def test_no_inline_style_no_script_and_every_colour_readable_on_white():
    svg = str(chart_svg(sample(), title="t", labels=LABELS, locale="en_GB"))
    root = ET.fromstring(svg)
    for el in root.iter():
        assert "style" not in el.attrib
        assert el.tag not in (f"{SVG}style", f"{SVG}script", f"{SVG}foreignObject")
        assert not any(name.startswith("on") for name in el.attrib)
    assert "style" not in svg
    colours = set(re.findall(r'(?:fill|stroke)="(#[0-9a-f]{6})"', svg)) - {"#ffffff"}  # the invisible hover columns
    assert colours == {PAYMENTS_COLOUR, LINKS_COLOUR, DISPUTES_COLOUR}
    assert all(contrast(colour) >= 3 for colour in colours)


def contrast(colour: str) -> float:
    def channel(c: float) -> float:
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(int(colour[i:i + 2], 16) / 255) for i in (1, 3, 5))
    return 1.05 / (0.2126 * r + 0.7152 * g + 0.0722 * b + 0.05)


def test_every_text_is_escaped():
    hostile = "<script>alert(1)</script> & Co"
    labels = dict(LABELS, payments='Pay"ments <b>', disputes="Dis'putes")
    svg = str(chart_svg(sample(), title=hostile, labels=labels, locale="en_GB"))
    assert "<script>" not in svg and "<b>" not in svg
    root = ET.fromstring(svg)
    assert root.find(f"{SVG}title").text == hostile
    assert 'Pay"ments <b>' in texts(root) and "Dis'putes" in texts(root)
    assert root.find(f"{SVG}desc").text.count('Pay"ments <b>: ') == 1
    with pytest.raises(ValueError):
        chart_svg(sample(), title="t", labels=LABELS, locale="en_GB", id_prefix='x"><script>')


def test_ids_are_unique_per_chart():
    first = parse(chart_svg(sample(creditor_id=1), title="A", labels=LABELS, locale="en_GB"))
    second = parse(chart_svg(sample(creditor_id=2), title="B", labels=LABELS, locale="en_GB"))
    again = parse(chart_svg(sample(creditor_id=1), title="A", labels=LABELS, locale="en_GB", id_prefix="again-1"))
    ids = [[el.get("id") for el in root.iter() if el.get("id")] for root in (first, second, again)]
    assert all(len(found) == len(set(found)) == 2 for found in ids)
    assert len(set().union(*ids)) == 6
    for root, found in zip((first, second, again), ids, strict=True):
        assert root.get("aria-labelledby").split() == found


def test_a_chart_of_real_figures(creditor):
    opened_at(creditor, utc(11, 29, 23, 30))  # the 30th
    pay(make_invoice(creditor), utc(11, 30, 8), 12501)
    overview = creditor_overview(creditor.id, creditor.country, TODAY)
    root = parse(chart_svg(overview, title="Fjordkraft", labels=LABELS, locale="en_GB"))
    desc = root.find(f"{SVG}desc").text
    # No median: the paid invoice had no link.
    assert desc == "1–30 Nov 2026. Payments: 1 (NOK\u00a0125.01). Links opened: 1. Disputes: 0."
    assert root.get("aria-labelledby") == f"overview-{creditor.id}-title overview-{creditor.id}-desc"
