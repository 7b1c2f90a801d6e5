"""The creditor console in Chromium (issue 17, item 1): a creditor admin signs in with the second factor,
uploads a logo, is refused a colour below WCAG AA with the shade that passes suggested, sets colours
that pass (the preview follows as they are typed), and the customer's bill page shows the logo and the
colours. Every console page is axe-clean and fits a phone's width."""

from __future__ import annotations

import io

from PIL import Image
from playwright.sync_api import expect

from app.backoffice.services import create_agent
from app.creditors.models import Creditor
from app.extensions import db
from app.links.services import get_signer, issue_link
from tests.e2e.flows import checked, enrol_and_sign_in

PASSWORD = "correct horse battery staple"


def _logo(path) -> str:
    out = io.BytesIO()
    Image.new("RGB", (120, 40), (11, 85, 99)).save(out, "PNG")
    path.write_bytes(out.getvalue())
    return str(path)


def test_a_creditor_admin_brands_the_bill_page(live_server, open_page, tmp_path):
    from tests.factories import make_creditor, make_invoice

    app = live_server.app
    email = "console-admin@example.test"
    with app.test_request_context():
        creditor = make_creditor("NO")
        invoice = make_invoice(creditor)
        create_agent(email, "Konsoll Admin", PASSWORD, creditor, "creditor_admin")
        db.session.commit()
        creditor_id, slug = creditor.id, creditor.slug
        link = issue_link(invoice, signer=get_signer(), base_url=live_server.url, actor="test", channel="sms",
                          ttl_days=30)
        db.session.commit()
        bill_url = link.url
        db.session.remove()

    page, _watch = open_page("mobile")
    page.set_viewport_size({"width": 360, "height": 780})
    enrol_and_sign_in(page, live_server, email, PASSWORD)

    page.get_by_role("link", name="Console").click()
    expect(page.get_by_role("heading", name="Brand", exact=True)).to_be_visible()
    checked(page, "the console's brand page at 360 px")

    page.set_input_files("#f-logo", _logo(tmp_path / "logo.png"))
    page.get_by_role("button", name="Upload").click()
    expect(page.get_by_text("The logo is saved.")).to_be_visible()

    page.fill("#f-brand_primary", "#ffcc00")  # yellow behind white text: 1.6:1
    # the preview follows as it is typed, before anything is saved
    expect(page.locator("#console-preview")).to_have_css("--brand", "#ffcc00")
    page.get_by_role("button", name="Save").click()
    problem = page.locator("#f-brand_primary-error")
    expect(problem).to_contain_text("below the 4.5:1 that WCAG AA asks of text")
    expect(page.locator("#f-brand_primary")).to_have_attribute("aria-invalid", "true")
    checked(page, "a colour refused at 360 px")

    page.fill("#f-brand_primary", "#0b5563")
    page.fill("#f-brand_accent", "#8a2be2")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("The brand is saved.")).to_be_visible()

    for path in ("payments", "rules", "api-keys"):
        page.goto(f"{live_server.url}/backoffice/console/{creditor_id}/{path}")
        checked(page, f"the console's {path} page at 360 px")

    with app.app_context():
        creditor = db.session.get(Creditor, creditor_id)
        assert (creditor.brand_primary, creditor.brand_accent) == ("#0b5563", "#8a2be2")
        version = creditor.logo_version
        db.session.remove()

    customer, _watch = open_page("mobile")
    customer.goto(bill_url)
    logo = customer.locator("img.logo")
    expect(logo).to_have_attribute("src", f"/brand/{slug}/logo?v={version}")
    assert logo.evaluate("img => img.complete && img.naturalWidth") == 120
    root = customer.evaluate("getComputedStyle(document.documentElement).getPropertyValue('--brand').trim()")
    assert root == "#0b5563"
    accent = customer.evaluate("getComputedStyle(document.documentElement).getPropertyValue('--accent').trim()")
    assert accent == "#8a2be2"
