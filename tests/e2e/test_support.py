"""Contact support from a bill link, in Chromium, in every language: keyboard only, a PDF attached,
the reference and the thread; errors next to their fields; every page axe-clean at 360 and 1280 px;
the confirmation and the support desk's notification delivered over SMTP."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.extensions import db
from app.support.models import SupportRequest
from tests.e2e.test_payments import new_bill
from tests.e2e.test_resolutions import CASES, PDF, checked, deliver, t


def open_contact(live_server, open_page, locale, viewport):
    link, invoice_id, _slug = new_bill(live_server, "NO", default_locale="en")
    page, _watch = open_page(viewport, language=locale)
    page.goto(link)
    page.goto(page.url.split("?")[0] + f"?lang={locale}")
    contact = page.get_by_role("link", name=t(live_server.app, locale, "Write to us"))
    contact.focus()
    with page.expect_navigation():
        page.keyboard.press("Enter")
    expect(page.locator("h1")).to_have_text(t(live_server.app, locale, "Contact us"))
    return page, invoice_id


@pytest.mark.parametrize(("locale", "viewport"), CASES)
def test_contact_support_with_an_attachment(live_server, open_page, locale, viewport, tmp_path):
    page, invoice_id = open_contact(live_server, open_page, locale, viewport)
    checked(page, f"contact form ({locale}, {viewport})")
    # keyboard only: the first topic, then the message, then send
    page.locator("#topic-1").focus()
    page.keyboard.press("Space")
    page.locator("#message").focus()
    page.keyboard.type("Hvorfor er regningen høyere enn vanlig?")
    proof = tmp_path / "maaler.pdf"
    proof.write_bytes(PDF)
    page.set_input_files("#attachment", str(proof))
    page.get_by_role("button", name=t(live_server.app, locale, "Send")).focus()
    with page.expect_navigation():
        page.keyboard.press("Enter")
    expect(page.locator("h1")).to_have_text(t(live_server.app, locale, "Thank you, we have your message"))
    checked(page, f"contact confirmation ({locale}, {viewport})")
    with live_server.app.app_context():
        request = db.session.scalar(select(SupportRequest).where(SupportRequest.invoice_id == invoice_id))
        reference, attachment = request.reference, request.messages[0].attachment.filename
        db.session.remove()
    expect(page.get_by_text(reference).first).to_be_visible()
    expect(page.get_by_role("link", name=attachment)).to_be_visible()
    page.get_by_role("link", name=t(live_server.app, locale, "Back to the bill")).first.click()
    expect(page.get_by_role("heading", name=t(live_server.app, locale, "Your messages"))).to_be_visible()
    checked(page, f"bill with a conversation ({locale}, {viewport})")
    mails = deliver(live_server, invoice_id)
    assert sorted(m["To"] for m in mails) == ["help@example.test", "kari@example.test"]


@pytest.mark.parametrize(("locale", "viewport"), [("de", "mobile"), ("nb", "desktop")])
def test_contact_errors_are_shown_next_to_the_fields(live_server, open_page, locale, viewport):
    page, _invoice_id = open_contact(live_server, open_page, locale, viewport)
    page.get_by_label(t(live_server.app, locale, "Call me back")).check()
    page.fill("#phone", "")
    page.get_by_role("button", name=t(live_server.app, locale, "Send")).click()
    expect(page.locator("#message-error")).to_have_text(t(live_server.app, locale, "Please write your message."))
    expect(page.locator("#phone-error")).to_be_visible()
    expect(page.locator("#topic-error")).to_be_visible()
    assert page.locator("#message").get_attribute("aria-invalid") == "true"
    checked(page, f"contact form with errors ({locale}, {viewport})")
