"""Reminder plans in the creditor console, in Chromium (issues 17 and 18): a creditor admin opens the
creditor's plan, edits it as a new plan with a changed step and a text variant, makes it the default and
previews its texts as the customer would get them. Every page is axe-clean."""

from __future__ import annotations

from playwright.sync_api import expect

from app.backoffice.services import create_agent
from app.dunning import services
from app.dunning.settings import save_settings
from app.extensions import db
from tests.e2e.flows import checked, enrol_and_sign_in

PASSWORD = "correct horse battery staple"


def test_a_creditor_admin_makes_a_plan_version_the_default_and_previews_it(live_server, open_page):
    from tests.factories import make_creditor, make_invoice

    app = live_server.app
    email = "plans-admin@example.test"
    with app.test_request_context():
        creditor = make_creditor("NO")
        save_settings(creditor, languages=["nb", "en"])
        services.save_plan(creditor, services.shipped_plan("NO"), actor="test")
        invoice = make_invoice(creditor, number="E2E-4711")
        create_agent(email, "Plan Admin", PASSWORD, creditor, "creditor_admin")
        db.session.commit()
        creditor_id, customer_name = creditor.id, invoice.customer.name
        db.session.remove()

    page, _watch = open_page("desktop")
    enrol_and_sign_in(page, live_server, email, PASSWORD)
    page.goto(f"{live_server.url}/backoffice/console/{creditor_id}")
    page.get_by_role("link", name="Reminder plans").click()
    expect(page.get_by_role("heading", name="Reminder plans")).to_be_visible()
    checked(page, "the console's reminder plans")
    page.get_by_role("link", name="standard · version 1").click()
    expect(page.get_by_text("A reminder fee is at most 1/20 of the inkassosats.")).to_be_visible()
    checked(page, "a plan version")

    page.get_by_role("link", name="Edit as a new version").click()
    expect(page.get_by_role("heading", name="A new plan version")).to_be_visible()
    checked(page, "the plan form")
    page.fill("#f-name", "gentle")
    page.fill("#f-s2-fee", "80")  # over Norway's cap: refused by field, nothing saved
    page.get_by_role("button", name="Save as a new version").click()
    expect(page.locator("#f-s2-fee-error")).to_contain_text("A reminder fee is at most 1/20 of the inkassosats.")
    expect(page.locator("#f-s2-fee")).to_have_attribute("aria-invalid", "true")
    checked(page, "the plan form with a problem")

    page.fill("#f-s2-fee", "25")
    page.fill("#f-s2-offset_days", "18")
    page.fill("#f-s2-nb-sms",
              "{creditor}: Vennlig påminnelse om faktura {invoice}. Betal {amount} innen {deadline}: {link}")
    page.locator("section.step").nth(1).locator("summary").click()
    page.fill("#f-s2-v1-key", "short")
    page.fill("#f-s2-v1-weight", "2")
    for locale in ("nb", "en"):
        page.fill(f"#f-s2-v1-{locale}-subject", "Purring {invoice}")
        page.fill(f"#f-s2-v1-{locale}-body", "Betal {amount} innen {deadline}: {link}")
        page.fill(f"#f-s2-v1-{locale}-sms", "KORT: {invoice} {amount} innen {deadline}: {link}")
    page.get_by_role("button", name="Save as a new version").click()
    expect(page.get_by_text("Version 1 of “gentle” is saved.")).to_be_visible()
    expect(page.get_by_text("Not the default.")).to_be_visible()

    page.get_by_role("button", name="Make this the default").click()
    expect(page.get_by_text("New bills now follow “gentle”, version 1.")).to_be_visible()
    expect(page.get_by_role("heading", name="Experiment on step 2 (Payment reminder)")).to_be_visible()
    checked(page, "the new default version with its experiment")
    page.set_viewport_size({"width": 360, "height": 780})
    checked(page, "the version at 360 px")
    page.set_viewport_size({"width": 1280, "height": 900})

    page.get_by_role("link", name="Preview the texts").click()
    expect(page.locator('article[lang="nb"]').nth(1)).to_contain_text("Vennlig påminnelse om faktura 10001234")
    expect(page.locator("article[lang='nb']").filter(has_text="KORT: 10001234")).to_have_count(1)
    page.fill("#f-invoice", "E2E-4711")
    page.get_by_role("button", name="Show").click()
    expect(page.locator('article[lang="nb"]').nth(1)).to_contain_text("Vennlig påminnelse om faktura E2E-4711")
    expect(page.locator("body")).to_contain_text(customer_name)
    checked(page, "the preview for a chosen bill")

    with app.app_context():
        plan = services.default_plan(creditor_id)
        assert (plan.name, plan.version) == ("gentle", 1)
        step = plan.steps[1]
        assert (step.offset_days, step.fee, [v.key for v in step.variants]) == (18, 2500, ["short"])
        db.session.remove()
