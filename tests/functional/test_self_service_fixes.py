"""Issue 16, customers 3, 4, 5 and 10 through the test client: instalment offers that add up and show
their cost, the plan or the promised date instead of "overdue" / "due in 10 days", what a promise and
more time each mean, call backs only in opening hours with the right words in every language, and
self-service offers that fit the kind of bill (also in the demo)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from app.billing.services import import_invoice
from app.core.dates import local_today
from app.demo import demo_invoice_numbers, load_demo
from app.extensions import db
from app.models import utcnow
from app.money import format_money
from app.resolutions import plans, promises
from app.resolutions.instalments import plan_offers
from app.resolutions.models import Resolution
from app.support.models import SupportRequest
from tests.factories import invoice_payload, make_creditor
from tests.functional.helpers import open_bill

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
SUBMISSION = re.compile(r'name="submission" value="([^"]+)"')
SLOT = re.compile(r'<option value="(\d{4}-\d{2}-\d{2}/(?:morning|afternoon|evening))"[^>]*>([^<]*)</option>')
EN = {"Accept-Language": "en"}


def one_line_bill(creditor, amount: int, *, due_in: int = 5, **overrides):
    """A bill of one line of `amount` (no VAT), due in `due_in` days (negative: overdue)."""
    today = local_today(creditor.country, utcnow())
    payload = invoice_payload(creditor.currency, today=today, **overrides)
    payload.update(lines=[{"description": "Strom", "quantity": "1", "unit_price": amount, "vat_rate": 0}],
                   total=amount, issue_date=(today - timedelta(days=30)).isoformat(),
                   due_date=(today + timedelta(days=due_in)).isoformat())
    invoice, _created = import_invoice(creditor, payload, actor="test")
    return invoice


def hidden(page: str) -> dict:
    return {"csrf_token": CSRF.search(page).group(1), "submission": SUBMISSION.search(page).group(1)}


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


# --- customers 3: instalment offers that add up and show their cost ---------------------------------


@pytest.mark.parametrize(("lang", "label", "stale"), [
    ("en", "3 instalments: first €62.18, then 2 × €62.16", "3 instalments of €62.16"),
    ("de", "3 Raten: zuerst 62,18\xa0€, dann 2 × 62,16\xa0€", "3 Raten zu je 62,16"),
    ("nb", "3 avdrag: først 62,18\xa0€, deretter 2 × 62,16\xa0€", "3 avdrag på"),
])
def test_an_offer_says_the_first_instalment_apart_and_its_total_is_the_schedules(client, app, session, lang, label,
                                                                                  stale):
    creditor = make_creditor("DE")
    creditor.plan_max_months, creditor.plan_min_instalment = 3, 1000
    invoice = one_line_bill(creditor, 18650)
    url = open_bill(client, app, invoice)
    page = client.get(f"{url}/instalments?lang={lang}").text
    assert label in page and stale not in page
    offer = next(o for o in plan_offers(invoice, local_today("DE", utcnow())) if o.months == 3)
    assert offer.total == 18650 == sum(amount for _day, amount in offer.schedule)


def test_the_offer_and_the_plan_to_accept_show_the_cost_of_credit_and_the_apr(client, app, session):
    creditor = make_creditor("NO", default_locale="en")
    creditor.plan_fee, creditor.plan_interest_bp, creditor.plan_max_months = 9900, 1200, 3
    invoice = one_line_bill(creditor, 300000)
    url = open_bill(client, app, invoice)
    offer = next(o for o in plan_offers(invoice, local_today("NO", utcnow())) if o.months == 3)
    cost, apr = format_money(offer.cost.cost, "NOK", "en"), f"{offer.cost.apr}\xa0%"
    page = client.get(f"{url}/instalments", headers=EN)
    assert f"of which the cost of credit is {cost}" in page.text and f"effective annual rate {apr}" in page.text
    confirm = client.post(f"{url}/instalments", data={**hidden(page.text), "months": "3"}, headers=EN)
    assert "Total cost of credit" in confirm.text and cost in confirm.text and apr in confirm.text
    nb = client.get(f"{url}/instalments?lang=nb").text
    assert "effektiv rente " + apr.replace(".", ",") in nb


def test_while_a_plan_is_on_track_the_bill_shows_the_plan_not_overdue(client, app, session):
    creditor = make_creditor("NO", default_locale="en")
    invoice = one_line_bill(creditor, 300000, due_in=-9)
    url = open_bill(client, app, invoice)
    assert "Overdue by 9 days" in client.get(url, headers=EN).text
    today = local_today("NO", utcnow())
    with app.test_request_context():
        plan, _created = plans.accept_plan(invoice, 3, locale="en", submission_key="k", today=today)
        db.session.commit()
    page = client.get(url, headers=EN).text
    assert "Instalment plan on track" in page and "Overdue by" not in page and "status-overdue" not in page
    first = plan.instalments[0]
    assert f"Next instalment: {format_money(first.amount, 'NOK', 'en')}" in page
    details = client.get(f"{url}/r/{plan.reference}?lang=en").text  # the plan's page, as its e-mail, keeps the cost
    assert "Total cost of credit" in details and "Effective annual rate" in details
    from app.outbox.models import OutboxMessage
    from app.resolutions.emails import plan_accepted

    assert db.session.scalar(select(OutboxMessage.kind).where(OutboxMessage.kind == "resolution.plan_accepted"))
    with app.test_request_context():
        facts = dict(plan_accepted(db.session.get(Resolution, plan.id), {}).facts)
    assert "Total cost of credit" in facts and facts["Effective annual rate"].endswith("\xa0%")


# --- customers 4: a promise or more time ----------------------------------------------------------------


def test_promise_and_more_time_each_say_what_differs_and_a_promise_shows_its_date(client, app, session):
    creditor = make_creditor("NO", default_locale="en")
    creditor.deferral_fee = 5000
    invoice = one_line_bill(creditor, 300000, due_in=10)
    url = open_bill(client, app, invoice)
    page = client.get(url, headers=EN).text
    assert "Free, and the due date stays as it is: promise a date within 14 days" in page
    assert "but interest for late payment can run from the due date." in page
    assert f"A new due date for a fee of {format_money(5000, 'NOK', 'en')}: until then the bill is not late" in page
    assert "Due in 10 days" in page
    de = client.get(f"{url}?lang=de").text
    assert "Kostenlos, und das Fälligkeitsdatum bleibt" in de and "Ein neues Fälligkeitsdatum gegen eine Gebühr" in de
    promised = local_today("NO", utcnow()) + timedelta(days=7)
    with app.test_request_context():
        promises.make_promise(invoice, promised, locale="en", submission_key="k", today=local_today("NO", utcnow()))
        db.session.commit()
    page = client.get(f"{url}?lang=en").text
    assert "Due in 10 days" not in page
    assert re.search(r'class="status status-promised"[^>]*>\s*You promised to pay by ', page)


def test_the_promise_form_and_the_more_time_form_say_the_same(client, app, session):
    creditor = make_creditor("NO", default_locale="en")
    invoice = one_line_bill(creditor, 300000, due_in=10)
    url = open_bill(client, app, invoice)
    promise = client.get(f"{url}/promise", headers=EN).text
    assert "Free, and the due date stays as it is" in promise and f'href="{url}/more-time"' in promise
    more_time = client.get(f"{url}/more-time", headers=EN).text
    assert "A new due date at no cost: until then the bill is not late" in more_time
    assert f'href="{url}/promise"' in more_time


# --- customers 5: call backs only in opening hours, in words of every language ------------------------

SUNDAY_AFTERNOON = datetime(2026, 12, 6, 14, 30, tzinfo=UTC)  # 15:30 in Leipzig, a Sunday


@pytest.fixture
def lindenau_bill(client, app, session, monkeypatch):
    monkeypatch.setattr("app.support.views.utcnow", lambda: SUNDAY_AFTERNOON)
    creditor = make_creditor("DE", callback_hours="mon-fri 07:00-19:00, sat 09:00-13:00")
    invoice = one_line_bill(creditor, 12000)
    return invoice, open_bill(client, app, invoice)


def call_back(client, url, slot, lang="en"):
    page = client.get(f"{url}/contact?lang={lang}").text
    data = {**hidden(page), "topic": "bill_question", "message": "Bitte rufen Sie mich an.",
            "contact_method": "phone", "phone": "+49 341 123456", "email": "", "callback_slot": slot}
    return client.post(f"{url}/contact", data=data, content_type="multipart/form-data")


def test_on_a_sunday_only_windows_in_opening_hours_are_offered_in_every_language(client, lindenau_bill):
    _invoice, url = lindenau_bill
    offered = {lang: SLOT.findall(client.get(f"{url}/contact?lang={lang}").text) for lang in ("en", "de", "nb")}
    slots = [slot for slot, _words in offered["en"]]
    assert slots[:4] == ["2026-12-07/morning", "2026-12-07/afternoon", "2026-12-07/evening", "2026-12-08/morning"]
    assert not any(slot.startswith(("2026-12-06", "2026-12-13")) for slot in slots)  # Sundays
    assert [s for s in slots if s.startswith("2026-12-12")] == ["2026-12-12/morning", "2026-12-12/afternoon"]
    assert "2026-12-25/morning" not in slots and "2026-12-19/morning" in slots  # Christmas Day; 14 days ahead
    words = {lang: dict(found)["2026-12-07/evening"] for lang, found in offered.items()}
    assert words["en"].endswith("between 4:00 and 7:00 pm")
    assert words["de"].endswith("zwischen 16:00 und 19:00 Uhr")
    assert words["nb"].endswith("mellom kl. 16.00 og 19.00")
    assert dict(offered["en"])["2026-12-07/morning"].endswith("between 7:00 am and 12:00 pm")


@pytest.mark.parametrize("slot", ["2026-12-06/evening", "2026-12-12/evening", "2026-12-25/morning",
                                  "2026-12-21/evening", "2026-12-07/noon", "2026-12-07", ""])
def test_a_window_outside_opening_hours_or_gone_is_refused_in_words_and_changes_nothing(client, lindenau_bill, slot):
    _invoice, url = lindenau_bill
    answer = call_back(client, url, slot, lang="de")
    assert answer.status_code == 422
    error = re.search(r'<p class="error" id="callback_slot-error">([^<]*)</p>', answer.text).group(1)
    assert "Bitte wählen Sie" in error
    assert count(SupportRequest) == 0


def test_a_call_back_keeps_its_window_and_confirms_it_in_words(client, lindenau_bill):
    _invoice, url = lindenau_bill
    done = call_back(client, url, "2026-12-07/evening")
    assert done.status_code == 303
    found = db.session.scalar(select(SupportRequest))
    assert (found.callback_date, found.callback_window) == (date(2026, 12, 7), "evening")
    assert (found.callback_start, found.callback_end) == (datetime(2026, 12, 7, 15, tzinfo=UTC),
                                                          datetime(2026, 12, 7, 18, tzinfo=UTC))
    page = client.get(done.headers["Location"], headers=EN).text
    assert "We will call you at +49341123456 on Monday, 7 December 2026, between 4:00 and 7:00 pm." in page
    de = client.get(done.headers["Location"] + "?lang=de").text
    assert "Wir rufen Sie am Montag, 7. Dezember 2026, zwischen 16:00 und 19:00 Uhr unter +49341123456 an." in de


# --- customers 10: offers that fit the kind of bill; demo data a creditor would recognise ---------------


def test_an_on_account_payment_offers_no_instalments_and_refuses_them(client, app, session):
    creditor = make_creditor("DE", default_locale="en")
    invoice = one_line_bill(creditor, 8900, kind="on_account")
    url = open_bill(client, app, invoice)
    page = client.get(url, headers=EN).text
    assert f'href="{url}/instalments"' not in page and f'href="{url}/instalments/request"' not in page
    assert f'href="{url}/promise"' in page  # paying a little later still fits
    for path in ("/instalments", "/instalments/request"):
        form = client.get(f"{url}{path}", headers=EN).text
        assert "An on-account payment or a prepayment cannot be split into instalments." in form
    refused = client.post(f"{url}/instalments/request", headers=EN, data={
        "csrf_token": CSRF.search(page).group(1), "submission": "x1", "months": "3", "message": "Bitte"})
    assert refused.status_code == 422 and count(Resolution) == 0


def test_a_bill_under_the_least_balance_offers_no_instalments(client, app, session):
    creditor = make_creditor("DE", default_locale="en")
    creditor.plan_min_balance = 0  # the currency's: € 100
    small, large = one_line_bill(creditor, 8900), one_line_bill(creditor, 18650)
    small_url = open_bill(client, app, small)
    assert f'href="{small_url}/instalments"' not in client.get(small_url, headers=EN).text
    assert "Bills under €100.00 cannot be split into instalments." in client.get(
        f"{small_url}/instalments", headers=EN).text
    large_url = open_bill(client, app, large)
    assert f'href="{large_url}/instalments"' in client.get(large_url, headers=EN).text


def test_the_demo_issues_nothing_in_the_future_and_its_monthly_payment_offers_no_instalments(app, session):
    loaded = date(2026, 12, 6)
    with app.test_request_context():
        load_demo(loaded)
        db.session.commit()
    from app.billing.models import Invoice

    bills = list(db.session.scalars(select(Invoice)))
    assert bills and all(bill.issue_date <= loaded for bill in bills)
    numbers = demo_invoice_numbers()
    by_number = {bill.number: bill for bill in bills}
    on_account = by_number[numbers["one_line"][1]]
    assert (on_account.kind, on_account.total) == ("on_account", 8900)
    assert plan_offers(on_account, loaded) == []
    assert plan_offers(by_number[numbers["ten_lines"][1]], loaded)  # Kari's electricity bill may be split
    assert plan_offers(by_number[numbers["overdue_en"][1]], loaded)  # Shamrock spreads arrears from € 30
