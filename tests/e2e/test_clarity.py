""""Was this bill clear?" in Chromium, without JavaScript (the form needs none) and at phone width: the
tap and the comment reach the database, the thank-you page leads back, every page is axe-clean."""

from __future__ import annotations

from playwright.sync_api import expect
from sqlalchemy import select

from app.analytics.models import ClarityAnswer
from app.extensions import db
from app.support.models import SupportMessage, SupportRequest
from tests.e2e.flows import checked
from tests.e2e.test_payments import new_bill


def answers(live_server, invoice_id: int) -> list[tuple]:
    with live_server.app.app_context():
        found = [(a.place, a.clear, a.comment, a.support_request_id) for a in db.session.scalars(
            select(ClarityAnswer).where(ClarityAnswer.invoice_id == invoice_id))]
        db.session.remove()
    return found


def test_a_customer_says_the_bill_was_not_clear_and_why_without_javascript(live_server, open_page):
    url, invoice_id, _slug = new_bill(live_server)
    page, _watch = open_page("mobile", javascript=False)  # the form needs no script
    page.goto(url)
    expect(page.get_by_role("heading", name="Was this bill clear?")).to_be_visible()
    page.get_by_label("Anything we could say more clearly? (optional)").fill("Which months is the fee for?")
    page.get_by_role("button", name="No, it was not").click()
    expect(page.get_by_role("heading", name="Thank you for telling us")).to_be_visible()
    [(place, clear, comment, request_id)] = answers(live_server, invoice_id)
    assert (place, clear, comment) == ("bill", False, "Which months is the fee for?")
    with live_server.app.app_context():
        request = db.session.get(SupportRequest, request_id)
        assert request.invoice_id == invoice_id
        assert db.session.scalar(select(SupportMessage.body).where(SupportMessage.request_id == request_id)) == \
            "Which months is the fee for?"
        db.session.remove()

    # With script on (axe needs it), at phone width: one tap, no comment, replaces the answer.
    page, _watch = open_page("mobile")
    page.goto(url)
    expect(page.get_by_role("heading", name="Was this bill clear?")).to_be_visible()
    checked(page, "the bill page with the clarity question")
    page.get_by_role("button", name="Yes, it was clear").click()
    expect(page.get_by_role("heading", name="Thank you for telling us")).to_be_visible()
    checked(page, "the thank-you page")
    assert [(p, c) for p, c, _comment, _r in answers(live_server, invoice_id)] == [("bill", True)]
    page.get_by_role("link", name="Back to the bill").click()
    expect(page.get_by_role("heading", name="Was this bill clear?")).to_be_visible()
