"""Paying from the bill page with the test-mode simulator: start, hosted page, notification, return."""

import json
import re
import time

from sqlalchemy import func, select

from app.billing.models import InvoiceStatus
from app.extensions import db
from app.payments.gateways.simulator import SIGNATURE_HEADER, sign
from app.payments.models import Payment, PaymentAttempt, WebhookEvent
from app.payments.providers import simulator_secret
from tests.factories import make_creditor, make_invoice
from tests.functional.helpers import open_bill

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def start(client, url, **form):
    page = client.get(url)
    token = CSRF.search(page.text).group(1)
    return client.post(f"{url}/pay", data={"csrf_token": token, "provider": "simulator", **form})


def choose(client, hosted, outcome):
    page = client.get(hosted, headers={"Accept-Language": "en"})
    assert page.status_code == 200 and "Test mode" in page.text
    return client.post(hosted, data={"csrf_token": CSRF.search(page.text).group(1), "outcome": outcome})


def test_pay_with_the_simulator_end_to_end(client, app, session):
    invoice = make_invoice(make_creditor("NO"), lines=2)
    url = open_bill(client, app, invoice)
    started = start(client, url)
    assert started.status_code == 303
    hosted = started.headers["Location"].replace(app.config["PORTAL_BASE_URL"], "")
    assert hosted.startswith("/simulator/sim_")
    back = choose(client, hosted, "succeed")
    assert back.status_code == 303 and "/paid/" in back.headers["Location"]
    result = client.get(back.headers["Location"].replace(app.config["PORTAL_BASE_URL"], ""),
                        headers={"Accept-Language": "en"})
    assert result.status_code == 200 and "received your payment" in result.text
    assert invoice.status == InvoiceStatus.PAID and invoice.balance == 0
    # the notification and the return page both said "succeeded": one payment
    assert db.session.scalar(select(func.count(Payment.id)).where(Payment.invoice_id == invoice.id)) == 1
    outcome = select(WebhookEvent.outcome).where(WebhookEvent.provider_ref == hosted.rsplit("/", 1)[1])
    assert db.session.scalar(outcome) in ("applied", "unchanged")
    page = client.get(url, headers={"Accept-Language": "en"})
    assert "Pay now" not in page.text


def test_double_tap_and_two_tabs_make_one_attempt(client, app, session):
    invoice = make_invoice(make_creditor("NO"))
    url = open_bill(client, app, invoice)
    first, second = start(client, url), start(client, url)
    assert first.headers["Location"] == second.headers["Location"]
    assert db.session.scalar(select(func.count(PaymentAttempt.id)).where(PaymentAttempt.invoice_id == invoice.id)) == 1


def test_declined_then_paid(client, app, session):
    invoice = make_invoice(make_creditor("DE"))
    url = open_bill(client, app, invoice)
    hosted = start(client, url).headers["Location"].replace(app.config["PORTAL_BASE_URL"], "")
    back = choose(client, hosted, "decline")
    result = client.get(back.headers["Location"].replace(app.config["PORTAL_BASE_URL"], ""),
                        headers={"Accept-Language": "en"})
    assert "not completed" in result.text and invoice.status == InvoiceStatus.OPEN
    again = start(client, url).headers["Location"].replace(app.config["PORTAL_BASE_URL"], "")
    assert again != hosted  # a failed attempt is not reused
    choose(client, again, "succeed")
    assert invoice.status == InvoiceStatus.PAID


def test_the_return_page_asks_the_provider_not_the_query_string(client, app, session):
    invoice = make_invoice(make_creditor("NO"))
    url = open_bill(client, app, invoice)
    start(client, url).headers["Location"].replace(app.config["PORTAL_BASE_URL"], "")
    attempt = db.session.scalar(select(PaymentAttempt).where(PaymentAttempt.invoice_id == invoice.id))
    page = client.get(f"{url}/paid/{attempt.public_ref}?status=succeeded&redirect_status=succeeded")
    assert page.status_code == 200 and invoice.status == InvoiceStatus.OPEN and attempt.status == "pending"
    assert client.get(f"{url}/paid/not-an-attempt").status_code == 404


def test_webhook_signature_is_verified(client, app, session):
    creditor = make_creditor("NO")
    invoice = make_invoice(creditor)
    url = open_bill(client, app, invoice)
    hosted = start(client, url).headers["Location"]
    ref = hosted.rsplit("/", 1)[1]
    body = json.dumps({"id": "evt_forged", "type": "payment.succeeded", "created": int(time.time()),
                       "data": {"ref": ref, "status": "succeeded", "amount": invoice.balance,
                                "currency": "NOK"}}).encode()
    endpoint = f"/webhooks/simulator/{creditor.slug}"
    with app.app_context():
        secret = simulator_secret(creditor)
    for headers in ({}, {SIGNATURE_HEADER: sign("wrong-secret", body)},
                    {SIGNATURE_HEADER: sign(secret, body, int(time.time()) - 600)},
                    {SIGNATURE_HEADER: sign(secret, body + b" ")}):
        answer = client.post(endpoint, data=body, headers={"Content-Type": "application/json", **headers})
        assert answer.status_code == 400
    assert invoice.status == InvoiceStatus.OPEN
    signed = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(secret, body)}
    good = client.post(endpoint, data=body, headers=signed)
    assert good.status_code == 200 and good.json["outcomes"] == ["applied"]
    again = client.post(endpoint, data=body, headers=signed)
    assert again.status_code == 200 and again.json["outcomes"] == ["duplicate"]
    assert invoice.status == InvoiceStatus.PAID
    assert client.post("/webhooks/simulator/no-such-creditor", data=body).status_code == 404


def test_pay_needs_the_grant_and_csrf(client, app, session):
    invoice = make_invoice(make_creditor("NO"))
    assert client.post(f"/b/{invoice.public_id}/pay", data={"provider": "simulator"}).status_code in (400, 404)
    url = open_bill(client, app, invoice)
    assert client.post(f"{url}/pay", data={"provider": "simulator"}).status_code == 400  # no CSRF token
    assert invoice.status == InvoiceStatus.OPEN


def test_unknown_provider_or_bad_amount_changes_nothing(client, app, session):
    creditor = make_creditor("NO")
    creditor.allow_partial_payments, creditor.min_partial_payment = True, 5000
    invoice = make_invoice(creditor)
    db.session.commit()
    url = open_bill(client, app, invoice)
    page = client.get(url)
    token = CSRF.search(page.text).group(1)
    assert client.post(f"{url}/pay", data={"csrf_token": token, "provider": "nope"}).status_code == 422
    for amount in ("10", "abc", "1,2345", str(invoice.balance)):
        answer = client.post(f"{url}/pay", data={"csrf_token": token, "provider": "simulator", "amount": amount})
        assert answer.status_code == 422, amount
    assert db.session.scalar(select(func.count(PaymentAttempt.id)).where(PaymentAttempt.invoice_id == invoice.id)) == 0
    part = client.post(f"{url}/pay", data={"csrf_token": token, "provider": "simulator", "amount": "60,00"})
    assert part.status_code == 303
    assert db.session.scalar(select(PaymentAttempt.amount).where(PaymentAttempt.invoice_id == invoice.id)) == 6000
