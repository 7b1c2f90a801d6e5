"""The bill page's gate (`app.portal.bill_gate`): a cached bill page given before Flask, with the view's
checks and the view's answer, and every other request passed on to the view."""

import re

import pytest
from werkzeug.test import EnvironBuilder, run_wsgi_app

from app.extensions import db
from app.links.services import revoke_links
from app.page_cache import get_page_cache
from app.portal.bill_gate import BillGate
from tests.factories import make_creditor, make_invoice
from tests.functional.helpers import open_bill
from tests.support.gates import Counting, find_gate

NONCE = re.compile(r"'nonce-([^']+)'")


@pytest.fixture
def gate(app, session):
    with app.app_context():
        get_page_cache().clear()
    gate = find_gate(app, BillGate)
    inner = gate.wsgi_app
    gate.wsgi_app = Counting(inner)
    yield gate
    gate.wsgi_app = inner


def cookie_of(client) -> str:
    return "; ".join(f"{c.key}={c.value}" for c in client._cookies.values())


def get(wsgi, path, headers=None, method="GET", query=None):
    builder = EnvironBuilder(path=path, method=method, headers=headers or {}, query_string=query,
                             base_url="https://pay.example.test", environ_base={"REMOTE_ADDR": "192.0.2.7"})
    try:
        body, status, response_headers = run_wsgi_app(wsgi, builder.get_environ(), buffered=True)
        return status, sorted(response_headers.items()), b"".join(body).decode()
    finally:
        builder.close()


def opened(app, client, **creditor):
    invoice = make_invoice(make_creditor("NO", default_locale="en", **creditor), lines=3)
    url = open_bill(client, app, invoice)
    return invoice, url, {"Cookie": cookie_of(client), "Accept-Language": "nb,en;q=0.5"}


def without_per_response_values(answer):
    """An answer with its CSP nonce and CSRF token taken out (random per response)."""
    status, headers, body = answer
    nonce = next(NONCE.search(value).group(1) for name, value in headers if name == "Content-Security-Policy")
    token = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', body)
    body = body.replace(nonce, "NONCE")
    if token:
        body = body.replace(token.group(1), "TOKEN")
    return status, [(name, value.replace(nonce, "NONCE")) for name, value in headers], body, nonce


def test_the_gates_bill_page_is_the_views(app, client, gate):
    invoice, url, headers = opened(app, client)
    get(gate.wsgi_app, url, headers)  # the view renders and caches it
    by_view = get(gate.wsgi_app, url, headers)  # and serves it from the cache
    calls = gate.wsgi_app.calls
    by_gate = get(gate, url, headers)
    assert gate.wsgi_app.calls == calls, "the gate passed a cached bill page on"
    assert by_gate[0] == "200 OK" and invoice.number in by_gate[2] and 'lang="nb"' in by_gate[2]
    view, gated = without_per_response_values(by_view), without_per_response_values(by_gate)
    assert gated[:3] == view[:3]
    assert gated[3] != view[3] and len(gated[3]) >= 20  # a fresh nonce per response
    assert ("Cache-Control", "no-store") in by_gate[1] and ("Vary", "Cookie") in by_gate[1]
    assert not any(name == "Set-Cookie" for name, _ in by_gate[1])


def test_the_gates_csrf_token_is_accepted_by_the_pay_form(app, client, gate):
    _invoice, url, _headers = opened(app, client)
    assert client.get(url).status_code == 200  # rendered and cached by the view
    calls = gate.wsgi_app.calls
    page = client.get(url)
    assert page.status_code == 200 and gate.wsgi_app.calls == calls  # the gate's
    token = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', page.text).group(1)
    paid = client.post(f"{url}/pay", data={"csrf_token": token, "provider": "simulator"},
                       headers={"Origin": app.config["PORTAL_BASE_URL"]})
    assert paid.status_code == 303  # on to the simulator: the token checked


def test_a_revocation_ends_the_gates_answer_at_the_next_request(app, client, gate):
    invoice, url, _headers = opened(app, client)
    assert client.get(url).status_code == 200
    calls = gate.wsgi_app.calls
    assert client.get(url).status_code == 200 and gate.wsgi_app.calls == calls  # the gate's

    with app.test_request_context():
        revoke_links(invoice, actor="api")
    db.session.commit()

    refused = client.get(url)
    assert refused.status_code == 404 and gate.wsgi_app.calls == calls + 1  # the view's neutral page
    assert invoice.number not in refused.text


