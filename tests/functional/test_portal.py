import re
from datetime import date, timedelta

import pytest

from app.billing.models import InvoiceStatus
from app.billing.services import record_payment, transition
from app.links.services import revoke_links
from app.money import format_money
from tests.factories import creditor_today, invoice_payload, make_creditor, make_invoice
from tests.functional.helpers import issue, open_bill


def test_link_redirects_to_bill_without_token_in_url(client, app, session):
    invoice = make_invoice(make_creditor("NO"), lines=3)
    issued = issue(app, invoice)
    response = client.get(f"/l/{issued.token}")
    assert response.status_code == 303
    location = response.headers["Location"]
    assert location.endswith(f"/b/{invoice.public_id}") and issued.token not in location
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "no-store" in response.headers["Cache-Control"]
    assert [e.kind for e in invoice.events].count("link_opened") == 1


def test_link_redirect_path_is_the_bill_route(app):
    from flask import url_for

    from app.portal.views.bill import _bill_path

    for script_root in ("", "/pay"):
        with app.test_request_context("/l/x", environ_base={"SCRIPT_NAME": script_root}):
            assert _bill_path("aB3-_x9") == url_for("portal.bill", public_id="aB3-_x9")


def test_bill_page_shows_the_bill(client, app, session):
    creditor = make_creditor("NO")
    invoice = make_invoice(creditor, lines=3, summary="Strøm oktober")
    page = client.get(open_bill(client, app, invoice), headers={"Accept-Language": "nb"})
    assert page.status_code == 200
    html = page.text
    assert "no-store" in page.headers["Cache-Control"]
    assert creditor.name in html and invoice.number in html and "Strøm oktober" in html
    assert format_money(invoice.balance, "NOK", "nb_NO") in html
    assert "Service 1" in html and "Service 3" in html
    assert invoice.payment_reference in html
    assert "1503.20.80119" in html  # Norwegian account number, formatted the Norwegian way
    assert 'lang="nb"' in html
    assert "Forfaller om 5 dager" in html and "Å betale" in html


def test_without_grant_the_bill_is_the_neutral_page(client, session):
    invoice = make_invoice(make_creditor("NO"))
    page = client.get(f"/b/{invoice.public_id}")
    assert page.status_code == 404
    assert invoice.number not in page.text and "Kari" not in page.text


def neutral(text):
    """The page body without the per-request nonce and CSRF tokens (a token carries the second it was
    made), to compare answers."""
    return re.sub(r'<input[^>]*name="csrf_token"[^>]*>', "<csrf>", re.sub(r'nonce="[^"]+"', "", text))


def test_forged_unknown_expired_revoked_all_answer_alike(client, app, session):
    creditor = make_creditor("NO")
    invoice = make_invoice(creditor)
    valid = issue(app, invoice)
    i = len(valid.token) - 10
    forged = client.get(f"/l/{valid.token[:i]}{'A' if valid.token[i] != 'A' else 'B'}{valid.token[i + 1:]}")
    unknown = client.get("/l/nothing-here")
    revoke_links(invoice, actor="test")
    session.commit()
    revoked = client.get(f"/l/{valid.token}")
    assert forged.status_code == unknown.status_code == revoked.status_code == 404
    assert neutral(forged.text) == neutral(unknown.text)
    assert "Denne lenken kan ikke brukes" in revoked.text  # in the creditor's language
    # where the creditor is known (a genuine but revoked link), its contact is shown
    assert creditor.support_email in revoked.text and creditor.support_email not in forged.text
    assert invoice.number not in revoked.text


def test_paid_invoice_shows_paid(client, app, session):
    invoice = make_invoice(make_creditor("IE"))
    record_payment(invoice, invoice.total, actor="test", paid_on=date.today(), method="card")
    session.commit()
    page = client.get(open_bill(client, app, invoice))
    assert "Paid. Thank you!" in page.text
    assert "Pay by bank transfer" not in page.text
    assert "Payments received" in page.text


def test_partly_paid_shows_payments_and_balance(client, app, session):
    invoice = make_invoice(make_creditor("DE"), lines=2)
    record_payment(invoice, 5000, actor="test", paid_on=date(2026, 11, 3), method="bank_transfer")
    session.commit()
    page = client.get(open_bill(client, app, invoice), headers={"Accept-Language": "en"})
    assert "Paid so far" in page.text and "Left to pay" in page.text
    assert format_money(invoice.balance, "EUR", "en_GB") in page.text
    assert "3 November 2026" in page.text


def test_cancelled_invoice_link_is_neutral(client, app, session):
    invoice = make_invoice(make_creditor("NO"))
    url = open_bill(client, app, invoice)
    transition(invoice, InvoiceStatus.CANCELLED, actor="test")
    session.commit()
    assert client.get(url).status_code == 404


