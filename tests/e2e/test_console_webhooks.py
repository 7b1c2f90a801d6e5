"""Issue 17's end-to-end test, in Chromium: a creditor admin signs in with the second factor, uploads a
logo, sets colours and adds a webhook endpoint for `payment.succeeded` pointing at a real HTTP receiver
on 127.0.0.1, and copies the signing secret the console shows once; a customer opens the bill and pays;
the outbox dispatcher runs; the receiver gets `payment.succeeded`, and its Standard Webhooks signature
verifies with that secret (with the `standardwebhooks` package and by hand). The console then shows the
delivery in the endpoint's log. Every console page on the way is axe-clean and fits a phone's width."""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import re

from PIL import Image
from playwright.sync_api import expect
from standardwebhooks import Webhook

from app.backoffice.services import create_agent
from app.billing.models import Invoice, InvoiceStatus
from app.extensions import db
from app.links.services import get_signer, issue_link
from tests.e2e.flows import checked, deliver, enrol_and_sign_in
from tests.support.partner_receiver import PartnerReceiver

PASSWORD = "correct horse battery staple"


def _logo(path) -> str:
    out = io.BytesIO()
    Image.new("RGB", (120, 40), (11, 85, 99)).save(out, "PNG")
    path.write_bytes(out.getvalue())
    return str(path)


def _signed_by_hand(secret: str, webhook_id: str, timestamp: str, body: bytes) -> str:
    """Standard Webhooks' v1: base64 HMAC-SHA256 of "id.timestamp.body" under the secret after "whsec_"."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    return "v1," + base64.b64encode(hmac.new(key, f"{webhook_id}.{timestamp}.".encode() + body,
                                             hashlib.sha256).digest()).decode()


def test_a_creditor_admin_brands_adds_a_webhook_and_receives_the_payment_signed(live_server, open_page, tmp_path):
    from tests.factories import make_creditor, make_invoice

    app = live_server.app
    email = "hooks-admin@example.test"
    with app.test_request_context():
        creditor = make_creditor("NO")
        invoice = make_invoice(creditor)
        create_agent(email, "Hook Admin", PASSWORD, creditor, "creditor_admin")
        db.session.commit()
        invoice_id, number, balance = invoice.id, invoice.number, invoice.balance
        link = issue_link(invoice, signer=get_signer(), base_url=live_server.url, actor="test", channel="sms",
                          ttl_days=30)
        db.session.commit()
        bill_url = link.url
        db.session.remove()

    with PartnerReceiver(secrets=[], path="/hooks") as receiver:
        # the creditor admin: sign in with the second factor, brand the bill page, add the endpoint
        page, watch = open_page("mobile")
        enrol_and_sign_in(page, live_server, email, PASSWORD)

        page.get_by_role("link", name="Console").click()
        page.set_input_files("#f-logo", _logo(tmp_path / "logo.png"))
        page.get_by_role("button", name="Upload").click()
        expect(page.get_by_text("The logo is saved.")).to_be_visible()
        page.fill("#f-brand_primary", "#0b5563")
        page.fill("#f-brand_accent", "#8a2be2")
        page.get_by_role("button", name="Save").click()
        expect(page.get_by_text("The brand is saved.")).to_be_visible()

        page.get_by_role("link", name="Webhooks").click()
        expect(page.get_by_role("heading", name="Webhooks", exact=True)).to_be_visible()
        checked(page, "the console's webhooks at 360 px")
        page.fill("#f-url", receiver.url)
        page.fill("#f-description", "ERP")
        page.get_by_label("Only the types checked below").check()
        page.get_by_role("button", name="Add the endpoint").click()
        # "only these" with none checked: refused next to the filter, nothing added
        expect(page.locator("#t-types-error")).to_contain_text("Please choose at least one event type")
        page.get_by_label("Only the types checked below").check()
        page.locator("input[name=types][value='payment.succeeded']").check()
        page.get_by_role("button", name="Add the endpoint").click()
        secret = page.locator("#new-secret").inner_text().strip()
        assert re.fullmatch(r"whsec_[A-Za-z0-9+/]{43}=", secret), secret
        checked(page, "the new endpoint's secret at 360 px")
        page.get_by_role("link", name="The endpoint's page").click()
        expect(page.locator("dl.facts")).to_contain_text("payment.succeeded")
        assert secret not in page.content()  # shown once
        endpoint_page = page.url
        receiver.secrets.append(secret)  # what the creditor's system was given: the secret as the console showed it

        # the customer opens the bill and pays
        customer, customer_watch = open_page("mobile")
        customer.goto(bill_url)
        assert customer.evaluate("getComputedStyle(document.documentElement)"
                                 ".getPropertyValue('--brand').trim()") == "#0b5563"
        customer.get_by_role("button", name=re.compile("test mode")).click()
        customer.get_by_role("button", name="Pay successfully").click()
        expect(customer.get_by_role("heading", level=1)).to_contain_text("received your payment")
        with app.app_context():
            assert db.session.get(Invoice, invoice_id).status == InvoiceStatus.PAID
            db.session.remove()

        # the outbox is dispatched: the receiver gets payment.succeeded, signed with that secret
        deliver(live_server, invoice_id)
        assert not receiver.refused
        [got] = [d for d in receiver.deliveries if d.body["data"].get("invoice", {}).get("number") == number]
        assert got.body["type"] == "payment.succeeded" and got.body["id"].startswith("evt_")
        assert got.body["data"]["payment"]["amount"] == balance and got.body["data"]["invoice"]["status"] == "paid"
        headers = {"webhook-id": got.webhook_id, "webhook-timestamp": got.timestamp,
                   "webhook-signature": got.signature}
        assert Webhook(secret).verify(got.raw, headers) == got.body
        assert got.signature == _signed_by_hand(secret, got.webhook_id, got.timestamp, got.raw)

        # and the console's delivery log shows it
        page.goto(endpoint_page)
        row = page.locator("tbody tr").first
        expect(row).to_contain_text("payment.succeeded")
        expect(row).to_contain_text("Delivered")
        expect(row).to_contain_text("HTTP 202")
        checked(page, "the endpoint's delivery log at 360 px")
        assert not watch.page_errors and not customer_watch.page_errors
        assert not page.evaluate("window.__cspViolations")
