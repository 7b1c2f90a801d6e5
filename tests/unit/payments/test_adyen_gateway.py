"""The Adyen adapter against a local stand-in for the Checkout API (v71), through the real SDK."""

from __future__ import annotations

import json
import socket

import pytest

from app.payments.gateways.adyen import ADYEN_WEB_VERSION, AdyenConfig, AdyenGateway
from app.payments.gateways.base import CheckoutRequest, GatewayError, Party, PaymentStatus, WebhookError
from tests.support.adyen_server import AdyenServer, notification_body

API_KEY = "AQE_test_key_" + "s" * 40
HMAC_KEY = "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056"
OTHER_HMAC_KEY = "11111111111111111111111111111111111111111111111111111111111111AA"


@pytest.fixture
def adyen():
    with AdyenServer(api_key=API_KEY) as server:
        yield server


def gateway(server: AdyenServer, flow: str = "session", api_key: str = API_KEY, **overrides) -> AdyenGateway:
    return AdyenGateway(AdyenConfig(
        api_key=api_key, merchant_account="FjordlysECOM", hmac_key=HMAC_KEY, client_key="test_CLIENTKEY",
        checkout_base_url=server.base_url, flow=flow, **overrides,
    ))


def checkout_request(**overrides) -> CheckoutRequest:
    fields = {
        "attempt_ref": "att_7QK2M9", "amount": 125050, "currency": "NOK", "invoice_number": "2026-10001",
        "payment_reference": "1234567890128", "description": "2026-10001 · Fjordlys Energi AS",
        "payer": Party(name="Kari Nordmann", email="kari@example.no", phone="+4791234567", country="NO"),
        "methods": ("card", "vipps", "klarna", "bank_transfer"), "locale": "nb",
        "return_url": "https://portal.example/pay/return/att_7QK2M9", "cancel_url": "https://portal.example/b/x",
        "idempotency_key": "attempt-att_7QK2M9",
        "metadata": {"invoice_number": "2026-10001", "payment_reference": "1234567890128"},
    }
    return CheckoutRequest(**{**fields, **overrides})


def last_post(server: AdyenServer, path: str):
    return [r for r in server.requests if r.method == "POST" and r.path == path][-1]


