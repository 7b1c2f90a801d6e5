"""The neutral page of an expired or revoked link, in the creditor's brand with its contact details, and
"send me a new link": one goes to the contact points on file by the customer's preferred channel that
works, through the outbox, the link issued at delivery; never shown on the page; rate-limited per client
and per bill; the same answer whatever happened; a generic page where the creditor is unknown."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from app.billing.services import cancel_invoice
from app.dunning.services import update_contact_points
from app.extensions import db
from app.links.models import AccessLink
from app.links.services import NOTICE_KIND, revoke_links
from app.models import utcnow
from app.outbox.base import render
from app.outbox.models import OutboxMessage
from tests.factories import make_creditor, make_invoice
from tests.functional.helpers import issue, open_bill

EN = {"Accept-Language": "en"}
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
SENT = "a new link is on its way to the e-mail address or mobile number on file"


def expired_link(app, invoice):
    issued = issue(app, invoice)
    link = db.session.get(AccessLink, issued.link.id)
    link.expires_at = utcnow() - timedelta(minutes=1)
    db.session.commit()
    return issued


def new_links(invoice) -> list[OutboxMessage]:
    return list(db.session.scalars(select(OutboxMessage).where(
        OutboxMessage.kind == NOTICE_KIND, OutboxMessage.payload["invoice_id"].as_integer() == invoice.id)
        .order_by(OutboxMessage.id)))


def ask(client, page) -> str:
    """Press "Send me a new link" on the neutral page: the answer's text."""
    answer = client.post("/new-link", data={"csrf_token": TOKEN.search(page.text).group(1)}, headers=EN)
    assert answer.status_code == 200
    return answer.text


def test_an_expired_link_offers_a_new_one_sent_to_the_contact_points_on_file(client, app, session):
    creditor = make_creditor("NO", default_locale="en")
    invoice = make_invoice(creditor)
    live = issue(app, invoice)  # another link, still working: asking for a new one does not end it
    expired = expired_link(app, invoice)
    page = client.get(f"/l/{expired.token}", headers=EN)
    assert page.status_code == 404 and page.headers["Referrer-Policy"] == "same-origin"
    assert "Send me a new link" in page.text and creditor.name in page.text and creditor.support_email in page.text
    assert invoice.customer.phone not in page.text and invoice.customer.email not in page.text
    assert expired.token not in page.text.split("</main>")[0].split("<main")[1]  # the form carries no token

    answer = ask(client, page)
    assert SENT in answer and creditor.name in answer and invoice.customer.phone not in answer
    (message,) = new_links(invoice)
    assert (message.channel, message.recipient) == ("sms", "+4791234567")  # the first channel that works
    with app.test_request_context():
        text = render(message)
    url = re.search(r"https?://\S+/l/\S+", text).group(0)
    assert app.test_client().get(url[url.index("/l/"):]).status_code == 303  # the new link opens the bill
    assert db.session.get(AccessLink, live.link.id).revoked_at is None
    assert app.test_client().get(f"/l/{live.token}").status_code == 303


def test_the_preferred_channel_that_works_and_nothing_when_none_does(client, app, session):
    creditor = make_creditor("NO", default_locale="en")
    invoice = make_invoice(creditor)
    update_contact_points(invoice.customer, {"preferred_channel": "email"})
    db.session.commit()
    assert ask(client, client.get(f"/l/{expired_link(app, invoice).token}"))
    assert [(m.channel, m.recipient) for m in new_links(invoice)] == [("email", "kari@example.test")]

    update_contact_points(invoice.customer, {"email_allowed": False, "sms_allowed": False})
    db.session.commit()
    answer = ask(client, client.get(f"/l/{expired_link(app, invoice).token}"))
    assert SENT in answer and len(new_links(invoice)) == 1  # the same answer, nothing sent


def test_a_revoked_links_grant_offers_it_too_and_a_closed_bill_answers_the_same(client, app, session):
    creditor = make_creditor("NO", default_locale="en")
    invoice = make_invoice(creditor)
    url = open_bill(client, app, invoice)
    with app.test_request_context():
        revoke_links(invoice, actor="api")
    db.session.commit()
    page = client.get(url, headers=EN)
    assert page.status_code == 404 and "Send me a new link" in page.text
    assert SENT in ask(client, page) and len(new_links(invoice)) == 1

    closed = make_invoice(creditor)
    token = issue(app, closed).token
    cancel_invoice(closed, actor="api")
    db.session.commit()
    page = client.get(f"/l/{token}", headers=EN)
    assert "Send me a new link" in page.text
    assert SENT in ask(client, page) and new_links(closed) == []


def test_at_most_a_few_a_day_per_bill_and_a_few_an_hour_per_client(client, app, session, monkeypatch):
    creditor = make_creditor("NO", default_locale="en")
    invoice = make_invoice(creditor)
    for _browser_number in range(4):  # other browsers (other clients by the per-client count: not here)
        browser = app.test_client()
        assert SENT in ask(browser, browser.get(f"/l/{expired_link(app, invoice).token}"))
    assert len(new_links(invoice)) == app.config["NEW_LINK_PER_BILL_PER_DAY"] == 3

    monkeypatch.setitem(app.config, "NEW_LINK_RATE_LIMIT", "2 per hour")
    other = make_invoice(creditor)
    token = expired_link(app, other).token
    answers = [client.post("/new-link", data={"csrf_token": TOKEN.search(client.get(f"/l/{token}").text).group(1)})
               for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]


def test_a_forged_or_unknown_link_gets_the_generic_page_and_the_same_generic_answer(client, app, session):
    page = client.get("/l/forged-token-0000000000000000", headers=EN)
    assert page.status_code == 404 and "Send me a new link" not in page.text
    # A POST that no page offered (or offered once and used up): the generic answer, nothing sent.
    invoice = make_invoice(make_creditor("NO"))
    offered = client.get(f"/l/{expired_link(app, invoice).token}")
    token = TOKEN.search(offered.text).group(1)
    client.post("/new-link", data={"csrf_token": token})
    again = client.post("/new-link", data={"csrf_token": token}, headers=EN)
    assert again.status_code == 200 and "Nothing arrived? Please use the most recent message" in again.text
    assert len(new_links(invoice)) == 1


@pytest.mark.parametrize("locale", ["nb", "de"])
def test_the_neutral_page_in_the_creditors_language(client, app, session, locale):
    creditor = make_creditor("NO" if locale == "nb" else "DE")
    invoice = make_invoice(creditor)
    page = client.get(f"/l/{expired_link(app, invoice).token}", headers={"Accept-Language": locale})
    assert f'lang="{locale}"' in page.text and creditor.name in page.text
