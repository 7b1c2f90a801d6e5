"""Issue 16, customers 1, 2, 6 and 8 in Chromium at 320, 360 and 1280 px: the bill beside the ways to
pay on a desktop, the QR code behind "Show QR code" and the IBAN's copy button beside it on a phone;
a disputed line on hold while the rest is paid; a payment in progress shown on the bill and a waiting
page that moves on by itself, with and without JavaScript; a decline with its reason, "try again" and
the bank transfer; the receipt and its PDF. Each test makes its own bills (the demo's stay as they are);
every page is axe-clean and never scrolls sideways."""

from __future__ import annotations

import re

from playwright.sync_api import expect
from pypdf import PdfReader
from sqlalchemy import select

from app.billing.models import Invoice
from app.creditors.models import Creditor
from app.extensions import db
from tests.e2e.flows import checked
from tests.e2e.test_bill_page import assert_no_sideways_scrolling
from tests.e2e.test_payments import invoice_state, new_bill

PHONE, SMALL, DESKTOP = {"width": 360, "height": 740}, {"width": 320, "height": 640}, {"width": 1280, "height": 800}


def box(page, selector: str) -> dict:
    found = page.locator(selector).first.bounding_box()
    assert found is not None, f"{selector} is not shown"
    return found


def test_the_bill_page_uses_the_width_and_keeps_the_qr_code_for_a_second_screen(live_server, open_page, artifacts):
    url, _invoice_id, _slug = new_bill(live_server, "DE", default_locale="en")
    page, watch = open_page("desktop")
    page.goto(url)

    # 1280 px: the bill on the left, the ways to pay beside it; the PDF in the first screen; the QR code shown
    hero, ways = box(page, ".hero"), box(page, "#how-to-pay")
    assert ways["x"] >= hero["x"] + hero["width"] and abs(ways["y"] - hero["y"]) < 2
    assert box(page, "a[href$='/invoice.pdf']")["y"] < DESKTOP["height"]
    expect(page.locator(".qr-wide img")).to_be_visible()
    expect(page.locator("details.qr-small")).to_be_hidden()
    expect(page.get_by_role("link", name="How to pay")).to_be_hidden()  # the ways are beside: nothing to jump to
    page.screenshot(path=artifacts / "fixes-bill-1280.png", full_page=True)
    checked(page, "the bill page at 1280 px")

    # 360 px: the ways to pay under the headline, "How to pay" goes there, the QR code behind its control
    page.set_viewport_size(PHONE)
    hero, ways = box(page, ".hero"), box(page, "#how-to-pay")
    assert ways["y"] >= hero["y"] + hero["height"]
    assert box(page, "a[href$='/invoice.pdf']")["y"] < PHONE["height"]
    how = page.get_by_role("link", name="How to pay")
    expect(how).to_have_attribute("href", "#how-to-pay")
    expect(page.locator(".qr-wide")).to_be_hidden()
    summary = page.get_by_text("Show QR code")
    expect(summary).to_be_visible()
    expect(page.locator("details.qr-small img")).to_be_hidden()
    # the IBAN's copy button stays beside the IBAN, not under it
    iban = box(page, "dl.transfer div:first-child .mono")
    copy = box(page, "dl.transfer div:first-child button.copy")
    assert copy["x"] >= iban["x"] + iban["width"] - 1 and copy["y"] < iban["y"] + iban["height"]
    checked(page, "the bill page at 360 px")
    summary.click()
    expect(page.locator("details.qr-small img")).to_be_visible()
    page.screenshot(path=artifacts / "fixes-bill-360.png", full_page=True)

    page.set_viewport_size(SMALL)
    checked(page, "the bill page at 320 px")
    assert not watch.page_errors and not page.evaluate("window.__cspViolations")
    # every page the bill leads to fits 320 px too (the self-service forms and the contact form)
    for href in page.locator(".options a").evaluate_all("links => links.map(a => a.href)"):
        for lang in ("en", "de"):
            page.goto(f"{href}?lang={lang}")
            assert_no_sideways_scrolling(page)


def hold_the_undisputed_part(live_server, invoice_id: int) -> None:
    """The creditor does not suggest paying the undisputed part (Lindenau's setting in the demo)."""
    with live_server.app.app_context():
        invoice = db.session.get(Invoice, invoice_id)
        db.session.get(Creditor, invoice.creditor_id).dispute_partial_payable = False
        db.session.commit()
        db.session.remove()


def line_gross(live_server, invoice_id: int) -> int:
    with live_server.app.app_context():
        gross = db.session.scalar(select(Invoice).where(Invoice.id == invoice_id)).lines[0].gross
        db.session.remove()
    return gross


