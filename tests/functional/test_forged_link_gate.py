"""The forged link's gate (`app.portal.gate`): the view's answer, given before Flask, and only then."""

import pytest
from werkzeug.test import EnvironBuilder, run_wsgi_app

from app.extensions import limiter
from app.page_cache import get_page_cache
from app.portal.gate import ForgedLinkGate
from tests.factories import make_creditor, make_invoice
from tests.functional.helpers import issue

FORGED = "AAAAAAAAAAAAAAAAAAAAAA.abcdef.zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"


def the_gate(app) -> ForgedLinkGate:
    wsgi = app.wsgi_app
    while not isinstance(wsgi, ForgedLinkGate):
        wsgi = getattr(wsgi, "wsgi_app", None) or wsgi.app  # our middleware, or werkzeug's ProxyFix
    return wsgi


class Counting:
    """The app behind the gate, counting the requests the gate passed on."""

    def __init__(self, wsgi_app):
        self.wsgi_app, self.calls = wsgi_app, 0

    def __call__(self, environ, start_response):
        self.calls += 1
        return self.wsgi_app(environ, start_response)


@pytest.fixture
def gate(app, session):
    limiter.reset(app)
    get_page_cache_of(app).clear()
    gate = the_gate(app)
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
