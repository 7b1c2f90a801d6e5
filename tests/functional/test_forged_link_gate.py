"""The link's gate (`app.portal.gate`): the view's answer to a forged link, and to a link opened again,
given before Flask, and only then."""

import re
from datetime import timedelta

import pytest
from sqlalchemy import select
from werkzeug.test import EnvironBuilder, run_wsgi_app

from app.extensions import db, limiter
from app.links.models import AccessLink
from app.links.services import revoke_links
from app.models import utcnow
from app.page_cache import get_page_cache
from app.portal.gate import LinkGate
from tests.factories import make_creditor, make_invoice
from tests.functional.helpers import issue
from tests.support.gates import Counting, find_gate

FORGED = "AAAAAAAAAAAAAAAAAAAAAA.abcdef.zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"


@pytest.fixture
def gate(app, session):
    limiter.reset(app)
    get_page_cache_of(app).clear()
    gate = find_gate(app, LinkGate)
    inner = gate.wsgi_app
    gate.wsgi_app = Counting(inner)
    yield gate
    gate.wsgi_app = inner


def get(wsgi, path, headers=None, method="GET", query=None):
    builder = EnvironBuilder(path=path, method=method, headers=headers or {}, query_string=query,
                             base_url="https://pay.example.test", environ_base={"REMOTE_ADDR": "192.0.2.7"})
    try:
        body, status, response_headers = run_wsgi_app(wsgi, builder.get_environ(), buffered=True)
        return status, sorted(response_headers.items()), b"".join(body)
    finally:
        builder.close()


@pytest.mark.parametrize("accept", ["", "de", "nb-NO,nb;q=0.9,en;q=0.5", "fr-FR, de;q=0.8", "xx"])
def test_the_gates_answer_is_the_views(app, gate, accept):
    headers = {"Accept-Language": accept} if accept else {}
    by_view = get(gate.wsgi_app, f"/l/{FORGED}", headers)  # Flask itself (and the page now cached)
    calls = gate.wsgi_app.calls
    by_gate = get(gate, f"/l/{FORGED}", headers)
    assert gate.wsgi_app.calls == calls, "the gate passed a forged link on"
    assert by_gate == by_view
    assert by_gate[0] == "404 NOT FOUND" and b"<html" in by_gate[2]


def test_through_the_whole_app_the_answer_has_every_security_header(app, gate, client):
    client.get(f"/l/{FORGED}")  # the view renders and caches the English page
    assert gate.wsgi_app.calls == 1
    client.get(f"/l/{FORGED}x", headers={"Accept-Language": "de"})  # and the German one
    assert gate.wsgi_app.calls == 2
    response = client.get(f"/l/{FORGED}y", headers={"Accept-Language": "de"})
    assert gate.wsgi_app.calls == 2  # the gate's
    assert response.status_code == 404 and 'lang="de"' in response.text
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert "nonce" not in response.headers["Content-Security-Policy"]


def test_the_gate_passes_on_what_it_cannot_answer_alone(app, gate, client):
    invoice = make_invoice(make_creditor("NO"))
    valid = issue(app, invoice).token
    get(gate, f"/l/{FORGED}")  # the page is cached
    cases = [
        (f"/l/{valid}", {}, "GET", None, "303 SEE OTHER"),  # a genuine token: the view reads the link
        (f"/l/{FORGED}", {"Cookie": "portal_session=abc"}, "GET", None, "404 NOT FOUND"),  # the language may be in it
        (f"/l/{FORGED}", {}, "GET", "lang=de", "404 NOT FOUND"),  # the language switch writes the session
        (f"/l/{FORGED}", {}, "HEAD", None, "404 NOT FOUND"),
        (f"/l/{FORGED}", {}, "POST", None, "405 METHOD NOT ALLOWED"),
        (f"/l/{FORGED}/more", {}, "GET", None, "404 NOT FOUND"),
        ("/l/a%00b", {}, "GET", None, "404 NOT FOUND"),
        ("/l/caf%C3%A9", {}, "GET", None, "404 NOT FOUND"),
    ]
    for path, headers, method, query, status in cases:
        calls = gate.wsgi_app.calls
        assert get(gate, path, headers, method, query)[0] == status, path
        assert gate.wsgi_app.calls == calls + 1, (path, headers, method, query)


