"""What agents stumbled on (issue 16, agents 1-9), in Chromium at 320, 360 and 1280 px: enrolment with
the key in groups and the recovery codes shown once; the inbox with each bill's state, amount, next
reminder and clock; a call-back with its window, the call list and a call logged; a dispute's
decision previewed; a paid bill with only what applies; the overview; every page axe-clean and none
wider than the screen."""

from __future__ import annotations

from datetime import timedelta

import pyotp
from playwright.sync_api import expect

from app.backoffice.services import create_agent
from app.core.dates import local_today
from app.creditors.models import Creditor
from app.extensions import db
from app.models import utcnow
from app.support.services import open_request
from tests.e2e.flows import checked

PASSWORD = "correct horse battery staple"
WIDTHS = (320, 360, 1280)


def test_the_back_office_an_agent_needs_at_every_width(live_server, open_page, tmp_path):
    from tests.factories import make_creditor
    from tests.functional.backoffice_data import every_kind

    app = live_server.app
    email = "issue16-agent@example.test"
    with app.test_request_context():
        creditor = make_creditor("NO")
        db.session.commit()
    records = every_kind(app, creditor, tmp_path, name="Kari Nordmann-Johannessen med et langt navn")
    with app.test_request_context():
        creditor = db.session.get(Creditor, records.customer.creditor_id)
        today = local_today("NO", utcnow())
        invoice = db.session.get(type(records.invoice), records.invoice.id)
        call, _ = open_request(invoice, topic="bill_question", message="Ring meg, takk.", contact_method="phone",
                               contact_email=None, contact_phone="+4791234567",
                               callback_date=today + timedelta(days=1), callback_window="evening", upload=None,
                               locale="nb", submission_key="e2e-call", attachment_dir=str(tmp_path), today=today)
        create_agent(email, "Ada Agent", PASSWORD, creditor, "supervisor")
        db.session.commit()
        paths = {
            "the inbox": "/backoffice/",
            "a call-back": f"/backoffice/requests/{call.reference}",
            "the call list": "/backoffice/calls",
            "a dispute": f"/backoffice/resolutions/{records.dispute.reference}",
            "a paid bill": f"/backoffice/invoices/{records.paid.id}",
            "the case": f"/backoffice/customers/{records.customer.id}",
            "the overview": "/backoffice/overview",
            "recovery codes": "/backoffice/account/recovery-codes",
        }
        call_ref = call.reference
        db.session.remove()

    page, _watch = open_page("mobile")
    page.set_viewport_size({"width": 320, "height": 740})
    page.goto(live_server.url + "/backoffice/sign-in")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.get_by_role("button", name="Continue").click()
    key = page.locator("span.mono.key").inner_text()
    assert len(key.split(" ")) == 8 and all(len(group) == 4 for group in key.split(" "))
    checked(page, "enrolment at 320 px")
    page.fill("#code", pyotp.TOTP(key.replace(" ", "")).now())
    page.get_by_role("button", name="Confirm and sign in").click()
    expect(page.locator("h1")).to_have_text("Your recovery codes")
    expect(page.locator("ol.codes li")).to_have_count(10)
    checked(page, "the recovery codes at 320 px")

    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 800})
        for what, path in paths.items():
            page.goto(live_server.url + path)
            checked(page, f"{what} at {width} px")

    page.set_viewport_size({"width": 360, "height": 740})
    page.goto(live_server.url + "/backoffice/")
    row = page.locator("tr", has=page.get_by_role("link", name=records.request.reference))
    expect(row.locator(".tag.state-due")).to_have_text("Due")
    expect(row.get_by_text("left to pay")).to_be_visible()
    expect(row.get_by_text(" left", exact=False).last).to_be_visible()

    page.goto(live_server.url + paths["the call list"])
    expect(page.get_by_text("between 4:00 and 8:00 pm").first).to_be_visible()
    page.get_by_role("link", name=call_ref).click()
    page.get_by_label("No answer").check()
    page.fill("#call-note", "Voicemail")
    page.get_by_role("button", name="Log the call").click()
    expect(page.get_by_text("The call is logged.")).to_be_visible()
    checked(page, "a call logged at 360 px")

    page.goto(live_server.url + paths["a dispute"])
    page.get_by_label("Partly: credit or correct the lines below, the rest stands").check()
    page.locator("input[name^=credit-]").first.fill("10,00")
    page.get_by_role("button", name="Preview the new total").click()
    expect(page.get_by_text("If you send this decision:")).to_be_visible()
    expect(page.get_by_text("Nothing has changed yet and nothing was sent.")).to_be_visible()
    checked(page, "a decision previewed at 360 px")

    page.goto(live_server.url + paths["a paid bill"])
    expect(page.get_by_text("Not offered for this bill:")).to_be_visible()
    expect(page.get_by_text("Pause reminders", exact=True)).to_have_count(0)
