"""CSRF: Flask-WTF's token and our origin check, with the referrer policy that lets browsers send
what the check reads. Pages say `Referrer-Policy: same-origin` (forms posted from them carry our
Origin and Referer); the link's answers (/l/...) say `no-referrer`. A form post must come from one
of our origins (PORTAL_BASE_URL's, a creditor's own portal_base_url's): by Origin, else by Referer;
`Origin: null` is refused. Over HTTPS a post with an Origin and no Referer passes (Flask-WTF's
strict referrer check, which refused every form in production, is off)."""

from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy import func, select

from app.security import OriginCheck, origin_of
from app.support.models import SupportRequest
from tests.factories import make_creditor, make_invoice
from tests.functional.agents import make_agent, password_step, token
from tests.functional.helpers import issue
from tests.functional.test_support import form_fields, send

OURS = "https://pay.example.test"  # PORTAL_BASE_URL in tests/conftest.py
EN = {"Accept-Language": "en"}


def requests_made() -> int:
    from app.extensions import db

    return db.session.scalar(select(func.count()).select_from(SupportRequest))


def open_at(client, app, invoice, base_url: str = "http://localhost") -> str:
    response = client.get(f"/l/{issue(app, invoice).token}", base_url=base_url)
    assert response.status_code == 303
    return response.headers["Location"]


def test_pages_send_their_address_to_us_only_and_the_link_to_no_one(client, app, session):
    invoice = make_invoice(make_creditor("NO", default_locale="en"))
    landing = client.get(f"/l/{issue(app, invoice).token}")
    assert landing.headers["Referrer-Policy"] == "no-referrer"
    assert client.get("/l/forged-token").headers["Referrer-Policy"] == "no-referrer"  # the neutral page too
    bill = client.get(landing.headers["Location"], headers=EN)
    assert bill.headers["Referrer-Policy"] == "same-origin"
    assert client.get(landing.headers["Location"] + "/contact", headers=EN).headers["Referrer-Policy"] == "same-origin"
    assert client.get("/backoffice/sign-in").headers["Referrer-Policy"] == "same-origin"


@pytest.mark.parametrize("headers", [
    {"Origin": "https://evil.example"},
    {"Origin": "null"},  # a page with no-referrer, a sandboxed frame, a cross-site redirect
    {"Origin": "https://pay.example.test.evil.example"},
    {"Referer": "https://evil.example/pay.example.test/b/x"},
    {"Origin": "https://evil.example", "Referer": f"{OURS}/b/x"},  # Origin decides
    {"Origin": "http://pay.example.test"},  # another scheme is another origin
])
def test_a_form_posted_from_elsewhere_is_refused_even_with_a_good_token(client, app, session, headers):
    invoice = make_invoice(make_creditor("NO", default_locale="en"))
    url = open_at(client, app, invoice)
    fields = form_fields(client, f"{url}/contact")
    answer = send(client, url, fields, headers={**EN, **headers})
    assert answer.status_code == 400 and "form has expired" in answer.text
    assert requests_made() == 0


@pytest.mark.parametrize("headers", [
    {"Origin": OURS},
    {"Origin": OURS, "Referer": f"{OURS}/b/x/contact"},
    {"Referer": f"{OURS}/b/x/contact"},  # an older browser: no Origin, a same-origin Referer
    {"Origin": "https://pay.fjordlys.test"},  # the creditor's own portal host
    {},  # over plain HTTP outside production: tools and the test client
])
def test_a_form_posted_from_our_origins_passes(client, app, session, headers):
    invoice = make_invoice(make_creditor("NO", default_locale="en", portal_base_url="https://pay.fjordlys.test"))
    url = open_at(client, app, invoice)
    answer = send(client, url, form_fields(client, f"{url}/contact"), headers={**EN, **headers})
    assert answer.status_code == 303, answer.status_code
    assert requests_made() == 1


def test_a_token_from_our_origin_is_still_needed(client, app, session):
    invoice = make_invoice(make_creditor("NO", default_locale="en"))
    url = open_at(client, app, invoice)
    fields = {**form_fields(client, f"{url}/contact"), "csrf_token": "forged"}
    assert send(client, url, fields, headers={**EN, "Origin": OURS}).status_code == 400
    assert requests_made() == 0


