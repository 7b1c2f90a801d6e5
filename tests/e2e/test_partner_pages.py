"""Issue 16 in Chromium at 320, 360 and 1280 px, axe-clean, without sideways scrolling: the bill page
after the hand-off (what was handed over, the partner's figure), a bill's address opened without a grant
(the creditor's page with its contacts and "send me a new link"), the partner's reports in the back
office, and the way back from the preview of the bill page."""

from __future__ import annotations

from datetime import timedelta

from playwright.sync_api import expect
from sqlalchemy import select

from app.backoffice.services import create_agent
from app.billing.models import Invoice
from app.billing.services import record_reminder
from app.core.dates import local_today
from app.creditors.models import Creditor
from app.debt_collection.models import Case
from app.debt_collection.partners import add_partner, set_policy
from app.debt_collection.services import PartnerEvent, apply_event, hand_off
from app.extensions import db
from app.models import utcnow
from tests.e2e.flows import checked
from tests.e2e.test_backoffice import sign_in
from tests.e2e.test_payments import new_bill

WIDTHS = (320, 360, 1280)


def today_for(country):
    return local_today(country, utcnow())


def at_every_width(page, what: str) -> None:
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 800})
        checked(page, f"{what} at {width} px")


def report(app, invoice_id: int, *events: PartnerEvent) -> None:
    with app.test_request_context():
        case = db.session.scalar(select(Case).where(Case.invoice_id == invoice_id))
        for event in events:
            apply_event(case, event)
        db.session.commit()
        db.session.remove()


def test_the_partner_pages_and_the_pages_that_used_to_end_nowhere(live_server, open_page):
    link, invoice_id, slug = new_bill(live_server, "NO", default_locale="en")
    app = live_server.app
    email = "agent-partner@example.test"
    with app.test_request_context():
        invoice = db.session.get(Invoice, invoice_id)
        made = add_partner("collect-p4", "Nord Collect AS", "https://collect.example/cases",
                           phone="+47 22 00 00 00", email="kunde@nordcollect.example")
        set_policy(invoice.creditor, made.partner, days_past_due=5, days_after_final_reminder=5)
        invoice.due_date = invoice.issue_date
        record_reminder(invoice, channel="letter", sent_at=utcnow() - timedelta(days=6), final=True, actor="api")
        create_agent(email, "Ola Nordmann", "correct horse battery staple",
                     db.session.scalar(select(Creditor).where(Creditor.slug == slug)), "agent")
        db.session.commit()
        hand_off(invoice_id, actor="test", today_for=today_for)
        db.session.commit()
        owed, public_id, number = invoice.balance, invoice.public_id, invoice.number
        db.session.remove()
    report(app, invoice_id, PartnerEvent("c1", "costs_added", costs=35000, claim=owed + 35000, note="Inkassosalær"))

    customer, _watch = open_page("mobile")
    customer.goto(link)
    expect(customer.get_by_text("Handed over to Nord Collect AS on", exact=False)).to_be_visible()
    expect(customer.get_by_text("Nord Collect AS's figure on", exact=False)).to_be_visible()
    at_every_width(customer, "the bill after the hand-off, with the partner's figure")

    elsewhere, _watch = open_page("mobile")  # another device: no grant for the bill
    elsewhere.goto(live_server.url + f"/b/{public_id}")
    expect(elsewhere.get_by_role("button", name="Send me a new link")).to_be_visible()
    expect(elsewhere.get_by_text("A bookmark, another device or an older link does not open it.",
                                 exact=False)).to_be_visible()
    at_every_width(elsewhere, "a bookmarked bill without a grant")

    report(app, invoice_id,
           PartnerEvent("k1", "contact_updated", contact={"email": "kari.ny@example.test"}),
           PartnerEvent("m1", "message", message="Skyldner ber om kopi av kontrakten. " * 12),
           PartnerEvent("r1", "case_returned", reason="customer_disputes"))
    agent, _watch = open_page("desktop")
    sign_in(agent, live_server, email)
    agent.goto(live_server.url + "/backoffice/?kind=partner")
    expect(agent.get_by_role("row").filter(has_text="The bill was given back")).to_be_visible()
    at_every_width(agent, "the inbox with the partner's reports")
    agent.goto(live_server.url + f"/backoffice/invoices/{invoice_id}")
    expect(agent.get_by_role("heading", name="What the collection partner reported")).to_be_visible()
    expect(agent.get_by_text("The collection partner gave the bill back: the customer disputes it.").first) \
        .to_be_visible()
    at_every_width(agent, "the bill with the partner's reports")

    agent.get_by_role("link", name="See the bill as the customer sees it").click()
    expect(agent.get_by_text("Preview for the back office", exact=False)).to_be_visible()
    at_every_width(agent, "the preview of the bill page")
    agent.get_by_role("link", name=f"Back to bill {number}").click()
    expect(agent).to_have_url(live_server.url + f"/backoffice/invoices/{invoice_id}")
