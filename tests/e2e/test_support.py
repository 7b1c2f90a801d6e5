"""Contact support from a bill link, in Chromium, in every language at 360 and 1280 px: keyboard
only, a PDF attached, the reference, writing again and the thread on the bill page; errors next to
their fields; the form without JavaScript. Every page is checked with axe and for sideways
scrolling; the confirmation and the support desk's notifications are delivered over SMTP.

Each test makes its own creditor and bill in the live server's database (the demo bills stay as
they are for the other tests) and follows the signed link like a customer."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.extensions import db
from app.support.models import SupportRequest
from tests.e2e.flows import PDF, checked, deliver, t
from tests.e2e.test_payments import new_bill

CASES = [(locale, viewport) for viewport in ("mobile", "desktop") for locale in ("en", "nb", "de")]






def open_contact(live_server, open_page, locale: str, viewport: str, *, javascript: bool = True):
    """A fresh bill opened through its link, then its contact form in `locale`: (page, invoice id)."""
    link, invoice_id, _slug = new_bill(live_server, "NO", default_locale="en")
    page, _watch = open_page(viewport, language=locale, javascript=javascript)
    page.goto(link)
    page.goto(f"{page.url.split('?')[0]}/contact?lang={locale}")
    expect(page.locator("h1")).to_have_text(t(live_server.app, locale, "Contact us"))
    return page, invoice_id


def focused(page) -> str:
    return page.evaluate("document.activeElement.id")


def request_of(live_server, invoice_id: int) -> tuple[str, list[tuple[str, str | None]]]:
    """The bill's contact request: its reference, and (author, attachment's file name) of each message."""
    with live_server.app.app_context():
        request = db.session.scalar(select(SupportRequest).where(SupportRequest.invoice_id == invoice_id))
        found = request.reference, [(m.author, m.attachment.filename if m.attachment else None)
                                    for m in request.messages]
        db.session.remove()
    return found




@pytest.mark.parametrize(("locale", "viewport"), CASES)
def test_contact_support_with_the_keyboard_and_a_pdf(live_server, open_page, locale, viewport, tmp_path):
    app = live_server.app
    page, invoice_id = open_contact(live_server, open_page, locale, viewport)
    checked(page, f"contact form ({locale}, {viewport})")
    expect(page.locator("#phone")).to_be_hidden()  # only with "Call me back"

    # keyboard only: the first topic, the message, past the pre-filled answer by e-mail, the file, send
    page.locator("#topic-1").focus()
    page.keyboard.press("Space")
    page.keyboard.press("Tab")
    assert focused(page) == "message"
    page.keyboard.type("Hvorfor er regningen høyere enn vanlig?")
    page.keyboard.press("Tab")
    assert focused(page) == "contact_method-1"
    page.keyboard.press("Tab")
    assert focused(page) == "email"
    page.keyboard.press("Tab")
    assert focused(page) == "attachment"  # the call-back fields are hidden, so skipped
    proof = tmp_path / "maaler.pdf"
    proof.write_bytes(PDF)
    page.set_input_files("#attachment", str(proof))
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name=t(app, locale, "Send"))).to_be_focused()
    with page.expect_navigation():
        page.keyboard.press("Enter")

    expect(page.locator("h1")).to_have_text(t(app, locale, "Thank you, we have your message"))
    reference, messages = request_of(live_server, invoice_id)
    assert messages == [("customer", "maaler.pdf")]
    expect(page.get_by_role("status")).to_contain_text(t(app, locale, "Your reference is %(reference)s.",
                                                         reference=reference))
    expect(page.get_by_role("link", name="maaler.pdf")).to_be_visible()
    checked(page, f"contact confirmation ({locale}, {viewport})")

    page.locator("#message").focus()
    page.keyboard.type("Måleren viser 12345.")
    page.get_by_role("button", name=t(app, locale, "Send")).focus()
    with page.expect_navigation():
        page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_have_text(t(app, locale, "Your message has been sent."))
    expect(page.locator("#latest .body")).to_have_text("Måleren viser 12345.")
    assert len(request_of(live_server, invoice_id)[1]) == 2
    checked(page, f"conversation ({locale}, {viewport})")

    page.get_by_role("link", name=t(app, locale, "Back to the bill")).first.click()
    expect(page.get_by_role("heading", name=t(app, locale, "Your messages"))).to_be_visible()
    expect(page.get_by_text("Måleren viser 12345.")).to_be_visible()
    checked(page, f"bill with a conversation ({locale}, {viewport})")

    mails = deliver(live_server, invoice_id)
    assert sorted(m["To"] for m in mails) == ["help@example.test", "help@example.test", "kari@example.test"]


@pytest.mark.parametrize(("locale", "viewport"), [("en", "mobile"), ("nb", "desktop"), ("de", "mobile")])
def test_errors_are_shown_next_to_their_fields(live_server, open_page, locale, viewport):
    app = live_server.app
    page, invoice_id = open_contact(live_server, open_page, locale, viewport)
    page.get_by_label(t(app, locale, "Call me back")).check()
    expect(page.locator("#phone")).to_be_visible()
    page.fill("#phone", "")
    page.get_by_role("button", name=t(app, locale, "Send")).click()
    expect(page.locator("#form-errors")).to_have_text(t(app, locale, "Please check the fields marked below."))
    expect(page.locator("#topic-error")).to_have_text(t(app, locale, "Please choose what it is about."))
    expect(page.locator("#message-error")).to_have_text(t(app, locale, "Please write your message."))
    expect(page.locator("#phone-error")).to_have_text(t(app, locale, "Please enter the number we should call."))
    expect(page.locator("#callback_slot-error")).to_have_text(
        t(app, locale, "Please choose one of the times offered, within the next %(days)d days.", days=14))
    expect(page.locator("#message")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#phone")).to_be_visible()  # the call-back part stays open to be fixed
    checked(page, f"contact form with errors ({locale}, {viewport})")
    with app.app_context():
        assert db.session.scalar(select(SupportRequest).where(SupportRequest.invoice_id == invoice_id)) is None
        db.session.remove()


def test_a_call_back_without_javascript(live_server, open_page):
    """The call-back fields are simply shown. (axe needs JavaScript: these pages are checked above.)"""
    app = live_server.app
    page, invoice_id = open_contact(live_server, open_page, "nb", "mobile", javascript=False)
    page.get_by_label(t(app, "nb", "I have already paid")).check()
    page.fill("#message", "Jeg betalte 1. november.")
    page.get_by_label(t(app, "nb", "Call me back")).check()
    page.fill("#phone", "912 34 567")
    page.select_option("#callback_slot", index=1)  # the first time offered (0: "Choose a time")
    page.get_by_role("button", name=t(app, "nb", "Send")).click()
    expect(page.locator("h1")).to_have_text(t(app, "nb", "Thank you, we have your message"))
    expect(page.get_by_role("status")).to_contain_text("91234567")
    reference, messages = request_of(live_server, invoice_id)
    assert reference.startswith("S-") and messages == [("customer", None)]
