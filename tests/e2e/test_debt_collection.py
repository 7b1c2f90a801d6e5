"""The bill page at each stage of debt collection, in Chromium at 360 and 1280 px, axe-clean: handed
off (who handles it now, how to reach them, no payment offered), acknowledged (the partner's
reference and page), and recalled (the creditor's bill page again, payable)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.billing.models import Invoice
from app.billing.services import record_reminder
from app.core.dates import local_today
from app.debt_collection.models import Case
from app.debt_collection.partners import add_partner, set_policy
from app.debt_collection.services import acknowledge, hand_off, recall
from app.extensions import db
from app.models import utcnow
from tests.e2e.flows import checked
from tests.e2e.test_payments import new_bill


def today_for(country):
    return local_today(country, utcnow())


@pytest.mark.parametrize("viewport", ["desktop", "mobile"])
def test_the_bill_page_through_hand_off_acknowledgement_and_recall(live_server, open_page, viewport):
    link, invoice_id, _slug = new_bill(live_server, "NO", default_locale="en")
    app = live_server.app
    with app.test_request_context():
        invoice = db.session.get(Invoice, invoice_id)
        made = add_partner(f"collect-{viewport}", "Nord Collect AS", "https://collect.example/cases",
                           phone="+47 22 00 00 00", email="kunde@nordcollect.example",
                           case_page_url="https://nordcollect.example/sak/{reference}")
        set_policy(invoice.creditor, made.partner, days_past_due=5, days_after_final_reminder=5)
        invoice.due_date = invoice.issue_date  # long overdue
        # the final reminder after the due date (one before it is refused), and the policy's days after it
        record_reminder(invoice, channel="letter", sent_at=utcnow() - timedelta(days=6), final=True, actor="api")
        db.session.commit()
        hand_off(invoice_id, actor="test", today_for=today_for)
        db.session.commit()
        db.session.remove()
    page, _watch = open_page(viewport)
    page.goto(link)
    expect(page.get_by_role("heading", name="Nord Collect AS now handles this bill")).to_be_visible()
    expect(page.get_by_text("+47 22 00 00 00")).to_be_visible()
    expect(page.get_by_role("heading", name="Pay by bank transfer")).to_have_count(0)
    checked(page, f"the bill in debt collection ({viewport})")

    with app.test_request_context():
        case = db.session.scalar(select(Case).where(Case.invoice_id == invoice_id))
        acknowledge(case, reference="NC-4711")
        db.session.commit()
        db.session.remove()
    page.reload()
    expect(page.get_by_text("Their reference for your case: NC-4711")).to_be_visible()
    expect(page.get_by_role("link", name="See your case at Nord Collect AS")).to_have_attribute(
        "href", "https://nordcollect.example/sak/NC-4711")
    checked(page, f"the bill with the partner's reference ({viewport})")

    with app.test_request_context():
        case = db.session.scalar(select(Case).where(Case.invoice_id == invoice_id))
        recall(case, actor="test", reason="Settled with us")
        db.session.commit()
        db.session.remove()
    page.reload()
    expect(page.get_by_role("heading", name="Nord Collect AS now handles this bill")).to_have_count(0)
    expect(page.get_by_role("heading", name="Pay by bank transfer")).to_be_visible()
    checked(page, f"the bill after the recall ({viewport})")
