"""The reminder dialogue in a real browser: the run writes a reminder, the outbox dispatcher delivers it as
an SMS to the local Twilio server, the customer opens its link in Chromium, sees what happens next, pays
with the test-mode simulator, and the next step never goes out (later runs send nothing). The bill
page's "what happens next" and the list of the customer's other bills at 320, 360 and 1280 px,
axe-clean and without sideways scrolling; the page of an expired link with "send me a new link"."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy import func, select

from app.billing.models import Invoice, InvoiceStatus
from app.core.dates import local_today
from app.dunning import services, worker
from app.dunning.calendar import next_working_day
from app.dunning.models import Notice
from app.dunning.settings import save_settings
from app.extensions import db
from app.links.models import AccessLink
from app.links.services import get_signer, issue_link
from app.models import utcnow
from app.outbox.dispatcher import run_once
from app.outbox.models import OutboxMessage
from tests.e2e.test_bill_page import assert_axe_clean, assert_no_sideways_scrolling, expected_date, main_text
from tests.factories import make_creditor, make_invoice
from tests.support.twilio_server import TwilioServer

WIDTHS = (320, 360, 1280)


def creditor_with_plan(app):
    """A Norwegian creditor (of its own: the demo bills stay as the other tests read them) with the
    shipped plan, its texts in English, Norwegian and German."""
    creditor = make_creditor("NO", default_locale="en")
    save_settings(creditor, languages=["en", "nb", "de"])
    services.save_plan(creditor, services.shipped_plan("NO"), actor="test", today=local_today("NO", utcnow()))
    return creditor


def customer(ref: str = "C-1", **changes) -> dict:
    data = {"external_ref": ref, "name": "Kari Nordmann", "email": "kari@example.test", "phone": "+4791234567",
            "preferred_locale": "en",
            "address": {"line1": "Storgata 1", "postcode": "0150", "city": "Oslo", "country": "NO"}}
    data.update(changes)
    return data


def test_the_customer_opens_the_sms_reminder_pays_and_the_next_step_never_goes(live_server, open_page):
    app = live_server.app
    today = local_today("NO", utcnow())
    day = next_working_day(today + timedelta(days=1), "NO")  # the run's day: SMS go on working days only
    due = day - timedelta(days=14)  # the reminder (with its fee) is due on `day`
    with app.test_request_context():
        creditor = creditor_with_plan(app)
        invoice = make_invoice(creditor, lines=2, issue_date=(due - timedelta(days=14)).isoformat(),
                               due_date=due.isoformat(), customer=customer())
        db.session.commit()
        invoice_id, slug = invoice.id, creditor.slug
        report = worker.run(on=day, slug=slug)
        assert (report.messages, report.by_channel) == (1, {"sms": 1})
        db.session.remove()

    with TwilioServer() as twilio:  # the dispatcher delivers it, as `flask outbox run` does
        saved = {key: app.config.get(key) for key in twilio.config()}
        app.config.update(twilio.config())
        try:
            with app.app_context():
                run_once()
                db.session.remove()
        finally:
            app.config.update(saved)
        (sms,) = [m for m in twilio.messages if m["to"] == "+4791234567"]
    body = sms["body"]
    assert "reminder fee" in body.lower() and "NOK" in body
    link = re.search(r"https?://\S+/l/[\w.-]+", body).group(0)
    assert link.startswith(live_server.url)

    page, watch = open_page("mobile")
    response = page.goto(link)
    assert response is not None and response.status == 200 and "/b/" in page.url
    next_section = page.locator("section", has=page.get_by_role("heading", name="What happens next"))
    expect(next_section).to_contain_text(f"Please pay by {expected_date(day + timedelta(days=14), 'en')}")
    assert_axe_clean(page, "the bill page opened from the SMS reminder")
    assert_no_sideways_scrolling(page)

    page.get_by_role("button", name=re.compile("test mode")).click()
    page.get_by_role("button", name="Pay successfully").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("received your payment")
    page.get_by_role("link", name=re.compile("Back to the bill")).click()
    expect(page.get_by_role("heading", name="What happens next")).to_have_count(0)  # nothing more will happen
    assert not watch.page_errors

    with app.app_context():
        assert db.session.get(Invoice, invoice_id).status == InvoiceStatus.PAID
        outbox_before = db.session.scalar(select(func.count()).select_from(OutboxMessage))
        for later in (day + timedelta(days=15), day + timedelta(days=30), day + timedelta(days=60)):
            later_report = worker.run(on=later, slug=slug)
            assert later_report.messages == 0 and later_report.notices == 0
        positions = list(db.session.scalars(select(Notice.position).where(Notice.invoice_id == invoice_id)))
        assert positions == [2]  # the reminder, and never the collection warning
        assert db.session.scalar(select(func.count()).select_from(OutboxMessage)) == outbox_before
        db.session.remove()


@pytest.fixture(scope="module")
def two_bills(live_server):
    """A customer with two open bills of a creditor whose plan runs: a link to the first (which opens both)."""
    app = live_server.app
    today = local_today("NO", utcnow())
    with app.test_request_context():
        creditor = creditor_with_plan(app)
        plan = services.default_plan(creditor.id)
        first = make_invoice(creditor, lines=3, issue_date=(today - timedelta(days=10)).isoformat(),
                             due_date=(today + timedelta(days=4)).isoformat(), customer=customer())
        second = make_invoice(creditor, lines=1, issue_date=(today - timedelta(days=3)).isoformat(),
                              due_date=(today + timedelta(days=25)).isoformat(), customer=customer())
        for invoice in (first, second):
            services.assign_plan(invoice, plan, actor="test", today=today)
        issued = issue_link(first, channel="sms", ttl_days=30, signer=get_signer(), base_url=live_server.url,
                            actor="test")
        expired = issue_link(second, channel="sms", ttl_days=30, signer=get_signer(), base_url=live_server.url,
                             actor="test")
        db.session.get(AccessLink, expired.link.id).expires_at = utcnow() - timedelta(minutes=5)
        db.session.commit()
        found = issued.url, expired.url, second.number, first.due_date
        db.session.remove()
    return found


def page_at(browser, width: int):
    context = browser.new_context(viewport={"width": width, "height": 800}, locale="en-GB",
                                  is_mobile=width < 800, has_touch=width < 800)
    page = context.new_page()
    page.set_default_timeout(10_000)
    return page


@pytest.mark.parametrize("width", WIDTHS)
def test_what_happens_next_and_the_other_bills_at_every_width(browser, live_server, two_bills, artifacts, width):
    link, _expired, other_number, due = two_bills
    page = page_at(browser, width)
    try:
        assert page.goto(link).status == 200
        heading = page.get_by_role("heading", name="What happens next")
        expect(heading).to_be_visible()
        text = main_text(page)
        pay_by = expected_date(due + timedelta(days=13), "en")
        assert f"If this is not paid by {pay_by}, a reminder with a fee of" in text
        others = page.locator("section", has=page.get_by_role("heading", name=re.compile("Your other open bills")))
        expect(others).to_contain_text(f"Invoice {other_number}")
        page.screenshot(path=artifacts / f"what-next-{width}.png", full_page=True)
        assert_no_sideways_scrolling(page)
        assert_axe_clean(page, f"the bill page's what happens next at {width} px")
        others.get_by_role("link").first.click()  # the other bill opens without another link
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        assert other_number in main_text(page)
        assert_no_sideways_scrolling(page)
    finally:
        page.context.close()


@pytest.mark.parametrize("width", (320, 1280))
def test_an_expired_link_offers_a_new_one(browser, live_server, two_bills, width):
    _link, expired, _number, _due = two_bills
    page = page_at(browser, width)
    try:
        assert page.goto(expired).status == 404
        expect(page.get_by_role("heading", level=1)).to_have_text("This link cannot be used")
        assert_no_sideways_scrolling(page)
        assert_axe_clean(page, f"the page of an expired link at {width} px")
        page.get_by_role("button", name="Send me a new link").click()
        expect(page.get_by_role("status")).to_contain_text("a new link is on its way")
        assert "+4791234567" not in main_text(page) and "kari@example.test" not in main_text(page)
        assert_axe_clean(page, f"the answer to 'send me a new link' at {width} px")
    finally:
        page.context.close()
