"""A browser's grant to a bill ends when any link of the bill is revoked (by the creditor's API, an
agent's new link, the step-up's lock) or when the link it came from expires: at the next request, on
the bill page (cached or not), its step-up, and every customer blueprint that uses the bill's guard."""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pytest

from app.access import grants
from app.extensions import db
from app.links.services import get_signer, issue_link, reissue, revoke_links
from app.models import utcnow
from tests.factories import make_creditor, make_invoice
from tests.functional.helpers import issue, open_bill

EN = {"Accept-Language": "en"}
CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')

#: The customer pages behind `bill_required` (support, resolutions, the bill's own), beside the bill.
GUARDED = ("", "/lines", "/contact", "/dispute", "/promise", "/more-time", "/instalments", "/invoice.pdf")


def pages(client, url) -> dict[str, int]:
    return {suffix: client.get(url + suffix, headers=EN).status_code for suffix in GUARDED}


def test_revoking_the_links_ends_the_grant_at_the_next_request_on_every_page(client, app, session):
    invoice = make_invoice(make_creditor("NO", default_locale="en"), lines=2)
    url = open_bill(client, app, invoice)
    assert set(pages(client, url).values()) == {200}  # every page seen (and the bill page cached)

    with app.test_request_context():
        revoke_links(invoice, actor="api")
    db.session.commit()

    assert set(pages(client, url).values()) == {404}
    page = client.get(url, headers=EN)
    assert invoice.number not in page.text  # not the cached page: the neutral one
    assert client.get(f"{url}/verify").status_code == 404

    # a link issued after the revocation opens the bill again, in the same browser
    assert client.get(open_bill(client, app, invoice), headers=EN).status_code == 200


def test_an_agents_new_link_ends_the_old_links_grants(client, app, session):
    invoice = make_invoice(make_creditor("NO"))
    url = open_bill(client, app, invoice, channel="email")
    assert client.get(url).status_code == 200
    with app.test_request_context():
        reissue(invoice, "letter", to=None, locale="nb", key="k1", actor="agent:1", ttl_days=30, signer=get_signer(),
                base_url=app.config["PORTAL_BASE_URL"])
    db.session.commit()
    assert client.get(url).status_code == 404


def test_the_step_up_lock_ends_every_grant_of_the_bill(client, app, session):
    """The customer passed the step-up in their browser; someone else holding a copy of the link guesses
    wrong until it locks: the customer's grant ends too (they open their new link)."""
    app.config["STEP_UP_MAX_ATTEMPTS"] = 2
    try:
        invoice = make_invoice(make_creditor("NO", step_up_mode="postcode"))
        issued = issue(app, invoice)
        customer, other = app.test_client(), app.test_client()
        for browser in (customer, other):
            assert browser.get(f"/l/{issued.token}").status_code == 303
        url = f"/b/{invoice.public_id}"
        form = customer.get(f"{url}/verify")
        assert customer.post(f"{url}/verify", data={"csrf_token": CSRF.search(form.text).group(1),
                                                    "answer": "0150"}).status_code == 303
        assert customer.get(url).status_code == 200

        form = other.get(f"{url}/verify")
        token = CSRF.search(form.text).group(1)
        for guess in ("1111", "2222"):
            answer = other.post(f"{url}/verify", data={"csrf_token": token, "answer": guess})
        assert answer.status_code == 404  # locked
        assert customer.get(url).status_code == 404
        assert customer.get(f"{url}/verify").status_code == 404
    finally:
        app.config["STEP_UP_MAX_ATTEMPTS"] = 5


def test_the_grant_ends_when_its_link_expires(client, app, session):
    invoice = make_invoice(make_creditor("NO"))
    with app.test_request_context():  # a one-day link issued a day ago, less three seconds
        issued = issue_link(invoice, channel="sms", ttl_days=1, signer=get_signer(), actor="test",
                            base_url=app.config["PORTAL_BASE_URL"], now=utcnow() - timedelta(days=1, seconds=-3))
    db.session.commit()
    assert client.get(f"/l/{issued.token}").status_code == 303
    url = f"/b/{invoice.public_id}"
    assert client.get(url).status_code == 200
    time.sleep(3.5)
    assert client.get(url).status_code == 404
    assert client.get(f"{url}/contact").status_code == 404


def test_a_grant_written_before_revocations_were_counted_holds_nothing(client, app, session):
    invoice = make_invoice(make_creditor("NO"))
    url = open_bill(client, app, invoice)
    with client.session_transaction() as cookie:
        old = dict(cookie["grants"][invoice.public_id])
        cookie["grants"] = {invoice.public_id: {"l": old["l"], "t": old["t"], "v": False}}
    assert client.get(url).status_code == 404


@pytest.mark.parametrize(("grant", "holds"), [
    ({"l": 1, "t": 1000, "v": False, "r": 0, "x": 5000}, True),
    ({"l": 1, "t": 1000, "v": False, "r": 0, "x": 2000}, False),  # the link expired
    ({"l": 1, "t": 1000 - 12 * 3600 - 1, "v": False, "r": 0, "x": 99999}, False),  # older than the hours
    ({"l": 1, "t": 1000, "v": False}, False),  # written before expiry and revocations were kept
])
def test_find_keeps_a_grant_within_its_hours_and_its_links_life(grant, holds):
    session = {"grants": {"bill": grant}}
    assert (grants.find(session, "bill", 2000, 12) is not None) is holds


def test_current_compares_the_revocations():
    grant = {"l": 1, "t": 1000, "v": True, "r": 3, "x": 5000}
    assert grants.current(grant, 3) and not grants.current(grant, 4)
