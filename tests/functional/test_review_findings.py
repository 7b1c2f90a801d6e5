"""The smaller findings of the security review before production: web addresses only http(s) (https in
production), invoices only in a currency in use and with numbers that stay one path, HEAD like GET
on every form page, 405 with its Allow header."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import update

from app.core.validation import mask_email, mask_phone, safe_web_address, web_address_problem
from app.creditors.models import Creditor
from app.creditors.services import CreditorInput, validate_creditor
from app.debt_collection.partners import add_partner
from app.errors import InvalidData
from app.extensions import db
from app.money import is_current_currency
from tests.factories import invoice_payload, make_creditor, make_invoice
from tests.functional.agents import make_agent
from tests.functional.helpers import open_bill
from tests.functional.test_api import API, api_creditor, counts, create

EN = {"Accept-Language": "en"}
SCRIPTS = ["javascript:alert(1)", "JavaScript:alert(document.cookie)//https://x", "data:text/html,<script>",
           "vbscript:msgbox", "//evil.example/x", "https//no-colon.example", "https://spa ce.example",
           "https://user:pw@evil.example/", "https://", "ftp://files.example/"]


# --- web addresses ---------------------------------------------------------------------------------


@pytest.mark.parametrize("url", SCRIPTS)
def test_no_web_address_field_takes_anything_but_http_s(app, session, url):
    with app.test_request_context():
        with pytest.raises(InvalidData) as refused:
            add_partner("p-web", "Partner", "https://api.partner.example/hooks", website=url)
        assert "website" in refused.value.errors
        with pytest.raises(InvalidData) as refused:
            add_partner("p-page", "Partner", "https://api.partner.example/hooks",
                        case_page_url=url + "/case/{reference}")
        assert "case_page_url" in refused.value.errors
        base = {**_creditor_fields()}
        for field in ("support_url", "portal_base_url"):
            problems = _creditor_problems({**base, field: url})
            assert field in problems, (field, url)


def test_good_addresses_pass_and_http_only_outside_production(app, session, monkeypatch):
    with app.test_request_context():
        made = add_partner("p-ok", "Partner", "https://api.partner.example/hooks", website="https://partner.example",
                           case_page_url="http://127.0.0.1:5055/case/{reference}")
        assert made.partner.website == "https://partner.example"
        assert not _creditor_problems({**_creditor_fields(), "support_url": "https://help.example/faq?q=1",
                                       "portal_base_url": "http://127.0.0.1:5000"})
        monkeypatch.setitem(app.config, "PORTAL_ENV", "production")
        problems = _creditor_problems({**_creditor_fields(), "support_url": "http://help.example",
                                       "portal_base_url": "http://pay.example.com"})
        assert set(problems) >= {"support_url", "portal_base_url"}
        assert "portal_base_url" in _creditor_problems({**_creditor_fields(),
                                                        "portal_base_url": "https://pay.example.com/portal"})
        with pytest.raises(InvalidData) as refused:
            add_partner("p-http", "Partner", "https://api.partner.example/hooks", website="http://partner.example",
                        case_page_url="http://partner.example/{reference}")
        assert {"website", "case_page_url"} <= set(refused.value.errors)


def _creditor_fields() -> dict:
    return {"slug": "web-checks", "name": "Web AS", "country": "NO", "default_locale": "nb", "currency": "NOK",
            "reference_scheme": "kid_mod10", "bank_account_no": "12345678903"}


def _creditor_problems(fields: dict) -> dict:
    try:
        validate_creditor(CreditorInput(**fields))
    except InvalidData as exc:
        return exc.errors
    return {}


def test_an_address_stored_before_the_checks_is_never_a_link(client, app, session):
    creditor = make_creditor("NO", default_locale="en")
    db.session.execute(update(Creditor).where(Creditor.id == creditor.id)
                       .values(support_url="javascript:alert(document.cookie)"))
    page = client.get(open_bill(client, app, make_invoice(creditor)), headers=EN)
    assert page.status_code == 200 and "javascript:" not in page.text
    assert safe_web_address("javascript:alert(1)") == "" and safe_web_address(None) == ""
    assert safe_web_address("https://partner.example/{reference}") == "https://partner.example/{reference}"


@pytest.mark.parametrize("url", ["https://x.example", "https://x.example:8443/a?b=c#d", "https://[2001:db8::1]/"])
def test_web_addresses(url):
    assert web_address_problem(url) is None
    assert web_address_problem(url.replace("https", "http", 1)) is not None
    assert web_address_problem(url.replace("https", "http", 1), allow_http=True) is None


def test_masks():
    assert mask_email("kari.nordmann@example.com") == "ka***@example.com"
    assert mask_email("k@example.com") == "k***@example.com"
    assert mask_phone("+4791234567") == "+47*****567" and mask_phone("+47 912 34 567") == "+47*****567"


# --- invoices: currency and number ------------------------------------------------------------------


@pytest.mark.parametrize("currency", ["XTS", "XXX", "XAU", "XDR", "DEM", "CLF", "nok", "Nok", "ABC", "NOKK"])
def test_an_invoice_must_be_in_a_currency_in_use(client, session, currency):
    _creditor, headers = api_creditor("NO")
    before = counts()
    answer = create(client, headers, invoice_payload(currency))
    assert answer.status_code == 422 and "currency" in answer.json["errors"], answer.json
    assert counts() == before


@pytest.mark.parametrize("currency", ["NOK", "EUR", "SEK", "DKK", "GBP", "USD", "JPY", "CHF", "PLN"])
def test_currencies_in_use(currency):
    assert is_current_currency(currency)


@pytest.mark.parametrize("number", ["a/../b", "a/./b", "a//b", "a/", "../a", "a/.hidden", "a b", "a%2Fb", "a\\b",
                                    "/a", ".a", "a/-b"])
def test_an_invoice_number_must_stay_one_path(client, session, number):
    _creditor, headers = api_creditor("NO")
    before = counts()
    answer = create(client, headers, invoice_payload("NOK", number=number))
    assert answer.status_code == 422 and "number" in answer.json["errors"], answer.json
    assert counts() == before


@pytest.mark.parametrize("number", ["2026/10/7", "INV-2026.10_7", "a..b", "A1/b2.c/3-d"])
def test_numbers_with_slashes_dots_and_dashes_still_pass(client, session, number):
    _creditor, headers = api_creditor("NO")
    answer = create(client, headers, invoice_payload("NOK", number=number))
    assert answer.status_code == 201, answer.json
    assert client.get(f"{API}/invoices/{number}", headers=headers).status_code == 200


def test_the_openapi_document_states_both_rules(client, session):
    schemas = client.get(f"{API}/openapi.json").json["components"]["schemas"]
    invoice = schemas["InvoiceIn"]["properties"]
    assert invoice["currency"]["pattern"] == "^[A-Z]{3}$" and "in use" in invoice["currency"]["description"]
    pattern = re.compile(invoice["number"]["pattern"])
    assert pattern.fullmatch("2026/10/7") and not pattern.fullmatch("a/../b")


# --- HEAD and 405 ------------------------------------------------------------------------------------

FORM_PAGES = ["", "/contact", "/dispute", "/promise", "/more-time", "/instalments", "/instalments/request",
              "/lines"]


@pytest.mark.parametrize("path", FORM_PAGES)
def test_head_on_a_page_is_its_get_without_the_body(client, app, session, path):
    bill = open_bill(client, app, make_invoice(make_creditor("NO", default_locale="en"), lines=2))
    got = client.get(bill + path, headers=EN)
    head = client.head(bill + path, headers=EN)
    assert head.status_code == got.status_code == 200, (path, head.status_code)
    assert head.data == b"" and head.headers["Content-Type"] == got.headers["Content-Type"]


@pytest.mark.parametrize("path", ["/backoffice/sign-in", "/healthz"])
def test_head_on_other_pages(client, app, session, path):
    make_agent(app, make_creditor("NO"))
    assert client.head(path).status_code == client.get(path).status_code == 200


def test_405_names_the_methods_allowed(client, app, session):
    bill = open_bill(client, app, make_invoice(make_creditor("NO")))
    answer = client.delete(bill + "/contact", headers=EN)
    assert answer.status_code == 405
    assert set(answer.headers["Allow"].replace(" ", "").split(",")) == {"GET", "HEAD", "POST", "OPTIONS"}
    assert client.put("/healthz").headers["Allow"]
    api = client.delete(f"{API}/invoices")
    assert api.status_code == 405 and api.is_json and "POST" in api.headers["Allow"]