class TestCreate:
    def test_session_carries_amount_reference_shopper_and_idempotency_key(self, adyen):
        checkout = gateway(adyen).create_checkout(checkout_request())

        sent = last_post(adyen, "/v71/sessions")
        assert sent.headers["idempotency-key"] == "attempt-att_7QK2M9"
        assert sent.headers["x-api-key"] == API_KEY
        assert sent.body["merchantAccount"] == "FjordlysECOM"
        assert sent.body["amount"] == {"value": 125050, "currency": "NOK"}
        assert sent.body["reference"] == "att_7QK2M9"
        assert sent.body["returnUrl"] == "https://portal.example/pay/return/att_7QK2M9"
        assert sent.body["countryCode"] == "NO"
        assert sent.body["shopperLocale"] == "nb-NO"
        assert sent.body["shopperName"] == {"firstName": "Kari", "lastName": "Nordmann"}
        assert sent.body["shopperEmail"] == "kari@example.no"
        assert sent.body["telephoneNumber"] == "+4791234567"
        assert sent.body["allowedPaymentMethods"] == ["scheme", "vipps", "klarna", "klarna_account", "klarna_paynow"]
        assert sent.body["metadata"] == {"invoice_number": "2026-10001", "payment_reference": "1234567890128"}
        assert sent.body["shopperStatement"] == "Invoice 2026-10001"

        session = adyen.sessions[checkout.provider_ref]
        assert checkout.provider == "adyen" and checkout.status == PaymentStatus.PENDING
        assert checkout.provider_ref.startswith("CS") and checkout.redirect_url is None
        assert checkout.client_config == {
            "client_key": "test_CLIENTKEY", "session_id": checkout.provider_ref,
            "session_data": session["sessionData"], "environment": "test", "locale": "nb-NO",
            "js_url": f"https://checkoutshopper-test.cdn.adyen.com/checkoutshopper/sdk/{ADYEN_WEB_VERSION}/adyen.js",
            "css_url": f"https://checkoutshopper-test.cdn.adyen.com/checkoutshopper/sdk/{ADYEN_WEB_VERSION}/adyen.css",
        }
        assert checkout.expires_at is not None and checkout.expires_at.tzinfo is not None

    def test_link_carries_the_same_prefill_and_redirects(self, adyen):
        checkout = gateway(adyen, flow="link").create_checkout(checkout_request(locale="de", payer=Party(name="Cher")))

        sent = last_post(adyen, "/v71/paymentLinks")
        assert sent.headers["idempotency-key"] == "attempt-att_7QK2M9"
        assert sent.body["reference"] == "att_7QK2M9"
        assert sent.body["amount"] == {"value": 125050, "currency": "NOK"}
        assert sent.body["description"] == "2026-10001 · Fjordlys Energi AS"
        assert sent.body["shopperLocale"] == "de-DE"
        assert "shopperName" not in sent.body and "shopperEmail" not in sent.body  # nothing to pre-fill
        assert checkout.provider_ref.startswith("PL")
        assert checkout.redirect_url == adyen.links[checkout.provider_ref]["url"]
        assert checkout.client_config == {}

    def test_same_idempotency_key_twice_makes_one_session(self, adyen):
        first = gateway(adyen).create_checkout(checkout_request())
        second = gateway(adyen).create_checkout(checkout_request())

        assert first == second
        assert len(adyen.sessions) == 1

    def test_same_key_for_another_request_is_refused(self, adyen):
        gateway(adyen).create_checkout(checkout_request())
        with pytest.raises(GatewayError) as error:
            gateway(adyen).create_checkout(checkout_request(amount=99))
        assert error.value.code == "704" and not error.value.retryable
        assert len(adyen.sessions) == 1

    def test_missing_required_field_is_adyens_422(self, adyen):
        with pytest.raises(GatewayError) as error:
            gateway(adyen).create_checkout(checkout_request(attempt_ref=""))
        assert error.value.code == "100" and "reference" in str(error.value)
        assert not error.value.retryable

    @pytest.mark.parametrize("api_key", ["", "wrong-key"])
    def test_missing_or_wrong_api_key(self, adyen, api_key):
        with pytest.raises(GatewayError) as error:
            gateway(adyen, api_key=api_key).create_checkout(checkout_request())
        assert not error.value.retryable
        assert API_KEY not in str(error.value)

    def test_unreachable_is_retryable(self):
        with socket.socket() as sock:  # a port nobody listens on
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        config = AdyenConfig(api_key=API_KEY, merchant_account="M", hmac_key=HMAC_KEY, client_key="c",
                             checkout_base_url=f"http://127.0.0.1:{port}")
        with pytest.raises(GatewayError) as error:
            AdyenGateway(config).create_checkout(checkout_request())
        assert error.value.retryable and API_KEY not in str(error.value)

    def test_secrets_stay_out_of_the_config_repr(self):
        config = AdyenConfig(api_key=API_KEY, merchant_account="M", hmac_key=HMAC_KEY, client_key="c")
        assert API_KEY not in repr(config) and HMAC_KEY not in repr(config)

    def test_live_needs_the_accounts_live_url(self):
        with pytest.raises(ValueError):
            AdyenGateway(AdyenConfig(api_key=API_KEY, merchant_account="M", hmac_key=HMAC_KEY, client_key="c",
                                     environment="live"))


class TestStatus:
    def test_link_paid(self, adyen):
        adyens = gateway(adyen, flow="link")
        ref = adyens.create_checkout(checkout_request()).provider_ref
        assert adyens.fetch_status(ref).status == PaymentStatus.PENDING

        adyen.complete(ref)
        status = adyens.fetch_status(ref)

        assert status.status == PaymentStatus.SUCCEEDED
        assert (status.amount_received, status.currency) == (125050, "NOK")
        assert [r.path for r in adyen.requests if r.method == "GET"] == [f"/v71/paymentLinks/{ref}"] * 2

    def test_session_with_the_session_result_from_the_return_page(self, adyen):
        adyens = gateway(adyen)
        ref = adyens.create_checkout(checkout_request()).provider_ref
        completion = adyen.complete(ref)  # its sessionResult has "+", "/" and "=": sent encoded

        status = adyens.fetch_status(ref, session_result=completion.session_result)

        assert status.status == PaymentStatus.SUCCEEDED
        assert adyen.requests[-1].query == {"sessionResult": [completion.session_result]}
        back = {"sessionId": ref, "sessionResult": completion.session_result}  # what the return URL carries
        assert adyens.status_on_return(ref, back).status == PaymentStatus.SUCCEEDED
        # by the id, not the flow
        assert gateway(adyen, flow="link").status_on_return(ref, back).status == PaymentStatus.SUCCEEDED

    def test_refused_session(self, adyen):
        adyens = gateway(adyen)
        ref = adyens.create_checkout(checkout_request()).provider_ref
        completion = adyen.complete(ref, success=False)
        assert adyens.fetch_status(ref, session_result=completion.session_result).status == PaymentStatus.FAILED

    def test_session_without_session_result_waits_for_the_notification(self, adyen):
        adyens = gateway(adyen)
        ref = adyens.create_checkout(checkout_request()).provider_ref
        adyen.complete(ref)
        requests_before = len(adyen.requests)

        assert adyens.fetch_status(ref).status == PaymentStatus.PENDING
        assert len(adyen.requests) == requests_before