def test_an_emptied_page_cache_sends_the_refusal_to_the_view_which_fills_it_again(app, gate):
    get(gate, f"/l/{FORGED}")
    calls = gate.wsgi_app.calls
    get(gate, f"/l/{FORGED}")
    assert gate.wsgi_app.calls == calls
    get_page_cache_of(app).clear()
    first = get(gate, f"/l/{FORGED}")
    assert gate.wsgi_app.calls == calls + 1 and first[0] == "404 NOT FOUND"
    assert get(gate, f"/l/{FORGED}") == first and gate.wsgi_app.calls == calls + 1


def get_page_cache_of(app):
    with app.app_context():
        return get_page_cache()


def test_the_gate_counts_the_links_rate_limit_with_the_view(app, gate, monkeypatch):
    invoice = make_invoice(make_creditor("NO"))
    valid = issue(app, invoice).token
    get(gate, f"/l/{FORGED}")  # cached by the view: counted once
    limiter.reset(app)
    monkeypatch.setitem(app.config, "LINK_RATE_LIMIT", "3 per minute")
    assert get(gate, f"/l/{FORGED}")[0] == "404 NOT FOUND"  # the gate: 1
    assert get(gate, f"/l/{valid}")[0] == "303 SEE OTHER"  # the view: 2, the same counter
    assert get(gate, f"/l/{FORGED}")[0] == "404 NOT FOUND"  # the gate: 3
    calls = gate.wsgi_app.calls
    refused = get(gate, f"/l/{FORGED}")
    assert refused[0] == "429 TOO MANY REQUESTS" and any(name == "Retry-After" for name, _ in refused[1])
    assert gate.wsgi_app.calls == calls + 1  # the view answered the 429
    assert get(gate, f"/l/{valid}")[0] == "429 TOO MANY REQUESTS"


def test_a_genuine_tokens_signature_is_checked_once(app, gate, monkeypatch):
    from app.links.signer import LinkSigner

    invoice = make_invoice(make_creditor("NO"))
    valid = issue(app, invoice).token
    checked = []
    unsign = LinkSigner.unsign
    monkeypatch.setattr(LinkSigner, "unsign", lambda self, token, purpose: checked.append(token) or
                        unsign(self, token, purpose))
    assert get(gate, f"/l/{valid}")[0] == "303 SEE OTHER"
    assert checked == [valid]
    checked.clear()
    assert get(gate, f"/l/{valid}", {"Cookie": "portal_session=x"})[0] == "303 SEE OTHER"  # the view checks it
    assert checked == [valid]


# --- a genuine link opened again, without a session: the view's redirect, given by the gate ------------------


def cookie_session(app, headers) -> dict:
    """The session a response's Set-Cookie holds (its signature checked by the app's serializer)."""
    cookie = next(value for name, value in headers if name == "Set-Cookie")
    signed = cookie.split(";", 1)[0].split("=", 1)[1]
    return app.session_interface.get_signing_serializer(app).loads(signed)


def opened_once(app, gate, **creditor):
    """A bill and its link, opened once through the view (which records the opening)."""
    invoice = make_invoice(make_creditor("NO", default_locale="en", **creditor))
    token = issue(app, invoice).token
    calls = gate.wsgi_app.calls
    assert get(gate, f"/l/{token}")[0] == "303 SEE OTHER"
    assert gate.wsgi_app.calls == calls + 1, "a first opening writes its event: the view's"
    return invoice, token


def test_a_link_opened_again_gets_the_views_answer_from_the_gate(app, gate):
    invoice, token = opened_once(app, gate)
    by_view = get(gate.wsgi_app, f"/l/{token}")
    calls = gate.wsgi_app.calls
    by_gate = get(gate, f"/l/{token}")
    assert gate.wsgi_app.calls == calls, "the gate passed a link opened again on"

    def without_cookie(answer):
        return answer[0], [(name, value) for name, value in answer[1] if name != "Set-Cookie"], answer[2]

    assert without_cookie(by_gate) == without_cookie(by_view)
    assert by_gate[0] == "303 SEE OTHER" and ("Location", f"/b/{invoice.public_id}") in by_gate[1]
    assert ("Cache-Control", "no-store") in by_gate[1] and ("Vary", "Cookie") in by_gate[1]
    view_cookie, gate_cookie = (next(v for n, v in a[1] if n == "Set-Cookie") for a in (by_view, by_gate))
    assert gate_cookie.split(";", 1)[1] == view_cookie.split(";", 1)[1]  # HttpOnly, Path, SameSite, ...
    from_view, from_gate = cookie_session(app, by_view[1]), cookie_session(app, by_gate[1])
    assert re.fullmatch(r"[0-9a-f]{40}", from_gate["csrf_token"]) and from_gate["csrf_token"] != from_view["csrf_token"]
    grant_view, grant_gate = from_view["grants"][invoice.public_id], from_gate["grants"][invoice.public_id]
    assert abs(grant_gate.pop("t") - grant_view.pop("t")) <= 2
    assert grant_gate == grant_view and set(from_gate) == set(from_view) == {"grants", "csrf_token"}


