"""Issue 16, customers 3, 4 and 5 in Chromium at 320, 360 and 1280 px: the instalment offers with
their first instalment apart, the cost of credit and the APR; the promised date on the status line
and what a promise and more time each mean; the call-back times of the creditor's opening hours,
in German. Every page axe-clean and without sideways scrolling."""

from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.sync_api import expect

from app.core.dates import local_today
from app.extensions import db
from app.links.services import get_signer, issue_link
from app.models import utcnow
from app.resolutions import promises
from tests.e2e.test_bill_page import assert_axe_clean, assert_no_sideways_scrolling
from tests.e2e.test_dunning import page_at
from tests.factories import invoice_payload, make_creditor

WIDTHS = (320, 360, 1280)


def one_line(creditor, amount: int, number: str) -> dict:
    today = local_today(creditor.country, utcnow())
    payload = invoice_payload(creditor.currency, number=number, today=today)
    payload.update(lines=[{"description": "Strom und Wasser", "quantity": "1", "unit_price": amount, "vat_rate": 0}],
                   total=amount, due_date=(today + timedelta(days=10)).isoformat())
    return payload


@pytest.fixture(scope="module")
def bills(live_server):
    """A German utility's two bills: one to split (186,50 €), one with a promise to pay; their links."""
    from app.billing.services import import_invoice

    app = live_server.app
    with app.test_request_context():
        creditor = make_creditor("DE", default_locale="en", callback_hours="mon-fri 07:00-19:00, sat 09:00-13:00")
        creditor.plan_max_months, creditor.plan_min_instalment, creditor.deferral_fee = 3, 1000, 500
        split, _ = import_invoice(creditor, one_line(creditor, 18650, "E2E-C3-1"), actor="test")
        promised, _ = import_invoice(creditor, one_line(creditor, 18650, "E2E-C4-1"), actor="test")
        today = local_today("DE", utcnow())
        promises.make_promise(promised, today + timedelta(days=7), locale="en", submission_key="e2e", today=today)
        links = [issue_link(bill, signer=get_signer(), base_url=live_server.url, actor="test", channel="sms",
                            ttl_days=30).url for bill in (split, promised)]
        db.session.commit()
        db.session.remove()
    return links


def checked(page, what: str) -> None:
    assert_no_sideways_scrolling(page)
    assert_axe_clean(page, what)


@pytest.mark.parametrize("width", WIDTHS)
def test_offers_promises_and_call_backs_at_every_width(browser, live_server, bills, width):
    split, promised = bills
    page = page_at(browser, width)
    try:
        page.goto(split)
        bill = page.url.split("?")[0]
        options = page.locator("ul.options")
        expect(options).to_contain_text("Free, and the due date stays as it is")
        expect(options).to_contain_text("A new due date for a fee of")
        checked(page, f"the bill page's options at {width} px")

        page.goto(f"{bill}/instalments")
        expect(page.get_by_text("3 instalments: first €62.18, then 2 × €62.16")).to_be_visible()
        expect(page.locator("form")).to_contain_text("effective annual rate 0.0")
        checked(page, f"the instalment offers at {width} px")
        page.get_by_label("3 instalments: first €62.18, then 2 × €62.16").check()
        page.get_by_role("button", name="See the plan").click()
        expect(page.locator("dl.totals")).to_contain_text("Total cost of credit")
        expect(page.locator("dl.totals")).to_contain_text("Effective annual rate")
        checked(page, f"the plan to accept at {width} px")

        page.goto(f"{bill}/contact?lang=de")
        page.get_by_label("Rufen Sie mich zurück").check()
        slot = page.locator("#callback_slot")
        expect(slot).to_be_visible()
        texts = slot.locator("option").all_inner_texts()
        assert len(texts) > 5 and all("Sonntag" not in text for text in texts)
        assert any(text.endswith("zwischen 16:00 und 19:00 Uhr") for text in texts), texts
        checked(page, f"the call-back times in German at {width} px")

        page.goto(f"{promised}")
        status = page.get_by_role("status").first
        expect(status).to_contain_text("Sie haben die Zahlung bis")
        expect(status).not_to_contain_text("Fällig in")
        checked(page, f"the promised date on the status line at {width} px")
    finally:
        page.context.close()