class TestWebhook:
    @pytest.fixture
    def paid(self, adyen):
        adyens = gateway(adyen)
        ref = adyens.create_checkout(checkout_request()).provider_ref
        completion = adyen.complete(ref)
        return adyens, ref, completion

    def test_authorisation_succeeded(self, adyen, paid):
        adyens, ref, completion = paid
        [event] = adyens.parse_webhook(adyen.notification(ref, HMAC_KEY), {})

        assert event.provider == "adyen" and event.event_type == "AUTHORISATION"
        assert event.event_id == f"{completion.psp_reference}:AUTHORISATION:true"
        assert event.provider_ref == "att_7QK2M9"  # our attempt ref, echoed as merchantReference
        assert event.status == PaymentStatus.SUCCEEDED
        assert (event.amount, event.currency) == (125050, "NOK")
        assert event.payment_id == completion.psp_reference
        assert event.method == "card"
        assert event.occurred_at is not None
        assert event.payload["pspReference"] == completion.psp_reference

    def test_authorisation_refused(self, adyen):
        adyens = gateway(adyen)
        ref = adyens.create_checkout(checkout_request()).provider_ref
        completion = adyen.complete(ref, success=False)
        [event] = adyens.parse_webhook(adyen.notification(ref, HMAC_KEY), {})
        assert event.status == PaymentStatus.FAILED
        assert event.event_id == f"{completion.psp_reference}:AUTHORISATION:false"
        assert event.failure_reason == "Refused"

    def test_authorisation_refused_names_its_refusal_reason(self, adyen):
        adyens = gateway(adyen)
        ref = adyens.create_checkout(checkout_request()).provider_ref
        adyen.complete(ref, success=False, refusal_reason="Not enough balance")
        [event] = adyens.parse_webhook(adyen.notification(ref, HMAC_KEY), {})
        assert (event.status, event.failure_reason) == (PaymentStatus.FAILED, "Not enough balance")

    def test_several_items_cancellation_and_codes_we_only_store(self, adyen, paid):
        adyens, ref, completion = paid
        body = notification_body(
            adyen.notification_item(ref, HMAC_KEY),
            adyen.notification_item(ref, HMAC_KEY, event_code="CANCELLATION", success=True),
            adyen.notification_item(ref, HMAC_KEY, event_code="REFUND"),
            adyen.notification_item(ref, HMAC_KEY, event_code="SOMETHING_NEW"),
        )
        events = adyens.parse_webhook(body, {})

        assert [(e.event_type, e.status) for e in events] == [
            ("AUTHORISATION", PaymentStatus.SUCCEEDED), ("CANCELLATION", PaymentStatus.CANCELLED), ("REFUND", None),
            ("SOMETHING_NEW", None),
        ]
        assert events[2].payment_id == completion.psp_reference  # a refund names the payment as originalReference
        assert len({e.event_id for e in events}) == 4

    def test_one_tampered_item_rejects_the_whole_notification(self, adyen, paid):
        adyens, ref, _ = paid
        body = json.loads(notification_body(
            adyen.notification_item(ref, HMAC_KEY),
            adyen.notification_item(ref, HMAC_KEY, event_code="REFUND"),
        ))
        body["notificationItems"][1]["NotificationRequestItem"]["amount"]["value"] = 1
        with pytest.raises(WebhookError):
            adyens.parse_webhook(json.dumps(body).encode(), {})

    def test_signed_with_another_key(self, adyen, paid):
        adyens, ref, _ = paid
        with pytest.raises(WebhookError):
            adyens.parse_webhook(adyen.notification(ref, OTHER_HMAC_KEY), {})

    @pytest.mark.parametrize("mutate", [
        lambda item: item["additionalData"].pop("hmacSignature"),
        lambda item: item.pop("additionalData"),
        lambda item: item["additionalData"].update(hmacSignature=""),
        lambda item: item.update(success="false"),
        lambda item: item.update(merchantReference="att_OTHER"),
    ])
    def test_missing_empty_or_broken_signature(self, adyen, paid, mutate):
        adyens, ref, _ = paid
        item = adyen.notification_item(ref, HMAC_KEY)
        mutate(item)
        with pytest.raises(WebhookError):
            adyens.parse_webhook(notification_body(item), {})

    @pytest.mark.parametrize("body", [b"", b"not json", b"[]", b'{"live": "false"}',
                                      b'{"live": "false", "notificationItems": []}'])
    def test_not_a_notification(self, adyen, body):
        with pytest.raises(WebhookError):
            gateway(adyen).parse_webhook(body, {})

    def test_live_notification_to_a_test_account(self, adyen, paid):
        adyens, ref, _ = paid
        with pytest.raises(WebhookError):
            adyens.parse_webhook(notification_body(adyen.notification_item(ref, HMAC_KEY), live=True), {})