def test_overdue_with_fees_explained(client, app, session):
    creditor = make_creditor("IE")
    today = creditor_today("IE")
    payload = invoice_payload("EUR", today=today, issue_date=(today - timedelta(days=40)).isoformat(),
                              due_date=(today - timedelta(days=12)).isoformat())
    payload["lines"] += [
        {"kind": "reminder_fee", "description": "Reminder fee", "unit_price": 1000, "vat_rate": 0},
        {"kind": "interest", "description": "Late-payment interest", "unit_price": 87, "vat_rate": 0,
         "period_start": (today - timedelta(days=12)).isoformat(), "period_end": today.isoformat(),
         "note": "8 % a year."},
    ]
    payload["total"] += 1087
    from app.billing.services import import_invoice

    invoice, _ = import_invoice(creditor, payload, actor="test")
    page = client.get(open_bill(client, app, invoice), headers={"Accept-Language": "en"})
    assert "Overdue by 12 days" in page.text
    assert "About the fees and interest" in page.text
    assert "A reminder fee is added" in page.text and "8 % a year." in page.text


def test_epc_qr_for_eur_only(client, app, session):
    eur = make_invoice(make_creditor("DE"))
    page = client.get(open_bill(client, app, eur))
    assert "epc-qr.svg" in page.text
    qr = client.get(f"/b/{eur.public_id}/epc-qr.svg")
    assert qr.status_code == 200 and qr.mimetype == "image/svg+xml" and b"<svg" in qr.data
    nok = make_invoice(make_creditor("NO"))
    page = client.get(open_bill(client, app, nok))
    assert "epc-qr.svg" not in page.text
    assert client.get(f"/b/{nok.public_id}/epc-qr.svg").status_code == 404


def test_epc_payload_follows_epc069(session):
    from app.billing.transfer import epc_payload

    creditor = make_creditor("DE")
    invoice = make_invoice(creditor)
    lines = epc_payload(creditor, invoice).split("\n")
    assert lines[:4] == ["BCD", "002", "1", "SCT"]
    assert lines[4] == "COBADEFFXXX" and lines[6] == "DE89370400440532013000"
    assert lines[7] == f"EUR{invoice.balance // 100}.{invoice.balance % 100:02d}"
    assert lines[9] == invoice.payment_reference and lines[10] == ""


class TestLocale:
    def test_customer_language_beats_accept_language(self, client, app, session):
        creditor = make_creditor("NO")
        payload = invoice_payload("NOK")
        payload["customer"]["preferred_locale"] = "de"
        from app.billing.services import import_invoice

        invoice, _ = import_invoice(creditor, payload, actor="test")
        page = client.get(open_bill(client, app, invoice), headers={"Accept-Language": "en"})
        assert '<html lang="de"' in page.text

    def test_accept_language_beats_creditor_default(self, client, app, session):
        invoice = make_invoice(make_creditor("NO"))
        page = client.get(open_bill(client, app, invoice), headers={"Accept-Language": "de-AT,de;q=0.9"})
        assert '<html lang="de"' in page.text

    def test_creditor_default_last(self, client, app, session):
        invoice = make_invoice(make_creditor("NO"))
        page = client.get(open_bill(client, app, invoice), headers={"Accept-Language": "fr"})
        assert '<html lang="nb"' in page.text

    def test_explicit_switch_wins_and_sticks(self, client, app, session):
        creditor = make_creditor("NO")
        payload = invoice_payload("NOK")
        payload["customer"]["preferred_locale"] = "nb"
        from app.billing.services import import_invoice

        invoice, _ = import_invoice(creditor, payload, actor="test")
        url = open_bill(client, app, invoice)
        page = client.get(url + "?lang=en")
        assert '<html lang="en"' in page.text
        assert '<html lang="en"' in client.get(url).text
        assert format_money(invoice.balance, "NOK", "en_GB") in page.text

    def test_unknown_switch_is_ignored(self, client, app, session):
        invoice = make_invoice(make_creditor("NO"))
        url = open_bill(client, app, invoice)
        assert '<html lang="nb"' in client.get(url + "?lang=xx", headers={"Accept-Language": "fr"}).text


