"""The customer's contact details in a real browser: open a link, go to "Your contact details", type a new
e-mail address, receive the code in the local SMTP server (the outbox dispatcher delivers it), type it
back, and see the new address, masked. Axe-clean and without sideways scrolling at phone width."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from app.extensions import db
from app.links.services import get_signer, issue_link
from app.outbox.dispatcher import run_once
from tests.e2e.test_bill_page import assert_axe_clean, assert_no_sideways_scrolling
from tests.factories import make_creditor, make_invoice
from tests.support.smtp import SmtpServer

NEW = "kari.ny@example.no"


def deliver_to(app, recipient: str) -> list:
    """Run the outbox dispatcher against a real SMTP server: what arrived for `recipient`."""
    with SmtpServer() as smtp:
        saved = {key: app.config.get(key) for key in smtp.config()}
        app.config.update(smtp.config())
        try:
            with app.app_context():
                run_once()
                db.session.remove()
        finally:
            app.config.update(saved)
        return [m for m in smtp.messages if m["To"] == recipient]


def test_a_new_email_confirmed_by_the_code_it_receives(live_server, open_page):
    app = live_server.app
    with app.test_request_context():
        creditor = make_creditor("NO", default_locale="en", name="Fjordlys Kontakt AS")
        invoice = make_invoice(creditor, customer={"external_ref": "E2E-CONTACT", "name": "Kari Nordmann",
                                                   "email": "kari@example.test", "phone": "+4791234567",
                                                   "preferred_locale": "en"})
        link = issue_link(invoice, channel="sms", ttl_days=30, signer=get_signer(), base_url=live_server.url,
                          actor="test")
        db.session.commit()
        name, url = creditor.name, link.url
        db.session.remove()

    page, watch = open_page("mobile")
    page.goto(url)
    page.get_by_role("link", name="Your contact details").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your contact details")
    expect(page.locator("#current-email")).to_have_text("ka***@example.test")
    assert "kari@example.test" not in page.content()
    assert_axe_clean(page, "contact details")
    assert_no_sideways_scrolling(page)

    page.get_by_label("New e-mail address").fill(NEW)
    page.get_by_role("button", name="Send a code").first.click()
    expect(page.get_by_text("We sent a 6-digit code to ka***@example.no")).to_be_visible()
    expect(page.locator("#current-email")).to_have_text("ka***@example.test")  # not before the code

    (mail,) = deliver_to(app, NEW)
    text = mail.get_body(("plain",)).get_content()
    assert name in mail["Subject"] and "http" not in text
    code = re.search(r"\b(\d{6})\b", mail["Subject"]).group(1)

    page.get_by_label("Code").fill(code)
    assert_axe_clean(page, "contact details with a code to type")
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_text("Your new e-mail address is confirmed")).to_be_visible()
    expect(page.locator("#current-email")).to_have_text("ka***@example.no")
    assert NEW not in page.content()
    assert watch.page_errors == [] and page.evaluate("window.__cspViolations") == []
    assert_no_sideways_scrolling(page)
