"""Pages that used to end nowhere (issue 16): a bill's address opened without a grant (a bookmark,
another device, hours later, after an agent sent a new link) shows the creditor's brand, its contact
details and "send me a new link", whatever the bill's state, and an address of no bill gets the same
form and the same answer; the back office's preview of the bill page leads back where the agent came from."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from app.billing.services import cancel_invoice
from app.extensions import db
from app.links.models import AccessLink
from app.links.services import NOTICE_KIND
from app.outbox.models import OutboxMessage
from app.support.services import open_request
from tests.factories import make_creditor, make_invoice
from tests.functional.agents import EN, enrol, make_agent
from tests.functional.helpers import open_bill

TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
SENT = "a new link is on its way to the e-mail address or mobile number on file"


def new_links(invoice) -> list[OutboxMessage]:
    return list(db.session.scalars(select(OutboxMessage).where(
        OutboxMessage.kind == NOTICE_KIND, OutboxMessage.payload["invoice_id"].as_integer() == invoice.id)))


def main(page) -> str:
    """The page's main part, its form's CSRF token left out (it differs per browser)."""
    return TOKEN.sub("", page.text.split("<main")[1].split("</main>")[0])


def test_a_bookmarked_bill_opened_elsewhere_shows_the_creditor_and_sends_a_new_link(client, app, session):
    creditor = make_creditor("NO", default_locale="en")
    invoice = make_invoice(creditor)
    db.session.commit()
    other_device = app.test_client()
    page = other_device.get(f"/b/{invoice.public_id}", headers=EN)
    assert page.status_code == 404 and page.headers["Referrer-Policy"] == "same-origin"
    body = main(page)
    assert creditor.name in page.text and creditor.support_email in body and "Send me a new link" in body
    assert "A bookmark, another device or an older link does not open it." in body
    assert invoice.number not in page.text and invoice.customer.name not in page.text  # nothing of the bill
    for sub in ("lines", "verify", "invoice.pdf"):  # every page of the bill answers alike
        assert creditor.name in other_device.get(f"/b/{invoice.public_id}/{sub}", headers=EN).text
    answer = other_device.post("/new-link", data={"csrf_token": TOKEN.search(page.text).group(1)}, headers=EN)
    assert answer.status_code == 200 and SENT in answer.text and len(new_links(invoice)) == 1


def test_the_same_answer_for_a_closed_bill_and_for_an_address_of_no_bill(client, app, session):
    creditor = make_creditor("NO", default_locale="en")
    open_one, closed = make_invoice(creditor), make_invoice(creditor)
    cancel_invoice(closed, actor="api")
    db.session.commit()
    open_page, closed_page = (app.test_client().get(f"/b/{i.public_id}", headers=EN) for i in (open_one, closed))
    assert main(open_page) == main(closed_page)  # the state of the bill does not show
    browser = app.test_client()
    nothing = browser.get("/b/AAAAAAAAAAAAAAAAAAAAAA", headers=EN)
    assert nothing.status_code == open_page.status_code == 404 and "Send me a new link" in nothing.text
    answer = browser.post("/new-link", data={"csrf_token": TOKEN.search(nothing.text).group(1)}, headers=EN)
    assert answer.status_code == 200 and SENT in answer.text
    assert new_links(closed) == [] and db.session.scalar(select(OutboxMessage.id)) is None


def test_after_an_agent_sent_a_new_link_the_old_grant_gets_the_creditors_page(client, app, session):
    creditor = make_creditor("DE")
    invoice = make_invoice(creditor)
    url = open_bill(client, app, invoice)
    for link in db.session.scalars(select(AccessLink).where(AccessLink.invoice_id == invoice.id)):
        link.revoked_at = link.created_at
    invoice.link_revocations += 1
    db.session.commit()
    page = client.get(url)
    assert page.status_code == 404 and creditor.name in page.text and "Neuen Link senden" in page.text


@pytest.fixture
def agent_in(app, session):
    creditor = make_creditor("NO")
    db.session.commit()
    make_agent(app, creditor)
    return creditor


def test_the_preview_leads_back_to_the_bill_or_to_the_conversation_the_agent_came_from(app, client, agent_in):
    invoice = make_invoice(agent_in)
    request_, _created = open_request(
        invoice, topic="other", message="Hvorfor er regningen så høy?", contact_method="email",
        contact_email=None, contact_phone=None, callback_date=None, callback_window=None, upload=None,
        locale="nb", submission_key="k" * 32, attachment_dir=app.config["ATTACHMENT_DIR"])
    db.session.commit()
    enrol(client)
    plain = client.get(f"/backoffice/invoices/{invoice.id}/preview", headers=EN)
    assert plain.status_code == 200 and '<html lang="nb"' in plain.text
    assert f'href="/backoffice/invoices/{invoice.id}"' in plain.text and f"Back to bill {invoice.number}" in plain.text
    from_request = client.get(f"/backoffice/requests/{request_.reference}", headers=EN)
    assert f"preview?back=request:{request_.reference}" in from_request.text
    back = client.get(f"/backoffice/invoices/{invoice.id}/preview?back=request:{request_.reference}", headers=EN)
    assert f'href="/backoffice/requests/{request_.reference}"' in back.text
    # Anything else, another bill's conversation or an address elsewhere, leads back to the bill.
    other = make_invoice(agent_in)
    db.session.commit()
    for back_to in ("https://evil.example/", f"request:{request_.reference}", "resolution:R-NOPE", "//evil"):
        page = client.get(f"/backoffice/invoices/{other.id}/preview", query_string={"back": back_to}, headers=EN)
        assert page.status_code == 200 and f'href="/backoffice/invoices/{other.id}"' in page.text
        assert "evil" not in page.text and f"/backoffice/requests/{request_.reference}" not in page.text
