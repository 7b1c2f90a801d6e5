"""What the self-service, contact and back-office end-to-end tests share: a sentence in a page's
language, the page checks (axe, no sideways scrolling), and the e-mails the outbox delivers over SMTP."""

from __future__ import annotations

from flask_babel import force_locale, gettext

from app.billing.models import Invoice
from app.extensions import db
from app.outbox.dispatcher import run_once
from tests.e2e.test_bill_page import assert_axe_clean, assert_no_sideways_scrolling
from tests.support.smtp import SmtpServer

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def t(app, locale: str, text: str, **values) -> str:
    """The sentence as the page shows it in `locale`."""
    with app.test_request_context(), force_locale(locale):
        return gettext(text, **values)


def checked(page, what: str) -> None:
    assert_axe_clean(page, what)
    assert_no_sideways_scrolling(page)


def deliver(live_server, invoice_id: int) -> list:
    """Run the outbox dispatcher against a real SMTP server; what arrived about this invoice (other
    tests on this live server may have left e-mails of their own)."""
    app = live_server.app
    with app.app_context():
        number = db.session.get(Invoice, invoice_id).number
        db.session.remove()
    with SmtpServer() as smtp:
        saved = {key: app.config.get(key) for key in smtp.config()}
        app.config.update(smtp.config())
        try:
            with app.app_context():
                run_once()
                db.session.remove()
        finally:
            app.config.update(saved)
        return [m for m in smtp.messages if number in m.get_body(("plain",)).get_content()]


def enrol_and_sign_in(page, live_server, email: str, password: str) -> None:
    """An agent's first sign-in: the password, the second factor set up from the key the page shows,
    then the page of recovery codes."""
    import pyotp
    from playwright.sync_api import expect

    page.goto(live_server.url + "/backoffice/sign-in")
    page.fill("#email", email)
    page.fill("#password", password)
    page.get_by_role("button", name="Continue").click()
    key = page.locator("span.mono.key").inner_text().replace(" ", "")
    page.fill("#code", pyotp.TOTP(key).now())
    page.get_by_role("button", name="Confirm and sign in").click()
    expect(page.locator("h1")).to_have_text("Your recovery codes")
