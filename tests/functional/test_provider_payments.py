"""Paying through Stripe and Adyen from the bill page, with the official SDKs against
localstripe and the local Adyen Checkout server: what the creditor chose is offered, the
pay step holds the provider's fields under a CSP for exactly that provider, the return page
and the signed notifications settle once."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time

import pytest
import stripe
from sqlalchemy import func, select

from app.billing.models import InvoiceStatus
from app.extensions import db
from app.payments.models import CreditorGateway, Payment, PaymentAttempt
from tests.factories import make_creditor, make_invoice
from tests.functional.helpers import open_bill
from tests.support.adyen_server import AdyenServer
from tests.support.localstripe_server import LocalStripe

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
STRIPE = {"secret_key": "sk_test_" + "f" * 24, "publishable_key": "pk_test_" + "f" * 24,
          "webhook_secret": "whsec_" + "f" * 32}
ADYEN_KEY, ADYEN_HMAC = "functional_api_key", "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056"
EN = {"Accept-Language": "en"}


@pytest.fixture(scope="module")
def localstripe():
    with LocalStripe() as server:
        yield server.api_base


@pytest.fixture(scope="module")
def adyen():
    with AdyenServer(api_key=ADYEN_KEY) as server:
        yield server


@pytest.fixture
def configure(app, monkeypatch):
    """Give a creditor a provider: its choice (a CreditorGateway row) and its credentials."""
    monkeypatch.setitem(app.config, "PAYMENT_GATEWAYS", {})
    app.extensions.pop("payment_gateways", None)
    app.extensions.pop("creditor_ids", None)

    def give(creditor, provider, methods, settings=None, flow=None):
        db.session.add(CreditorGateway(creditor_id=creditor.id, provider=provider, methods=list(methods), flow=flow))
        db.session.commit()
        if settings is not None:
            app.config["PAYMENT_GATEWAYS"].setdefault(creditor.slug, {})[provider] = settings

    yield give
    app.extensions.pop("payment_gateways", None)
    app.extensions.pop("creditor_ids", None)


def start(client, url, provider):
    token = CSRF.search(client.get(url).text).group(1)
    return client.post(f"{url}/pay", data={"csrf_token": token, "provider": provider})


def path(app, url):
    return url.replace(app.config["PORTAL_BASE_URL"], "")


def stripe_notification(intent: dict, secret: str) -> tuple[bytes, dict[str, str]]:
    body = json.dumps({"id": "evt_" + secrets.token_hex(8), "object": "event", "type": "payment_intent.succeeded",
                       "created": int(time.time()), "data": {"object": intent}}, default=str).encode()
    t = int(time.time())
    return body, {"Stripe-Signature": f"t={t},v1=" + hmac.new(secret.encode(), f"{t}.".encode() + body,
                                                                hashlib.sha256).hexdigest(),
                  "Content-Type": "application/json"}


def test_stripe_payment_element_flow(client, app, session, configure, localstripe):
    creditor = make_creditor("NO")
    configure(creditor, "stripe", ["card", "apple_pay", "google_pay", "klarna", "vipps", "ideal"],
              {**STRIPE, "api_base": localstripe})
    invoice = make_invoice(creditor)
    url = open_bill(client, app, invoice)

    page = client.get(url, headers=EN).text
    assert 'value="stripe"' in page and "test mode" not in page
    assert "Card · Apple Pay · Google Pay · Klarna · Vipps" in page and "iDEAL" not in page  # NOK in Norway

    first, second = start(client, url, "stripe"), start(client, url, "stripe")  # a double tap
    assert first.status_code == second.status_code == 303
    assert first.headers["Location"] == second.headers["Location"]
    attempts = db.session.scalars(select(PaymentAttempt).where(PaymentAttempt.invoice_id == invoice.id)).all()
    assert len(attempts) == 1 and attempts[0].provider_ref.startswith("pi_")
    attempt = attempts[0]

    checkout = client.get(first.headers["Location"], headers=EN)
    assert checkout.status_code == 200
    csp = checkout.headers["Content-Security-Policy"]
    assert re.search(rf"script-src 'self' 'nonce-[^']+' {localstripe};", csp) and f"frame-src {localstripe};" in csp
    assert "https://js.stripe.com" not in csp  # exactly the configured provider's origins
    assert checkout.headers["Cache-Control"] == "no-store"
    assert f'src="{localstripe}/js.stripe.com/v3/"' in checkout.text
    assert attempt.client_config["client_secret"] in checkout.text
    assert 'data-email="' in checkout.text and 'data-country="NO"' in checkout.text  # pre-filled
    assert STRIPE["secret_key"] not in checkout.text

    browser = stripe.StripeClient(STRIPE["secret_key"], base_addresses={"api": localstripe})
    method = browser.v1.payment_methods.create(params={
        "type": "card", "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": "123"}})
    browser.v1.payment_intents.update(attempt.provider_ref, params={"payment_method": method.id})
    browser.v1.payment_intents.confirm(attempt.provider_ref)

    back = client.get(f"{url}/paid/{attempt.public_ref}?redirect_status=failed", headers=EN)  # query not trusted
    assert "received your payment" in back.text
    assert invoice.status == InvoiceStatus.PAID and invoice.balance == 0

    intent = browser.v1.payment_intents.retrieve(attempt.provider_ref).to_dict()
    body, headers = stripe_notification(intent, STRIPE["webhook_secret"])
    answer = client.post(f"/webhooks/stripe/{creditor.slug}", data=body, headers=headers)
    assert answer.status_code == 200 and answer.json["outcomes"] == ["unchanged"]
    assert db.session.scalar(select(func.count(Payment.id)).where(Payment.invoice_id == invoice.id)) == 1
    forged = client.post(f"/webhooks/stripe/{creditor.slug}", data=body.replace(b"succeeded", b"canceled"),
                         headers=headers)
    assert forged.status_code == 400


def test_stripe_declined_card_leaves_the_bill_open(client, app, session, configure, localstripe):
    creditor = make_creditor("NO")
    configure(creditor, "stripe", ["card"], {**STRIPE, "api_base": localstripe})
    invoice = make_invoice(creditor)
    url = open_bill(client, app, invoice)
    start(client, url, "stripe")
    attempt = db.session.scalar(select(PaymentAttempt).where(PaymentAttempt.invoice_id == invoice.id))
    browser = stripe.StripeClient(STRIPE["secret_key"], base_addresses={"api": localstripe})
    method = browser.v1.payment_methods.create(params={
        "type": "card", "card": {"number": "4000000000000002", "exp_month": 12, "exp_year": 2034, "cvc": "123"}})
    browser.v1.payment_intents.update(attempt.provider_ref, params={"payment_method": method.id})
    with pytest.raises(stripe.CardError):
        browser.v1.payment_intents.confirm(attempt.provider_ref)
    back = client.get(f"{url}/paid/{attempt.public_ref}", headers=EN)
    assert "was not completed" in back.text
    assert invoice.status != InvoiceStatus.PAID and invoice.amount_paid == 0
    again = start(client, url, "stripe")  # a new try gets a new attempt
    assert again.status_code == 303 and attempt.public_ref not in again.headers["Location"]


def test_adyen_payment_link_flow(client, app, session, configure, adyen):
    creditor = make_creditor("NO")
    settings = {"api_key": ADYEN_KEY, "merchant_account": "FjordlysECOM", "hmac_key": ADYEN_HMAC,
                "client_key": "test_CLIENT", "checkout_base_url": adyen.base_url}
    configure(creditor, "adyen", ["card", "vipps", "mobilepay"], settings, flow="link")
    invoice = make_invoice(creditor)
    url = open_bill(client, app, invoice)
    assert "Card · Vipps" in client.get(url, headers=EN).text  # no MobilePay in Norway
    for _ in range(2):  # rendered, then from the page cache: the pay form may lead to Adyen's page
        csp = client.get(url, headers=EN).headers["Content-Security-Policy"]
        assert "form-action 'self' https://test.adyen.link;" in csp

    started = start(client, url, "adyen")
    assert started.status_code == 303 and started.headers["Location"].startswith(adyen.base_url)
    attempt = db.session.scalar(select(PaymentAttempt).where(PaymentAttempt.invoice_id == invoice.id))
    sent = [r for r in adyen.requests if r.path.endswith("/paymentLinks")][-1].body
    assert sent["reference"] == attempt.public_ref and sent["amount"]["value"] == invoice.balance
    assert sent["allowedPaymentMethods"] == ["scheme", "vipps"] and sent["shopperLocale"] in ("nb-NO", "en-GB")

    adyen.complete(attempt.provider_ref)
    body = adyen.notification(attempt.provider_ref, ADYEN_HMAC)
    answer = client.post(f"/webhooks/adyen/{creditor.slug}", data=body, content_type="application/json")
    assert answer.status_code == 200 and answer.text == "[accepted]"
    assert invoice.status == InvoiceStatus.PAID
    again = client.post(f"/webhooks/adyen/{creditor.slug}", data=body, content_type="application/json")
    assert again.text == "[accepted]"
    assert db.session.scalar(select(func.count(Payment.id)).where(Payment.invoice_id == invoice.id)) == 1
    back = client.get(f"{url}/paid/{attempt.public_ref}", headers=EN)
    assert "received your payment" in back.text

    forged = client.post(f"/webhooks/adyen/{creditor.slug}", data=body.replace(b'"true"', b'"false"'),
                         content_type="application/json")
    assert forged.status_code == 400


def test_adyen_dropin_page_allows_adyen_only(client, app, session, configure, adyen):
    creditor = make_creditor("NO")
    settings = {"api_key": ADYEN_KEY, "merchant_account": "FjordlysECOM", "hmac_key": ADYEN_HMAC,
                "client_key": "test_CLIENT", "checkout_base_url": adyen.base_url}
    configure(creditor, "adyen", ["card", "vipps"], settings, flow="session")
    invoice = make_invoice(creditor)
    url = open_bill(client, app, invoice)
    started = start(client, url, "adyen")
    assert "/checkout/" in started.headers["Location"]
    page = client.get(started.headers["Location"], headers=EN)
    csp = page.headers["Content-Security-Policy"]
    assert re.search(r"script-src 'self' 'nonce-[^']+' https://checkoutshopper-test.cdn.adyen.com;", csp)
    assert "connect-src 'self' https://checkoutshopper-test.adyen.com" in csp
    assert 'data-session-id="CS' in page.text and ADYEN_KEY not in page.text


def test_without_credentials_the_simulator_plays_the_creditors_methods(client, app, session, configure):
    creditor = make_creditor("NO")
    configure(creditor, "stripe", ["card", "vipps"])  # chosen, but no keys on this instance
    invoice = make_invoice(creditor)
    page = client.get(open_bill(client, app, invoice), headers=EN).text
    assert 'value="simulator"' in page and 'value="stripe"' not in page
    assert "form-action 'self';" in client.get(open_bill(client, app, invoice)).headers["Content-Security-Policy"]
    assert "test mode" in page and "Card · Vipps" in page


def test_a_provider_the_creditor_did_not_choose_is_refused(client, app, session, configure, localstripe):
    creditor = make_creditor("NO")
    configure(creditor, "stripe", ["card"], {**STRIPE, "api_base": localstripe})
    invoice = make_invoice(creditor)
    url = open_bill(client, app, invoice)
    assert start(client, url, "simulator").status_code == 422
    assert start(client, url, "adyen").status_code == 422
    assert db.session.scalar(select(func.count(PaymentAttempt.id)).where(PaymentAttempt.invoice_id == invoice.id)) == 0


def test_checkout_page_of_another_bill_is_not_shown(client, app, session, configure, localstripe):
    creditor = make_creditor("NO")
    configure(creditor, "stripe", ["card"], {**STRIPE, "api_base": localstripe})
    mine, other = make_invoice(creditor), make_invoice(creditor)
    other_url = open_bill(client, app, other)
    start(client, other_url, "stripe")
    other_attempt = db.session.scalar(select(PaymentAttempt).where(PaymentAttempt.invoice_id == other.id))
    client.cookie_jar.clear() if hasattr(client, "cookie_jar") else client._cookies.clear()
    url = open_bill(client, app, mine)
    page = client.get(f"{url}/checkout/{other_attempt.public_ref}")
    assert page.status_code == 404 and other_attempt.client_config["client_secret"] not in page.text


def test_a_provider_withdrawn_meanwhile_still_answers_for_its_payments(client, app, session, configure, adyen):
    """The return page and notifications use the instance's keys, not what the creditor offers today."""
    from app.payments.providers import withdraw_gateway

    creditor = make_creditor("NO")
    settings = {"api_key": ADYEN_KEY, "merchant_account": "FjordlysECOM", "hmac_key": ADYEN_HMAC,
                "client_key": "test_CLIENT", "checkout_base_url": adyen.base_url}
    configure(creditor, "adyen", ["card"], settings, flow="link")
    invoice = make_invoice(creditor)
    url = open_bill(client, app, invoice)
    start(client, url, "adyen")
    attempt = db.session.scalar(select(PaymentAttempt).where(PaymentAttempt.invoice_id == invoice.id))
    adyen.complete(attempt.provider_ref)
    withdraw_gateway(creditor, "adyen")
    db.session.commit()
    assert 'value="adyen"' not in client.get(url, headers=EN).text
    assert "received your payment" in client.get(f"{url}/paid/{attempt.public_ref}", headers=EN).text
    assert invoice.status == InvoiceStatus.PAID