HTTPS = {"base_url": OURS}


def test_over_https_a_browsers_post_with_its_origin_passes(client, app, session):
    """What browsers send under `same-origin` (Origin, and a Referer) or with the Referer stripped
    (Origin alone): both pass over HTTPS. The base revision refused the second (and, with its
    `no-referrer` pages, every form: the browser sent neither Referer nor a real Origin)."""
    make_agent(app, make_creditor("NO"))
    for headers in ({"Origin": OURS, "Referer": f"{OURS}/backoffice/sign-in"}, {"Origin": OURS}):
        client = app.test_client()  # a browser of its own each time: not signed in
        csrf = token_at(client, "/backoffice/sign-in")
        answer = client.post("/backoffice/sign-in", data={"csrf_token": csrf, "email": "ola@example.test",
                                                          "password": "correct horse battery staple"},
                             headers={**EN, **headers}, **HTTPS)
        assert answer.status_code == 303 and answer.headers["Location"].endswith("/backoffice/sign-in/enrol")


@pytest.mark.parametrize("headers", [{}, {"Origin": "null"}, {"Referer": "https://evil.example/"}])
def test_over_https_a_post_without_our_origin_is_refused(client, app, session, headers):
    make_agent(app, make_creditor("NO"))
    csrf = token_at(client, "/backoffice/sign-in")
    answer = client.post("/backoffice/sign-in", data={"csrf_token": csrf, "email": "ola@example.test",
                                                      "password": "correct horse battery staple"},
                         headers={**EN, **headers}, **HTTPS)
    assert answer.status_code == 400


def token_at(client, path: str) -> str:
    from tests.functional.agents import CSRF

    return CSRF.search(client.get(path, headers=EN, **HTTPS).text).group(1)


def test_exempt_views_are_not_asked_for_an_origin(client, app, session):
    """The bearer-token API and providers' webhooks come from servers: no Origin check (nor token)."""
    answer = client.post("/api/v1/invoices", json={}, headers={"Origin": "https://evil.example"})
    assert answer.status_code == 401
    assert client.post("/webhooks/stripe/nobody", data=b"{}", headers={"Origin": "null"}).status_code != 400


def test_the_password_step_still_works_through_the_usual_helpers(client, app, session):
    make_agent(app, make_creditor("NO"))
    assert token(client, "/backoffice/sign-in")
    assert password_step(client).status_code == 303


# --- the check on its own ------------------------------------------------------------------------


def check(env: str, url: str, headers: dict, more=()) -> str | None:
    app = Flask(__name__)
    app.config.update(PORTAL_ENV=env, PORTAL_BASE_URL="https://pay.example.com")
    with app.test_request_context("/x", method="POST", base_url=url, headers=headers):
        return OriginCheck(app, lambda: list(more)).problem()


def test_production_wants_an_origin_even_behind_a_proxy_that_says_http():
    assert check("production", "http://10.0.0.5:8000", {}) == (
        "The request names no origin (neither Origin nor Referer).")
    assert check("production", "http://10.0.0.5:8000", {"Origin": "https://pay.example.com"}) is None
    assert check("development", "http://127.0.0.1:5000", {}) is None


def test_outside_production_the_address_the_request_came_to_counts_as_ours():
    assert check("development", "http://localhost:5000", {"Origin": "http://localhost:5000"}) is None
    assert check("production", "https://evil.example", {"Origin": "https://evil.example"}) is not None
    assert check("production", "https://pay.example.com", {"Origin": "https://pay.fjordlys.no"},
                 more=[None, "https://pay.fjordlys.no/"]) is None


@pytest.mark.parametrize("url, origin", [
    ("https://Pay.Example.com/b/x?y=1", "https://pay.example.com"),
    ("https://pay.example.com:443/", "https://pay.example.com"),
    ("http://127.0.0.1:5000/l/abc", "http://127.0.0.1:5000"),
    ("https://[::1]:8443/", "https://[::1]:8443"),
    ("null", None), ("", None), ("/b/x", None), ("javascript:alert(1)", None), ("https://x:notaport/", None),
])
def test_origins(url, origin):
    assert origin_of(url) == origin
