"""The rendered-page cache: a change is on the page at the next request; per-request values stay per request."""

import re
from datetime import date

from flask import render_template_string

from app.billing.models import InvoiceStatus
from app.billing.services import record_payment, transition
from app.creditors.models import Creditor
from app.extensions import db
from app.money import format_money
from app.page_cache import PageCache, cached_page, get_page_cache
from tests.factories import make_creditor, make_invoice
from tests.functional.helpers import open_bill

NONCE = re.compile(r'nonce="([^"]+)"')


def test_each_response_has_its_own_nonce_matching_its_csp(client, app, session):
    invoice = make_invoice(make_creditor("NO"), lines=2)
    url = open_bill(client, app, invoice)
    first, second = client.get(url), client.get(url)
    nonces = [set(NONCE.findall(page.text)) for page in (first, second)]
    assert all(len(n) == 1 for n in nonces) and nonces[0] != nonces[1]
    for page, (nonce,) in zip((first, second), nonces, strict=True):
        assert f"'nonce-{nonce}'" in page.headers["Content-Security-Policy"]
    with app.app_context():
        stand_in = get_page_cache().nonce_stand_in
    assert stand_in not in first.text + second.text


def test_a_payment_shows_at_the_next_request(client, app, session):
    invoice = make_invoice(make_creditor("NO"), lines=2)
    url = open_bill(client, app, invoice)
    before = client.get(url, headers={"Accept-Language": "en"}).text
    assert format_money(invoice.balance, "NOK", "en_GB") in before
    record_payment(invoice, 1000, actor="test", paid_on=date.today(), method="bank_transfer")
    db.session.commit()
    after = client.get(url, headers={"Accept-Language": "en"}).text
    assert format_money(invoice.balance, "NOK", "en_GB") in after
    assert format_money(1000, "NOK", "en_GB") in after and after != before


def test_a_status_change_and_a_brand_change_show_at_the_next_request(client, app, session):
    creditor = make_creditor("NO")
    invoice = make_invoice(creditor, lines=1)
    url = open_bill(client, app, invoice)
    client.get(url)
    transition(invoice, InvoiceStatus.DISPUTED, actor="test", reason="customer wrote")
    db.session.commit()
    assert "disputed" in client.get(url, headers={"Accept-Language": "en"}).text.lower()

    db.session.get(Creditor, creditor.id).name = "Renamed Energy AS"
    db.session.commit()
    assert "Renamed Energy AS" in client.get(url).text


def test_a_cancelled_invoice_is_not_served_from_the_cache(client, app, session):
    invoice = make_invoice(make_creditor("NO"))
    url = open_bill(client, app, invoice)
    assert client.get(url).status_code == 200
    transition(invoice, InvoiceStatus.CANCELLED, actor="test")
    db.session.commit()
    page = client.get(url)
    assert page.status_code == 404 and invoice.number not in page.text


def test_each_language_is_its_own_page(client, app, session):
    invoice = make_invoice(make_creditor("NO"))
    url = open_bill(client, app, invoice)
    english = client.get(url + "?lang=en").text
    german = client.get(url + "?lang=de").text
    assert 'lang="en"' in english and 'lang="de"' in german


def test_csrf_token_stand_in_is_replaced_per_session(app):
    cache = PageCache(10)
    with app.test_request_context("/"):
        app.extensions["portal_page_cache"], saved = cache, app.extensions.get("portal_page_cache")
        try:
            html = cached_page("k", lambda: render_template_string("<p>{{ csrf_token() }}|{{ csp_nonce() }}</p>"))
            again = cached_page("k", lambda: "never rendered twice")
        finally:
            app.extensions["portal_page_cache"] = saved
    assert cache.csrf_stand_in not in html and cache.nonce_stand_in not in html
    assert html == again  # same request: same token and nonce, from the cached page
    assert len(cache) == 1


def test_cache_is_bounded_least_recently_used_first():
    cache = PageCache(2)
    cache.put("a", "A")
    cache.put("b", "B")
    assert cache.get("a") == "A"
    cache.put("c", "C")
    assert cache.get("b") is None and cache.get("a") == "A" and cache.get("c") == "C"
    off = PageCache(0)
    off.put("a", "A")
    assert off.get("a") is None