def test_the_gate_passes_on_what_it_cannot_answer_alone(app, client, gate):
    _invoice, url, headers = opened(app, client)
    other_invoice, other_url, _ = opened(app, app.test_client())
    get(gate, url, headers)  # the view caches the page
    cases = [
        (url, {**headers, "Cookie": ""}, "GET", None, "404 NOT FOUND"),  # no session: no grant
        (url, {**headers, "Cookie": "portal_session=forged.abc.def"}, "GET", None, "404 NOT FOUND"),
        (other_url, headers, "GET", None, "404 NOT FOUND"),  # a bill this browser holds no grant to
        (url, headers, "GET", "lang=de", "200 OK"),  # the language switch writes the session
        (url, headers, "HEAD", None, "200 OK"),
        (url + "/lines", headers, "GET", None, "200 OK"),
        ("/b/a%00b", headers, "GET", None, "404 NOT FOUND"),
    ]
    for path, sent, method, query, status in cases:
        calls = gate.wsgi_app.calls
        assert get(gate, path, sent, method, query)[0] == status, (path, sent, method, query)
        assert gate.wsgi_app.calls == calls + 1, (path, sent, method, query)
    assert other_invoice.number not in get(gate, other_url, headers)[2]


def test_a_page_not_cached_yet_and_the_step_up_go_to_the_view(app, client, gate):
    _invoice, url, headers = opened(app, client)
    calls = gate.wsgi_app.calls
    assert get(gate, url, headers)[0] == "200 OK" and gate.wsgi_app.calls == calls + 1  # rendered by the view
    with app.app_context():
        get_page_cache().clear()
    assert get(gate, url, headers)[0] == "200 OK" and gate.wsgi_app.calls == calls + 2

    invoice, url, headers = opened(app, app.test_client(), step_up_mode="postcode")
    calls = gate.wsgi_app.calls
    answer = get(gate, url, headers)
    assert answer[0] == "303 SEE OTHER" and gate.wsgi_app.calls == calls + 1
    assert ("Location", f"/b/{invoice.public_id}/verify") in answer[1] or any(
        name == "Location" and value.endswith("/verify") for name, value in answer[1])


def test_a_closed_bill_goes_to_the_view(app, client, gate):
    invoice, url, headers = opened(app, client)
    get(gate, url, headers)
    invoice.status = "cancelled"
    db.session.commit()
    calls = gate.wsgi_app.calls
    answer = get(gate, url, headers)
    assert answer[0] == "404 NOT FOUND" and gate.wsgi_app.calls == calls + 1


def test_a_page_the_gate_passes_on_reads_the_bill_access_once(app, client, gate, monkeypatch):
    """On a cache miss the view takes the gate's access read (one read per request, not two); a
    request the gate did not read for (a stash of another bill) reads its own."""
    from app.access import guard
    from app.portal import bill_gate

    reads: list[str] = []

    def counted(read):
        def counting(public_id, source):
            reads.append(public_id)
            return read(public_id, source)
        return counting

    monkeypatch.setattr(guard, "bill_access", counted(guard.bill_access))
    monkeypatch.setattr(bill_gate, "bill_access", counted(bill_gate.bill_access))
    invoice, url, headers = opened(app, client)
    reads.clear()
    answer = get(gate, url, headers)  # not cached yet: the gate reads, the view renders
    assert answer[0] == "200 OK" and invoice.number in answer[2]
    assert reads == [invoice.public_id]
    reads.clear()
    builder = EnvironBuilder(path=url, headers=headers, base_url="https://pay.example.test",
                             environ_base={"REMOTE_ADDR": "192.0.2.7",
                                           guard.ACCESS_READ_KEY: ("another-bill", None, None)})
    try:  # past the gate, with a stash that is not this bill's: the view reads its own
        _body, status, _headers = run_wsgi_app(gate.wsgi_app, builder.get_environ(), buffered=True)
    finally:
        builder.close()
    assert status == "200 OK" and reads == [invoice.public_id]