class TestRefund:
    def test_refund_by_psp_reference(self, adyen):
        adyens = gateway(adyen)
        ref = adyens.create_checkout(checkout_request()).provider_ref
        psp = adyen.complete(ref).psp_reference

        result = adyens.refund(psp, 5000, "refund-1", currency="NOK")

        sent = last_post(adyen, f"/v71/payments/{psp}/refunds")
        assert sent.headers["idempotency-key"] == "refund-1"
        assert sent.body == {"merchantAccount": "FjordlysECOM", "amount": {"value": 5000, "currency": "NOK"},
                             "reference": "refund-1"}
        assert result.provider_ref == psp and result.amount == 5000 and result.status == "pending"
        assert result.refund_id == adyen.state.refunds[result.refund_id]["pspReference"]
        assert adyens.refund(psp, 5000, "refund-1", currency="NOK") == result  # replayed, not refunded twice
        assert len(adyen.state.refunds) == 1

    def test_refund_of_an_unknown_payment(self, adyen):
        with pytest.raises(GatewayError) as error:
            gateway(adyen).refund("ZZZZZZZZZZZZZZZZ", 5000, "refund-2", currency="NOK")
        assert error.value.code == "167" and not error.value.retryable

    def test_refund_needs_the_currency(self, adyen):
        with pytest.raises(GatewayError) as error:
            gateway(adyen).refund("ZZZZZZZZZZZZZZZZ", 5000, "refund-3")
        assert error.value.code == "currency_required"
        assert adyen.requests == []


class TestCancel:
    def test_a_link_is_expired_and_its_page_no_longer_pays(self, adyen):
        import urllib.error
        import urllib.request

        links = gateway(adyen, flow="link")
        checkout = links.create_checkout(checkout_request())
        links.cancel(checkout.provider_ref)
        patch = [r for r in adyen.requests if r.method == "PATCH"][-1]
        assert patch.path.endswith(f"/paymentLinks/{checkout.provider_ref}") and patch.body == {"status": "expired"}
        assert links.fetch_status(checkout.provider_ref).status == PaymentStatus.CANCELLED
        links.cancel(checkout.provider_ref)  # expired already: nothing is sent
        assert len([r for r in adyen.requests if r.method == "PATCH"]) == 1
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with pytest.raises(urllib.error.HTTPError) as gone:
            opener.open(checkout.redirect_url, timeout=10)
        assert gone.value.code == 410

    def test_a_paid_link_is_not_cancellable(self, adyen):
        links = gateway(adyen, flow="link")
        checkout = links.create_checkout(checkout_request())
        adyen.complete(checkout.provider_ref)
        with pytest.raises(GatewayError) as error:
            links.cancel(checkout.provider_ref)
        assert error.value.code == "not_cancellable"

    def test_a_session_cannot_be_ended_and_nothing_is_asked(self, adyen):
        sessions = gateway(adyen)
        checkout = sessions.create_checkout(checkout_request())
        before = len(adyen.requests)
        sessions.cancel(checkout.provider_ref)
        assert len(adyen.requests) == before
