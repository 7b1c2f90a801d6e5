"""A provider's own test keys (issue 17, test mode): a creditor stores them in the console beside the live
ones; a test bill is offered that provider in test mode and pays with the test keys alone, a live bill with
the live keys alone. Proven against the local Adyen server (which accepts exactly one API key, so a request
with the other set's key is refused) and localstripe (the publishable key on the pay step, and the signed
notifications, which only the right set's webhook secret verifies)."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from app.billing.models import InvoiceStatus
from app.errors import InvalidData
from app.extensions import db
from app.payments import providers
from app.payments.models import CreditorGateway, PaymentAttempt
from tests.factories import make_creditor, make_invoice
from tests.functional.agents import EN
from tests.functional.helpers import open_bill
from tests.functional.test_console import entries, form_post, sign_in
from tests.functional.test_provider_payments import start, stripe_notification
from tests.support.adyen_server import AdyenServer
from tests.support.localstripe_server import LocalStripe

LIVE_ADYEN = {"api_key": "adyen_live_set_key", "hmac_key": "11" * 32, "merchant_account": "FjordlysECOM",
              "client_key": "test_LIVESETCLIENT", "environment": "test"}  # the live set of a sandbox instance
TEST_ADYEN = {"api_key": "adyen_test_set_key", "hmac_key": "22" * 32, "merchant_account": "FjordlysTEST",
              "client_key": "test_TESTSETCLIENT", "environment": "test"}
LIVE_STRIPE = {"secret_key": "sk_test_" + "L" * 24, "publishable_key": "pk_test_" + "L" * 24,
               "webhook_secret": "whsec_" + "L" * 32}
TEST_STRIPE = {"secret_key": "sk_test_" + "T" * 24, "publishable_key": "pk_test_" + "T" * 24,
               "webhook_secret": "whsec_" + "T" * 32}


@pytest.fixture
def gateways(app, monkeypatch):
    monkeypatch.setitem(app.config, "PAYMENT_GATEWAYS", {})
    app.extensions.pop("payment_gateways", None)
    app.extensions.pop("creditor_ids", None)
    yield app.config["PAYMENT_GATEWAYS"]
    app.extensions.pop("payment_gateways", None)
    app.extensions.pop("creditor_ids", None)


@pytest.fixture
def creditor(app, session):
    creditor = make_creditor("NO")
    db.session.commit()
    return creditor


def payments_page(creditor) -> str:
    return f"/backoffice/console/{creditor.id}/payments"


def store_keys(client, creditor, provider, methods, live, test, flow_form=None):
    page = payments_page(creditor)
    assert form_post(client, page, f"{page}/{provider}", {"methods": methods, **live, **(flow_form or {})}
                     ).status_code == 303
    saved = form_post(client, page, f"{page}/{provider}/test", test)
    assert saved.status_code == 303, saved.text


def bills(app, creditor):
    with app.test_request_context():
        live, test = make_invoice(creditor), make_invoice(creditor, livemode=False)
        db.session.commit()
    return live, test


def offered(client, url) -> set[str]:
    return set(re.findall(r'name="provider" value="(\w+)"', client.get(url, headers=EN).text))


def test_adyen_a_test_bill_pays_with_the_test_keys_and_a_live_bill_with_the_live_keys(app, client, creditor,
                                                                                         gateways):
    agent = sign_in(app, client, creditor)
    with AdyenServer(api_key=TEST_ADYEN["api_key"]) as adyen:  # knows the test set's key only
        gateways[creditor.slug] = {"adyen": {"checkout_base_url": adyen.base_url}}
        store_keys(client, creditor, "adyen", ["card"], LIVE_ADYEN, TEST_ADYEN)
        db.session.execute(CreditorGateway.__table__.update().values(flow="link"))
        db.session.commit()
        [saved] = entries(agent, "console_test_keys_saved")
        assert saved.detail["keys_changed"] == sorted(saved.detail["keys_changed"], key=list(TEST_ADYEN).index)
        assert TEST_ADYEN["api_key"] not in str(saved.detail)
        page = client.get(payments_page(creditor), headers=EN).text
        assert "Stored: ••••_key" in page and TEST_ADYEN["api_key"] not in page
        assert "Adyen accepted the test keys." in form_post(client, payments_page(creditor),
                                                            f"{payments_page(creditor)}/adyen/test/check").text
        assert "Adyen did not accept the keys" in form_post(client, payments_page(creditor),
                                                            f"{payments_page(creditor)}/adyen/check").text

        live, test = bills(app, creditor)
        customer = app.test_client()
        test_url = open_bill(customer, app, test)
        assert offered(customer, test_url) == {"adyen", "simulator"}
        started = start(customer, test_url, "adyen")
        assert started.status_code == 303 and started.headers["Location"].startswith(adyen.base_url)
        attempt = db.session.scalar(select(PaymentAttempt).where(PaymentAttempt.invoice_id == test.id))
        sent = [r for r in adyen.requests if r.path.endswith("/paymentLinks")][-1].body
        assert sent["merchantAccount"] == TEST_ADYEN["merchant_account"]

        adyen.complete(attempt.provider_ref)
        signed_by_test = adyen.notification(attempt.provider_ref, TEST_ADYEN["hmac_key"])
        assert customer.post(f"/webhooks/adyen/{creditor.slug}", data=signed_by_test,
                             content_type="application/json").status_code == 400  # the live keys do not verify it
        assert test.status != InvoiceStatus.PAID
        answer = customer.post(f"/webhooks/adyen/{creditor.slug}/test", data=signed_by_test,
                               content_type="application/json")
        assert answer.text == "[accepted]"
        db.session.refresh(test)
        assert test.status == InvoiceStatus.PAID

        live_client = app.test_client()
        live_url = open_bill(live_client, app, live)
        assert offered(live_client, live_url) == {"adyen"}  # no simulator: the live keys are in force
        refused = start(live_client, live_url, "adyen")  # the server knows only the test key: 401
        assert refused.status_code == 503

    with AdyenServer(api_key=LIVE_ADYEN["api_key"]) as adyen:  # now the live set's key only
        gateways[creditor.slug] = {"adyen": {"checkout_base_url": adyen.base_url}}
        app.extensions.pop("payment_gateways", None)
        live_client = app.test_client()
        live_url = open_bill(live_client, app, live)
        started = start(live_client, live_url, "adyen")
        assert started.status_code == 303 and started.headers["Location"].startswith(adyen.base_url)
        sent = [r for r in adyen.requests if r.path.endswith("/paymentLinks")][-1].body
        assert sent["merchantAccount"] == LIVE_ADYEN["merchant_account"]
        attempt = db.session.scalar(select(PaymentAttempt).where(PaymentAttempt.invoice_id == live.id))
        adyen.complete(attempt.provider_ref)
        signed_by_live = adyen.notification(attempt.provider_ref, LIVE_ADYEN["hmac_key"])
        assert live_client.post(f"/webhooks/adyen/{creditor.slug}/test", data=signed_by_live,
                                content_type="application/json").status_code == 400
        assert live_client.post(f"/webhooks/adyen/{creditor.slug}", data=signed_by_live,
                                content_type="application/json").text == "[accepted]"
        db.session.refresh(live)
        assert live.status == InvoiceStatus.PAID


def test_stripe_each_mode_pays_with_its_own_keys(app, client, creditor, gateways):
    sign_in(app, client, creditor)
    with LocalStripe() as server:
        gateways[creditor.slug] = {"stripe": {"api_base": server.api_base}}  # the address, no keys
        store_keys(client, creditor, "stripe", ["card"], LIVE_STRIPE, TEST_STRIPE)
        live, test = bills(app, creditor)
        for invoice, mine, other in ((test, TEST_STRIPE, LIVE_STRIPE), (live, LIVE_STRIPE, TEST_STRIPE)):
            customer = app.test_client()
            url = open_bill(customer, app, invoice)
            started = start(customer, url, "stripe")
            assert started.status_code == 303
            step = customer.get(started.headers["Location"], headers=EN).text
            assert mine["publishable_key"] in step and other["publishable_key"] not in step
            attempt = db.session.scalar(select(PaymentAttempt).where(PaymentAttempt.invoice_id == invoice.id))
            intent = {"id": attempt.provider_ref, "object": "payment_intent", "status": "succeeded",
                      "amount": invoice.balance, "amount_received": invoice.balance, "currency": "nok",
                      "metadata": {"attempt": attempt.public_ref}, "latest_charge": None}
            right, wrong = ("/test", "") if invoice is test else ("", "/test")
            body, headers = stripe_notification(intent, mine["webhook_secret"])
            assert customer.post(f"/webhooks/stripe/{creditor.slug}{wrong}", data=body,  # the other set's address
                                 headers=headers).status_code == 400
            forged, forged_headers = stripe_notification(intent, other["webhook_secret"])
            assert customer.post(f"/webhooks/stripe/{creditor.slug}{right}", data=forged,  # the other set's secret
                                 headers=forged_headers).status_code == 400
            # genuine for the other set's address, but about a bill of this mode: it touches no bill
            other_address = customer.post(f"/webhooks/stripe/{creditor.slug}{wrong}", data=forged,
                                          headers=forged_headers)
            assert other_address.status_code == 200 and other_address.json["outcomes"] == ["unknown_payment"]
            db.session.refresh(invoice)
            assert invoice.status != InvoiceStatus.PAID
            assert customer.post(f"/webhooks/stripe/{creditor.slug}{right}", data=body,
                                 headers=headers).status_code == 200
            db.session.refresh(invoice)
            assert invoice.status == InvoiceStatus.PAID


@pytest.mark.parametrize(("provider", "given", "field"), [
    ("stripe", {**TEST_STRIPE, "secret_key": "sk_live_" + "x" * 24}, "secret_key"),
    ("stripe", {**TEST_STRIPE, "publishable_key": "pk_live_" + "x" * 24}, "publishable_key"),
    ("adyen", {**TEST_ADYEN, "environment": "live"}, "environment"),
    ("adyen", {**TEST_ADYEN, "client_key": "live_ABCDEFGHIJ"}, "client_key"),
])
def test_a_live_key_among_the_test_keys_is_refused_and_nothing_is_stored(app, client, creditor, gateways,
                                                                         provider, given, field):
    sign_in(app, client, creditor)
    page = payments_page(creditor)
    form_post(client, page, f"{page}/{provider}", {"methods": ["card"]})
    answer = form_post(client, page, f"{page}/{provider}/test", given)
    assert answer.status_code == 422
    assert f'id="t-{provider}-{field}-error"' in answer.text and "This is a live key." in answer.text
    db.session.expire_all()
    choice = db.session.scalar(select(CreditorGateway).where(CreditorGateway.creditor_id == creditor.id))
    assert choice.test_credentials_encrypted is None


def test_test_keys_need_the_provider_offered_and_in_production_live_keys_are_live(app, client, creditor, gateways,
                                                                                 monkeypatch):
    sign_in(app, client, creditor)
    page = payments_page(creditor)
    answer = form_post(client, page, f"{page}/stripe/test", TEST_STRIPE)
    assert answer.status_code == 422 and "Please offer Stripe first" in answer.text
    with app.test_request_context():
        providers.offer_gateway(creditor, "stripe", ["card"])
        monkeypatch.setitem(app.config, "PORTAL_ENV", "production")
        with pytest.raises(InvalidData) as refused:
            providers.set_credentials(creditor, "stripe", TEST_STRIPE)  # as the live set, in production
        assert refused.value.errors == {"secret_key": "test_key", "publishable_key": "test_key"}
        db.session.rollback()
