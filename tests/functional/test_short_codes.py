"""A letter's short code, /k/<code>: typed as a person types it, it opens the bill as /l/<token> does;
unknown, revoked, expired codes and closed bills get the /l/ link's neutral answers; rate-limited per
client; the creditor's step-up follows it; the code is kept out of logs and Referer headers."""

from __future__ import annotations

import logging
import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from app.billing.models import InvoiceEvent
from app.billing.services import cancel_invoice
from app.extensions import db
from app.links import codes
from app.links.models import AccessLink
from app.links.services import revoke_links
from app.models import utcnow
from app.security import redact_tokens
from tests.factories import make_creditor, make_invoice
from tests.functional.helpers import issue


def page(response) -> str:
    """The page without its CSP nonce (new on every response) and its CSRF token (timestamped: two
    answers a second apart differ in it, which a loaded machine makes likely)."""
    text = re.sub(r'nonce="[^"]*"', "", response.text)
    return re.sub(r'name="csrf_token" value="[^"]*"', 'name="csrf_token"', text)


def code_for(app, invoice, **kw):
    kw.setdefault("ttl_days", 30)
    with app.test_request_context():
        issued = codes.issue_code_link(invoice, actor="test", base_url=app.config["PORTAL_BASE_URL"], **kw)
        db.session.commit()
    return issued


@pytest.fixture
def invoice(session):
    found = make_invoice(make_creditor("NO"))
    db.session.commit()
    return found


@pytest.mark.parametrize("typed", [lambda code: codes.display(code), lambda code: code.lower(),
                                   lambda code: codes.display(code).lower().replace("0", "o").replace("1", "l")])
def test_a_code_as_typed_opens_the_bill(client, app, invoice, typed):
    issued = code_for(app, invoice)
    landing = client.get(f"/k/{typed(issued.code)}")
    assert landing.status_code == 303 and landing.headers["Location"] == f"/b/{invoice.public_id}"
    assert landing.headers["Referrer-Policy"] == "no-referrer" and landing.headers["Cache-Control"] == "no-store"
    page = client.get(landing.headers["Location"])
    assert page.status_code == 200 and invoice.number in page.text
    link = db.session.get(AccessLink, issued.link.id)
    assert link.open_count == 1 and link.last_opened_at is not None
    assert db.session.scalar(select(InvoiceEvent.data).where(InvoiceEvent.invoice_id == invoice.id,
                                                             InvoiceEvent.kind == "link_opened"))["channel"] == "letter"


def test_an_unknown_or_malformed_code_gets_the_forged_links_answer(client, app, invoice):
    forged = client.get("/l/forged-token")
    for path in ("/k/ZZZZZ-ZZZZZ", "/k/abc", "/k/" + "7" * 200, "/k/%20"):
        answer = client.get(path)
        assert answer.status_code == 404 and page(answer) == page(forged), path
        assert answer.headers["Referrer-Policy"] == "no-referrer"


def test_a_revoked_or_expired_code_or_a_closed_bill_gets_the_links_answer(client, app, invoice):
    link_token = issue(app, invoice).token
    revoked = code_for(app, invoice)
    with app.test_request_context():
        revoke_links(invoice, actor="test")
        db.session.commit()
    by_code, by_link = client.get(f"/k/{revoked.code}"), client.get(f"/l/{link_token}")
    assert by_code.status_code == by_link.status_code == 404 and page(by_code) == page(by_link)
    assert invoice.creditor.name in by_code.text  # a genuine code: the neutral page names the creditor

    expired = code_for(app, invoice)
    db.session.get(AccessLink, expired.link.id).expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert page(client.get(f"/k/{expired.code}")) == page(by_code)

    closing = code_for(app, invoice)
    with app.test_request_context():
        cancel_invoice(invoice, actor="test", reason="test")
        db.session.commit()
    assert client.get(f"/k/{closing.code}").status_code == 404


def test_the_address_is_rate_limited_per_client(client, app, invoice):
    issued = code_for(app, invoice)
    app.config["CODE_RATE_LIMIT"] = "3 per minute"
    try:
        answers = [client.get(f"/k/AAAAA-AAAA{n}").status_code for n in range(3)]
        answers.append(client.get(f"/k/{issued.code}").status_code)  # even the right one, once limited
    finally:
        app.config["CODE_RATE_LIMIT"] = "10 per minute; 100 per day"
    assert answers == [404, 404, 404, 429]


def test_the_creditors_step_up_follows_a_code_as_it_follows_a_link(client, app, session):
    invoice = make_invoice(make_creditor("NO", step_up_mode="postcode"))
    db.session.commit()
    issued = code_for(app, invoice)
    landing = client.get(f"/k/{issued.code}")
    bill = client.get(landing.headers["Location"])
    assert bill.status_code == 303 and bill.headers["Location"].endswith(f"/b/{invoice.public_id}/verify")
    form = client.get(bill.headers["Location"])
    assert form.status_code == 200 and invoice.number not in form.text


def test_a_code_is_kept_out_of_the_logs(client, app, invoice, caplog, monkeypatch):
    issued = code_for(app, invoice)
    assert redact_tokens('"GET /k/7KQ2M-9XDAB HTTP/1.1" 303 "-"') == '"GET /k/[redacted] HTTP/1.1" 303 "-"'

    def broken(code, **_kw):
        raise RuntimeError(f"the database went away while reading /k/{code}")

    monkeypatch.setattr("app.portal.views.codes.resolve_code", broken)
    caplog.set_level(logging.INFO)
    assert client.get(f"/k/{codes.display(issued.code)}").status_code == 500
    assert "/k/[redacted]" in caplog.text and codes.display(issued.code) not in caplog.text