def test_the_gates_grant_opens_the_bill_and_a_revocation_ends_it_and_the_gates_answer(app, gate, client):
    invoice, token = opened_once(app, gate)
    calls = gate.wsgi_app.calls
    opened = client.get(f"/l/{token}")
    assert opened.status_code == 303 and gate.wsgi_app.calls == calls  # the gate's
    assert opened.headers["Referrer-Policy"] == "no-referrer"  # and the whole app's headers around it
    assert opened.headers["X-Frame-Options"] == "DENY" and "nonce" not in opened.headers["Content-Security-Policy"]
    assert client.get(opened.headers["Location"]).status_code == 200  # its grant opens the bill

    with app.test_request_context():
        revoke_links(invoice, actor="api")
    db.session.commit()

    assert client.get(opened.headers["Location"]).status_code == 404  # the grant it gave has ended
    calls = gate.wsgi_app.calls
    again = get(gate, f"/l/{token}")
    assert again[0] == "404 NOT FOUND" and gate.wsgi_app.calls == calls + 1  # the view's neutral page
    assert not any(name == "Set-Cookie" and "grants" in str(cookie_session(app, [(name, value)]))
                   for name, value in again[1])


def test_the_gate_sends_a_link_it_may_not_answer_alone_to_the_view(app, gate):
    # Expired since it was opened: the view's neutral page, in the creditor's brand.
    invoice, token = opened_once(app, gate)
    link = db.session.scalars(select(AccessLink).where(AccessLink.invoice_id == invoice.id)).one()
    link.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    calls = gate.wsgi_app.calls
    assert get(gate, f"/l/{token}")[0] == "404 NOT FOUND" and gate.wsgi_app.calls == calls + 1

    # Opened longer ago than the "opened" interval: the view records the opening again.
    invoice, token = opened_once(app, gate)
    link = db.session.scalars(select(AccessLink).where(AccessLink.invoice_id == invoice.id)).one()
    link.last_opened_at = utcnow() - timedelta(minutes=app.config["LINK_OPEN_EVENT_INTERVAL_MINUTES"] + 1)
    db.session.commit()
    calls = gate.wsgi_app.calls
    assert get(gate, f"/l/{token}")[0] == "303 SEE OTHER" and gate.wsgi_app.calls == calls + 1
    assert link.open_count == 2

    # The bill closed since: the view's neutral page.
    invoice, token = opened_once(app, gate)
    invoice.status = "cancelled"
    db.session.commit()
    calls = gate.wsgi_app.calls
    assert get(gate, f"/l/{token}")[0] == "404 NOT FOUND" and gate.wsgi_app.calls == calls + 1

    # The customer owes another bill (the view grants it too), and a browser with a session (grants to keep).
    invoice, token = opened_once(app, gate)
    make_invoice(invoice.creditor)  # the same customer (C-1)
    db.session.commit()
    for headers in ({}, {"Cookie": "portal_session=x"}):
        calls = gate.wsgi_app.calls
        assert get(gate, f"/l/{token}", headers)[0] == "303 SEE OTHER" and gate.wsgi_app.calls == calls + 1


def test_the_step_up_still_asks_after_the_gates_redirect(app, gate, client):
    invoice, token = opened_once(app, gate, step_up_mode="postcode")
    calls = gate.wsgi_app.calls
    opened = client.get(f"/l/{token}")
    assert opened.status_code == 303 and gate.wsgi_app.calls == calls
    bill = client.get(opened.headers["Location"])
    assert bill.status_code == 303 and bill.headers["Location"].endswith(f"/b/{invoice.public_id}/verify")
