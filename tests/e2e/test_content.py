"""Content blocks in Chromium (issue 18): a content editor writes a block in Norwegian and English in the
console; a Norwegian customer sees the Norwegian text at the top of the bill page (axe-clean, nothing
from another origin), clicks through our signed redirect to the block's own page, and says "I am
interested" on a second block; the lead reaches the creditor (the console's leads, `lead.created`)."""

from __future__ import annotations

from playwright.sync_api import expect
from sqlalchemy import select

from app.backoffice.services import create_agent
from app.content.models import Exposure, Lead
from app.events.models import CreditorEvent
from app.extensions import db
from app.links.services import get_signer, issue_link
from tests.e2e.flows import checked, enrol_and_sign_in

PASSWORD = "correct horse battery staple"
TARGET = "https://fibre.example.test/offer"


def write_block(page, live_server, creditor_id, name, kind, action, en, nb, target=None):
    page.goto(f"{live_server.url}/backoffice/console/{creditor_id}/content/new")
    page.fill("#f-name", name)
    page.locator(f"input[name=kind][value={kind}]").check()
    page.locator(f"input[name=action][value={action}]").check()
    if target:
        page.fill("#f-target_url", target)
    for locale, (title, body, cta) in (("en", en), ("nb", nb)):
        page.fill(f"#f-{locale}_title", title)
        page.fill(f"#f-{locale}_body", body)
        page.fill(f"#f-{locale}_cta", cta)
    page.get_by_role("button", name="Save the block").click()
    expect(page.get_by_text("The block is saved.")).to_be_visible()


def test_a_content_editor_writes_a_block_a_norwegian_customer_sees_clicks_and_is_interested(live_server, open_page):
    from tests.factories import make_creditor, make_invoice

    app = live_server.app
    email = "content-editor@example.test"
    with app.test_request_context():
        creditor = make_creditor("NO")
        invoice = make_invoice(creditor)
        create_agent(email, "Ida Innhold", PASSWORD, creditor, "content_editor")
        db.session.commit()
        creditor_id, invoice_id, number = creditor.id, invoice.id, invoice.number
        link = issue_link(invoice, signer=get_signer(), base_url=live_server.url, actor="test", channel="sms",
                          ttl_days=30)
        db.session.commit()
        bill_url = link.url
        db.session.remove()

    editor, _watch = open_page("mobile")
    enrol_and_sign_in(editor, live_server, email, PASSWORD)
    editor.get_by_role("link", name="Console").click()
    expect(editor.get_by_role("heading", name="Content blocks")).to_be_visible()
    checked(editor, "the console's content page")
    write_block(editor, live_server, creditor_id, "Fibre", "offer", "link",
                ("Faster internet", "Get **fibre** now.", "See the offer"),
                ("Raskere internett", "Få **fiber** nå.\n\n- ingen gebyr\n- 12 måneder", "Se tilbudet"), TARGET)
    checked(editor, "a block in the console")
    write_block(editor, live_server, creditor_id, "Solar", "offer", "interest",
                ("Solar panels", "We can help.", "I am interested"),
                ("Solcellepanel", "Vi kan hjelpe.", "Jeg er interessert"))

    customer, watch = open_page("mobile", language="nb")
    customer.route("https://fibre.example.test/**",
                   lambda route: route.fulfill(status=200, content_type="text/html",
                                               body="<!doctype html><title>Fibre</title><p>Fibre</p>"))
    customer.goto(bill_url)
    blocks = customer.locator("article.content-block")
    expect(blocks).to_have_count(2)
    expect(customer.get_by_role("heading", name="Raskere internett")).to_be_visible()
    expect(customer.locator("article.content-block strong").first).to_have_text("fiber")
    assert "Faster internet" not in customer.content()
    expect(customer.get_by_text("Ingen tilbud, takk")).to_be_visible()
    checked(customer, "the bill page with two blocks, in Norwegian")
    customer.wait_for_load_state("networkidle")
    origins = {url.split("/", 3)[2] for url in (r.url for r in watch.requests) if url.startswith("http")}
    assert origins == {live_server.url.split("/", 3)[2]}, origins  # no third-party request
    # no cookie beyond the bill's grant (the session)
    assert [c["name"] for c in customer.context.cookies()] == [app.config["SESSION_COOKIE_NAME"]]

    customer.get_by_role("button", name="Jeg er interessert").click()
    expect(customer.get_by_role("status")).to_contain_text("interessert")
    checked(customer, "the thanks for a lead")
    customer.go_back()
    customer.goto(bill_url)
    customer.get_by_role("link", name="Se tilbudet").click()
    customer.wait_for_url(TARGET)

    with app.app_context():
        lead = db.session.scalar(select(Lead).where(Lead.invoice_id == invoice_id))
        assert lead is not None
        event = db.session.scalar(select(CreditorEvent).where(CreditorEvent.creditor_id == creditor_id,
                                                              CreditorEvent.type == "lead.created"))
        assert event.payload["lead"]["id"] == lead.public_id and event.payload["invoice"]["number"] == number
        seen = {row.clicks for row in db.session.scalars(select(Exposure).where(Exposure.invoice_id == invoice_id))}
        shown = db.session.scalars(select(Exposure.first_seen_at).where(Exposure.invoice_id == invoice_id)).all()
        assert seen == {1} and all(shown)  # each block clicked once, and each counted as seen by our pixel
        db.session.remove()

    editor.goto(f"{live_server.url}/backoffice/console/{creditor_id}/content/leads")
    expect(editor.locator(f"#lead-{lead.public_id}")).to_contain_text(number)
    checked(editor, "the leads")