class TestHeaders:
    def test_security_headers(self, client, app, session):
        invoice = make_invoice(make_creditor("NO"))
        page = client.get(open_bill(client, app, invoice))
        csp = page.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
        nonce = re.search(r"'nonce-([^']+)'", csp).group(1)
        assert f'nonce="{nonce}"' in page.text
        assert page.headers["X-Content-Type-Options"] == "nosniff"
        assert page.headers["Referrer-Policy"] == "same-origin"  # the CSRF origin check needs it: see test_csrf_origin
        landing = client.get(f"/l/{issue(app, invoice).token}")
        assert landing.headers["Referrer-Policy"] == "no-referrer"  # the link's token goes nowhere
        cookie = landing.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
        assert "Secure" not in cookie  # only in production (SESSION_COOKIE_SECURE), see test_config

    def test_nonce_changes_per_request(self, client, app, session):
        url = open_bill(client, app, make_invoice(make_creditor("NO")))
        a = client.get(url).headers["Content-Security-Policy"]
        b = client.get(url).headers["Content-Security-Policy"]
        assert "'nonce-" in a and a != b

    def test_page_without_inline_code_allows_none(self, client, app, session):
        page = client.get("/l/x")
        csp = page.headers["Content-Security-Policy"]
        assert "nonce" not in csp and "unsafe-inline" not in csp and "script-src 'self';" in csp
        assert "<style" not in page.text and "nonce=" not in page.text

    def test_no_external_resources(self, client, app, session):
        invoice = make_invoice(make_creditor("DE"))
        page = client.get(open_bill(client, app, invoice))
        for url in re.findall(r'(?:src|href)="([^"]+)"', page.text):
            assert not re.match(r"^(https?:)?//", url), url

    def test_base_url_not_from_host_header(self, client, app, session):
        from tests.functional.helpers import issue as issue_link

        invoice = make_invoice(make_creditor("NO"))
        with app.test_request_context(headers={"Host": "evil.example"}):
            issued = issue_link(app, invoice)
        assert issued.url.startswith("https://pay.example.test/l/")


@pytest.mark.parametrize("lines", [1, 60, 200])
def test_page_weight_under_40kb(client, app, session, lines):
    invoice = make_invoice(make_creditor("DE"), lines=lines)
    page = client.get(open_bill(client, app, invoice))
    css = client.get("/static/css/portal.css").data
    js = client.get("/static/js/portal.js").data
    assert len(page.data) + len(css) + len(js) <= 40 * 1024, (len(page.data), len(css), len(js))


def test_long_bill_folds_into_a_full_list_and_keeps_every_fee(client, app, session):
    from app.billing.services import import_invoice

    payload = invoice_payload("EUR", lines=120)
    payload["lines"].append({"kind": "reminder_fee", "description": "Mahngebühr", "unit_price": 500, "vat_rate": 0})
    payload["total"] += 500
    invoice, _ = import_invoice(make_creditor("DE"), payload, actor="test")
    page = client.get(open_bill(client, app, invoice), headers={"Accept-Language": "en"})
    assert "Service 50<" in page.text and "Service 51<" not in page.text
    assert "Mahngebühr" in page.text  # fees are always on the page
    assert "Show all lines (70 more)" in page.text
    full = client.get(f"/b/{invoice.public_id}/lines")
    assert full.status_code == 200
    assert full.text.count('<th scope="row">') == 121 and "Service 120<" in full.text


def test_full_list_needs_a_grant(client, session):
    invoice = make_invoice(make_creditor("DE"), lines=70)
    assert client.get(f"/b/{invoice.public_id}/lines").status_code == 404


@pytest.mark.parametrize("path", ["/nope", "/b/unknown", "/b/" + "x" * 40])
def test_unknown_pages_are_translated_404s(client, session, path):
    page = client.get(path, headers={"Accept-Language": "en"})
    assert page.status_code == 404 and "<html" in page.text


def test_method_not_allowed_is_a_page(client, session):
    assert client.post("/l/abc").status_code == 405


def test_rate_limit_on_links(client, app, session):
    app.config["LINK_RATE_LIMIT"] = "3 per minute"
    try:
        codes = [client.get("/l/forged-token").status_code for _ in range(5)]
    finally:
        app.config["LINK_RATE_LIMIT"] = "60 per minute"
    assert codes[:3] == [404, 404, 404] and codes[3:] == [429, 429]


def test_the_bill_page_follows_a_change_of_what_the_creditor_offers(client, app, session):
    """A provider offered or withdrawn is on the bill page at its next request: the page cached before
    and the choices each process keeps are both keyed by the creditor's `updated_at`, which it moves."""
    from app.extensions import db
    from app.payments import providers

    creditor = make_creditor("NO")
    invoice = make_invoice(creditor)
    bill = open_bill(client, app, invoice)
    assert "Vipps" in client.get(bill, headers={"Accept-Language": "en"}).text  # the simulator's default methods
    providers.offer_gateway(creditor, "stripe", ["card"])  # no keys here: the test simulator takes its methods
    db.session.commit()
    assert "Vipps" not in client.get(bill, headers={"Accept-Language": "en"}).text
    providers.withdraw_gateway(creditor, "stripe")
    db.session.commit()
    assert "Vipps" in client.get(bill, headers={"Accept-Language": "en"}).text


def test_a_creditors_providers_are_read_once_per_change(client, app, session):
    from app.extensions import db
    from tests.support.database import recorded_statements

    creditor = make_creditor("NO")
    first, second = make_invoice(creditor), make_invoice(creditor)
    bills = [open_bill(client, app, first), open_bill(client, app, second)]
    db.session.commit()
    with app.app_context():
        engine = db.engine
    with recorded_statements(engine) as statements:
        for bill in bills:
            assert client.get(bill).status_code == 200
    reads = [s for s in statements if "FROM creditor_gateways" in " ".join(s.split())]
    assert len(reads) == 1  # the first page of the creditor in this process reads them, the second does not