# --- a provider's "succeeded" is checked against the attempt it pays ---------------------------------------------


def stripe_event(intent: dict, secret: str, **event) -> tuple[bytes, dict[str, str]]:
    """A signed Stripe event about `intent`, with `event` overriding the envelope's fields."""
    body = json.dumps({"id": "evt_" + secrets.token_hex(8), "object": "event", "type": "payment_intent.succeeded",
                       "created": int(time.time()), "data": {"object": intent}, **event}, default=str).encode()
    t = int(time.time())
    return body, {"Stripe-Signature": f"t={t},v1=" + hmac.new(secret.encode(), f"{t}.".encode() + body,
                                                                hashlib.sha256).hexdigest(),
                  "Content-Type": "application/json"}


def test_stripe_success_of_another_amount_or_currency_is_owed_back_and_malformed_is_400(
        client, app, session, configure, localstripe):
    creditor = make_creditor("NO")
    configure(creditor, "stripe", ["card"], {**STRIPE, "api_base": localstripe})
    invoices = [make_invoice(creditor) for _ in range(2)]
    attempts = []
    for invoice in invoices:
        start(client, open_bill(client, app, invoice), "stripe")
        attempts.append(db.session.scalar(select(PaymentAttempt).where(PaymentAttempt.invoice_id == invoice.id)))
    browser = stripe.StripeClient(STRIPE["secret_key"], base_addresses={"api": localstripe})
    endpoint = f"/webhooks/stripe/{creditor.slug}"

    intent = browser.v1.payment_intents.retrieve(attempts[0].provider_ref).to_dict()
    for name, changed in {"amount_received a string": {"amount_received": "abc"},
                          "amount_received 2^63": {"amount_received": 2 ** 63},
                          "currency a number": {"currency": 578},
                          "id an object": {"id": {"pi": 1}},
                          "id too long": {"id": "pi_" + "x" * 200}}.items():
        body, headers = stripe_event({**intent, "status": "succeeded", **changed}, STRIPE["webhook_secret"])
        assert client.post(endpoint, data=body, headers=headers).status_code == 400, name
    body, headers = stripe_event({**intent, "status": "succeeded"}, STRIPE["webhook_secret"], created=10 ** 20)
    assert client.post(endpoint, data=body, headers=headers).status_code == 400
    assert db.session.scalar(select(func.count(Payment.id))) == 0

    cent = {**intent, "status": "succeeded", "amount_received": 1}
    body, headers = stripe_event(cent, STRIPE["webhook_secret"])
    assert client.post(endpoint, data=body, headers=headers).json["outcomes"] == ["applied"]
    other = browser.v1.payment_intents.retrieve(attempts[1].provider_ref).to_dict()
    euros = {**other, "status": "succeeded", "currency": "eur", "amount_received": other["amount"]}
    body, headers = stripe_event(euros, STRIPE["webhook_secret"])
    assert client.post(endpoint, data=body, headers=headers).json["outcomes"] == ["applied"]

    for invoice, attempt, expected in zip(invoices, attempts, [(1, "NOK", "amount"), (None, "EUR", "currency")],
                                          strict=True):
        payment = db.session.scalar(select(Payment).where(Payment.invoice_id == invoice.id))
        amount = expected[0] or attempt.amount
        recorded = (payment.amount, payment.currency, payment.mismatch, payment.refund_due)
        assert recorded == (amount, *expected[1:], amount)
        assert invoice.status == InvoiceStatus.OPEN and invoice.amount_paid == 0 and attempt.status == "succeeded"