def test_a_disputed_line_then_paying_the_rest_at_320_px(live_server, open_page):
    url, invoice_id, _slug = new_bill(live_server, "DE", default_locale="en")
    hold_the_undisputed_part(live_server, invoice_id)
    page, watch = open_page("mobile")
    page.set_viewport_size(SMALL)
    page.goto(url)
    page.get_by_role("link", name=re.compile("Dispute the bill")).click()
    notice = page.locator("#dispute-payment")
    expect(notice).to_contain_text("you can pay the rest as usual")
    expect(notice).to_contain_text("You may also wait for our answer")
    checked(page, "the dispute form at 320 px")
    page.locator("input[name=scope][value=lines]").check()
    page.locator("input[name=lines]").first.check()
    page.locator("input[name=reason][value=wrong_amount]").check()
    page.locator("textarea[name=message]").fill("The first line is not mine.")
    page.get_by_role("button", name="Send my dispute").click()
    page.goto(url)

    _status, balance, _payments = invoice_state(live_server, invoice_id)
    held = line_gross(live_server, invoice_id)
    heading = page.get_by_role("heading", level=1)
    expect(heading).to_contain_text("To pay now")
    expect(heading).not_to_contain_text(f"{balance / 100:.2f}")
    expect(page.locator(".amount-held")).to_contain_text("On hold")
    expect(page.locator("#pay")).to_contain_text("Pay by bank transfer")  # the rest, by transfer too
    checked(page, "the bill page with a line on hold at 320 px")
    page.get_by_role("button", name=re.compile("test mode")).click()
    page.get_by_role("button", name="Pay successfully").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("received your payment")
    assert invoice_state(live_server, invoice_id)[1] == held  # what is left is what is on hold
    assert not watch.page_errors


def test_a_payment_in_progress_and_its_waiting_page_without_javascript(live_server, open_page):
    """Nothing here evaluates script in the page (JavaScript is off): the same pages are checked with
    axe in the next test."""
    url, invoice_id, _slug = new_bill(live_server, "NO", default_locale="en")
    page, _watch = open_page("mobile", javascript=False)
    page.set_viewport_size(SMALL)
    page.goto(url)
    page.get_by_role("button", name=re.compile("test mode")).click()
    hosted = page.url
    page.get_by_role("button", name="Ask for authentication").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("waiting for confirmation")
    waiting = page.url

    other = page.context.new_page()  # the bill in another tab: the payment shows, nothing to pay again
    other.set_viewport_size(SMALL)
    other.goto(url)
    expect(other.locator("#payment-in-progress")).to_contain_text("A payment is in progress")
    expect(other.get_by_role("button", name=re.compile("test mode"))).to_have_count(0)
    expect(other.locator("#pay")).to_have_count(0)  # nor the bank transfer of the same amount
    other.goto(hosted)  # the customer confirms at their bank (the simulator's page)
    other.get_by_role("button", name="Pay successfully").click()

    # the waiting tab moves on by itself (its meta refresh), to the payment received and its receipt
    expect(page.get_by_role("heading", level=1)).to_contain_text("received your payment", timeout=15_000)
    assert page.url == waiting
    expect(page.get_by_role("link", name="See your receipt")).to_be_visible()
    assert invoice_state(live_server, invoice_id)[2] == 1


def test_the_waiting_page_polls_a_decline_says_why_and_the_receipt(live_server, open_page):
    url, invoice_id, _slug = new_bill(live_server, "DE", default_locale="en")
    page, watch = open_page("mobile")
    page.set_viewport_size(SMALL)
    page.goto(url)
    page.get_by_role("button", name=re.compile("test mode")).click()
    hosted = page.url
    page.get_by_role("button", name="Ask for authentication").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("waiting for confirmation")
    expect(page.get_by_role("status").filter(has_text="updates by itself")).to_be_visible()
    checked(page, "the waiting page at 320 px")
    other = page.context.new_page()
    other.set_viewport_size(SMALL)
    other.goto(url)
    expect(other.locator("#payment-in-progress")).to_contain_text("A payment is in progress")
    checked(other, "the bill page with a payment in progress at 320 px")
    other.goto(hosted)
    other.get_by_role("button", name="Decline the card").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("not completed", timeout=15_000)
    assert any(request.url.endswith("/status") for request in watch.requests), "the page polled its status"

    expect(page.locator(".decline")).to_contain_text("declined the payment")
    expect(page.get_by_role("button", name=re.compile("Try again"))).to_be_visible()
    expect(page.locator("#pay")).to_contain_text("Pay by bank transfer")
    checked(page, "a declined payment at 320 px")
    page.get_by_role("button", name=re.compile("Try again")).click()
    page.get_by_role("button", name="Pay successfully").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("received your payment")
    assert invoice_state(live_server, invoice_id)[1:] == (0, 1)

    page.get_by_role("link", name="See your receipt").click()
    number = page.locator("dd.mono").inner_text()
    assert re.fullmatch(r"[0-9A-Z]{5}-[0-9A-Z]{5}", number)
    checked(page, "the receipt at 320 px")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download the receipt (PDF)").click()
    assert number in PdfReader(download.value.path()).pages[0].extract_text()
    assert not watch.page_errors and not page.evaluate("window.__cspViolations")
