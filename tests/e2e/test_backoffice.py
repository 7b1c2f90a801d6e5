"""The back office in Chromium: an agent signs in with a password and an authenticator code (set
up on the spot), finds the customer's message and dispute in the inbox, answers the message and
decides the dispute (on a desktop: upheld in part with a credit on the disputed line; on a phone:
rejected); the customer then sees the answer, the decision and the credit note on the bill page.
Every page axe-clean at 360 and 1280 px."""

from __future__ import annotations

import re

import pyotp
import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.backoffice.services import create_agent
from app.core.dates import local_today
from app.creditors.models import Creditor
from app.extensions import db
from app.models import utcnow
from app.resolutions import disputes, services
from app.support.services import open_request
from tests.e2e.flows import checked, enrol_and_sign_in
from tests.e2e.test_payments import new_bill

PASSWORD = "correct horse battery staple"


def seed(live_server, tmp_path, email: str):
    """A bill with a customer's message and a dispute, and an agent of its creditor."""
    link, invoice_id, slug = new_bill(live_server, "NO", default_locale="en")
    app = live_server.app
    with app.test_request_context():
        creditor = db.session.scalar(select(Creditor).where(Creditor.slug == slug))
        invoice = db.session.get(services.Invoice, invoice_id)
        today = local_today("NO", utcnow())
        request, _ = open_request(invoice, topic="bill_question", message="Why is it higher than usual?",
                                  contact_method="email", contact_email=None, contact_phone=None,
                                  callback_date=None, callback_window=None, upload=None, locale="en",
                                  submission_key="m", attachment_dir=str(tmp_path), today=today)
        dispute, _ = disputes.open_dispute(invoice, reason="wrong_amount", message="<b>Too high</b>",
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
    secret = page.locator("span.mono.key").inner_text().replace(" ", "")
    page.fill("#code", pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Confirm and sign in").click()
    expect(page.locator("h1")).to_have_text("Your recovery codes")
    page.get_by_role("link", name="I have kept them: go to the inbox").click()
    expect(page.locator("h1")).to_have_text("Inbox")
    checked(page, f"the inbox ({viewport})")

    page.get_by_role("link", name=request_ref).click()
    checked(page, f"a customer's message ({viewport})")
    page.get_by_role("button", name="Assign to me").click()
    expect(page.get_by_text("Assigned to Ola Nordmann")).to_be_visible()
    page.fill("#message", "Your meter reading was estimated; we have corrected it.")
    page.get_by_role("button", name="Send the answer").click()
    expect(page.get_by_text("Your answer is sent.")).to_be_visible()
    expect(page.get_by_text("Your meter reading was estimated; we have corrected it.")).to_be_visible()

    page.get_by_role("link", name="Inbox").first.click()
    page.get_by_role("link", name=dispute_ref).click()
    expect(page.get_by_text("<b>Too high</b>")).to_be_visible()  # the customer's words, as text
    checked(page, f"a dispute ({viewport})")
    if viewport == "desktop":
        page.get_by_label("Partly: credit or correct the lines below, the rest stands").check()
        page.get_by_label("Credit for Service 1").fill("25,00")
        decision = "You are right about the first line; we have credited 25.00."
    else:
        page.get_by_label("Reject: the bill is correct, reminders resume").check()
        decision = "The meter reading of 1 November is right."
    page.fill("#message", decision)
    page.get_by_role("button", name="Send the decision").click()
    expect(page.get_by_text("The decision is sent to the customer.")).to_be_visible()
    page.get_by_role("link", name="Kari Nordmann").first.click()
    expect(page.get_by_role("heading", name="Timeline")).to_be_visible()
    checked(page, f"the customer's case ({viewport})")

    customer, _watch = open_page(viewport)
    customer.goto(link)
    expect(customer.get_by_text("Your meter reading was estimated; we have corrected it.")).to_be_visible()
    expect(customer.get_by_text(decision)).to_be_visible()
    if viewport == "desktop":
        expect(customer.get_by_text("Credit note", exact=False).first).to_be_visible()
    checked(customer, f"the bill with the agent's answers ({viewport})")


def sign_in(page, live_server, email: str) -> None:
    enrol_and_sign_in(page, live_server, email, PASSWORD)
    page.get_by_role("link", name="I have kept them: go to the inbox").click()
    expect(page.locator("h1")).to_have_text("Inbox")


@pytest.mark.parametrize("viewport", ["desktop", "mobile"])
def test_every_back_office_page_is_clear_at_both_widths(live_server, open_page, viewport, tmp_path):
    """An admin's tour of every page with a customer's data, and the letter with a new link."""
    from tests.functional.backoffice_data import every_kind

    app = live_server.app
    email = f"admin-{viewport}@example.test"
    with app.test_request_context():
        from tests.factories import make_creditor

        creditor = make_creditor("NO")
        db.session.commit()
    records = every_kind(app, creditor, tmp_path, message="<img src=x onerror=alert(1)> Hva er dette?")
    with app.test_request_context():
        create_agent(email, "Ada Admin", PASSWORD, db.session.get(Creditor, records.customer.creditor_id), "admin")
        db.session.commit()
        paths = {
            "the case": f"/backoffice/customers/{records.customer.id}",
            "a bill": f"/backoffice/invoices/{records.invoice.id}",
            "a conversation": f"/backoffice/requests/{records.request.reference}",
            "a deferral request": f"/backoffice/resolutions/{records.deferral.reference}",
            "a plan request": f"/backoffice/resolutions/{records.plan.reference}",
            "a bank credit": f"/backoffice/bank/{records.entry.id}",
            "money to pay back": f"/backoffice/payments/{records.overpayment.id}",
            "a dead letter": f"/backoffice/outbox/{records.dead.id}",
            "the overview": "/backoffice/overview",
            "saved answers": "/backoffice/templates",
            "agents": "/backoffice/agents",
            "the audit log": "/backoffice/audit",
            "search": "/backoffice/search?q=Kari",
        }
        db.session.remove()
    page, _watch = open_page(viewport)
    sign_in(page, live_server, email)
    checked(page, f"the inbox with every kind ({viewport})")
    for what, path in paths.items():
        page.goto(live_server.url + path)
        checked(page, f"{what} ({viewport})")
    page.goto(live_server.url + paths["a conversation"])
    expect(page.get_by_text("<img src=x onerror=alert(1)> Hva er dette?")).to_be_visible()  # text, not markup
    page.goto(live_server.url + paths["a bill"])
    page.get_by_text("Send a new link").click()
    page.get_by_label("Letter (print it here)").check()
    page.get_by_role("button", name="Send the new link").click()
    expect(page.get_by_text("Print this letter now")).to_be_visible()
    checked(page, f"a letter with a new link ({viewport})")
    typed = page.locator(".link-out").inner_text()  # the short address a person types from the letter
    assert re.fullmatch(r"127\.0\.0\.1:\d+/k/[0-9A-Z]{5}-[0-9A-Z]{5}", typed), typed
    customer, _watch = open_page(viewport)
    customer.goto("http://" + typed.lower())  # typed in lower case: read all the same
    expect(customer.locator("#h-amount")).to_be_visible()  # the letter's link opens the bill
    expect(customer.get_by_text(records.invoice.number).first).to_be_visible()