def test_adyen_success_of_another_amount_or_currency_is_owed_back_and_malformed_is_400(
        client, app, session, configure, adyen):
    from Adyen import util

    from tests.support.adyen_server import notification_body

    creditor = make_creditor("NO")
    settings = {"api_key": ADYEN_KEY, "merchant_account": "FjordlysECOM", "hmac_key": ADYEN_HMAC,
                "client_key": "test_CLIENT", "checkout_base_url": adyen.base_url}
    configure(creditor, "adyen", ["card"], settings, flow="link")
    invoices = [make_invoice(creditor) for _ in range(2)]
    attempts = []
    for invoice in invoices:
        start(client, open_bill(client, app, invoice), "adyen")
        attempt = db.session.scalar(select(PaymentAttempt).where(PaymentAttempt.invoice_id == invoice.id))
        adyen.complete(attempt.provider_ref)
        attempts.append(attempt)
    endpoint = f"/webhooks/adyen/{creditor.slug}"

    def signed(attempt, **changes) -> bytes:
        item = {**adyen.notification_item(attempt.provider_ref, ADYEN_HMAC), **changes}
        item["additionalData"] = {"hmacSignature": util.generate_notification_sig(item, ADYEN_HMAC).decode()}
        return notification_body(item)

    for name, changes in {"value a string": {"amount": {"value": "abc", "currency": "NOK"}},
                          "value 2^63": {"amount": {"value": 2 ** 63, "currency": "NOK"}},
                          "currency a number": {"amount": {"value": 100, "currency": 578}},
                          "reference too long": {"merchantReference": "r" * 300}}.items():
        answer = client.post(endpoint, data=signed(attempts[0], **changes), content_type="application/json")
        assert answer.status_code == 400, name
    assert db.session.scalar(select(func.count(Payment.id))) == 0

    cent = signed(attempts[0], amount={"value": 1, "currency": "NOK"})
    assert client.post(endpoint, data=cent, content_type="application/json").text == "[accepted]"
    euros = signed(attempts[1], amount={"value": attempts[1].amount, "currency": "EUR"})
    assert client.post(endpoint, data=euros, content_type="application/json").text == "[accepted]"
    for invoice, attempt, expected in zip(invoices, attempts, [(1, "NOK", "amount"), (None, "EUR", "currency")],
                                          strict=True):
        payment = db.session.scalar(select(Payment).where(Payment.invoice_id == invoice.id))
        amount = expected[0] or attempt.amount
        recorded = (payment.amount, payment.currency, payment.mismatch, payment.refund_due)
        assert recorded == (amount, *expected[1:], amount)
        assert invoice.status == InvoiceStatus.OPEN and invoice.amount_paid == 0
