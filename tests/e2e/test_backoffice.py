"""The back office in Chromium: an agent signs in with a password and an authenticator code (set
up on the spot), answers a customer's message and rejects a dispute; the customer then sees both
on the bill page. Every page axe-clean at 360 and 1280 px."""

from __future__ import annotations

import pyotp
import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.backoffice.services import create_agent
from app.creditors.models import Creditor
from app.extensions import db
from app.models import utcnow
from app.portal.services import local_today
from app.resolutions import services as resolutions
from app.support.services import open_request
from tests.e2e.test_payments import new_bill
from tests.e2e.flows import checked

PASSWORD = "correct horse battery staple"


def seed(live_server, tmp_path, email: str):
    """A bill with a customer's message and a dispute, and an agent of its creditor."""
    link, invoice_id, slug = new_bill(live_server, "NO", default_locale="en")
    app = live_server.app
    with app.test_request_context():
        creditor = db.session.scalar(select(Creditor).where(Creditor.slug == slug))
        invoice = db.session.get(resolutions.Invoice, invoice_id)
        today = local_today("NO", utcnow())
        request, _ = open_request(invoice, topic="bill_question", message="Why is it higher than usual?",
                                  contact_method="email", contact_email=None, contact_phone=None,
                                  callback_date=None, callback_window=None, upload=None, locale="en",
                                  submission_key="m", attachment_dir=str(tmp_path), today=today)
        dispute, _ = resolutions.open_dispute(invoice, reason="wrong_amount", message="<b>Too high</b>",
                                              line_ids=None, upload=None, attachment_dir=str(tmp_path), locale="en",
                                              submission_key="d", today=today)
        create_agent(email, "Ola Nordmann", PASSWORD, creditor, "agent")
        db.session.commit()
        refs = request.reference, dispute.reference
        db.session.remove()
    return link, refs


@pytest.mark.parametrize("viewport", ["desktop", "mobile"])
def test_an_agent_answers_and_the_customer_sees_it(live_server, open_page, viewport, tmp_path):
    link, (request_ref, dispute_ref) = seed(live_server, tmp_path, f"ola-{viewport}@example.test")
    page, _watch = open_page(viewport)
    page.goto(live_server.url + "/backoffice/")
    expect(page.locator("h1")).to_have_text("Sign in")
    checked(page, f"back-office sign-in ({viewport})")
    page.fill("#email", f"ola-{viewport}@example.test")
    page.fill("#password", PASSWORD)
    page.get_by_role("button", name="Continue").click()
    expect(page.locator("h1")).to_have_text("Set up the second step")
    checked(page, f"second-factor enrolment ({viewport})")
    secret = page.locator("span.mono").inner_text()
    page.fill("#code", pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Confirm and sign in").click()
    expect(page.locator("h1")).to_have_text("Waiting for an answer")
    checked(page, f"back-office start page ({viewport})")

    page.get_by_role("link", name=request_ref).click()  # its accessible name starts with the reference
    checked(page, f"a customer's message ({viewport})")
    page.fill("#message", "Your meter reading was estimated; we have corrected it.")
    page.get_by_role("button", name="Send the answer").click()
    expect(page.get_by_text("Your meter reading was estimated; we have corrected it.")).to_be_visible()

    page.goto(live_server.url + "/backoffice/")
    page.get_by_role("link", name=dispute_ref).click()
    expect(page.get_by_text("<b>Too high</b>")).to_be_visible()  # the customer's words, as text
    checked(page, f"a dispute ({viewport})")
    page.get_by_label("Reject: the bill is correct, reminders resume").check()
    page.fill("#message", "The meter reading of 1 November is right.")
    page.get_by_role("button", name="Send the decision").click()
    expect(page.get_by_text("The meter reading of 1 November is right.")).to_be_visible()

    customer, _watch = open_page(viewport)
    customer.goto(link)
    expect(customer.get_by_text("Your meter reading was estimated; we have corrected it.")).to_be_visible()
    expect(customer.get_by_text("The meter reading of 1 November is right.")).to_be_visible()
    checked(customer, f"the bill with the agent's answers ({viewport})")
