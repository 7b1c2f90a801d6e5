"""Paying in a real browser: the test-mode simulator's hosted page, Stripe's Payment Element
(localstripe's stand-in for Stripe.js on 127.0.0.1), a declined card, and the bank transfer
details. Each test makes its own bill in the live server's database, so the demo bills the
other tests read stay unpaid. axe-core checks every page we serve on the way."""

from __future__ import annotations

import random
import re
from collections.abc import Iterator

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect
from sqlalchemy import select

from app.billing.models import Invoice, InvoiceStatus
from app.extensions import db
from app.links.services import get_signer, issue_link
from app.payments.models import CreditorGateway, Payment
from tests.e2e.test_bill_page import WCAG_TAGS, assert_axe_clean, assert_no_sideways_scrolling
from tests.factories import make_creditor, make_invoice
from tests.support.adyen_server import AdyenServer
from tests.support.bankfiles import camt054, credit
from tests.support.localstripe_server import LocalStripe

ADYEN_KEY, ADYEN_HMAC = "e2e_api_key", "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056"
STRIPE = {"secret_key": "sk_test_" + "e" * 24, "publishable_key": "pk_test_" + "e" * 24,
          "webhook_secret": "whsec_" + "e" * 32}


def new_bill(live_server, kind: str = "NO", provider: tuple | None = None, **creditor_fields) -> tuple[str, int, str]:
    """A fresh creditor and invoice in the live server's database: its link, invoice id and creditor slug."""
    app = live_server.app
    with app.test_request_context():
        creditor = make_creditor(kind, **creditor_fields)
        if provider:
            name, methods, settings = provider
            db.session.add(CreditorGateway(creditor_id=creditor.id, provider=name, methods=list(methods)))
            app.config["PAYMENT_GATEWAYS"][creditor.slug] = {name: settings}
        invoice = make_invoice(creditor, lines=2)
        link = issue_link(invoice, signer=get_signer(), base_url=live_server.url, actor="test", channel="sms",
                          ttl_days=30)
        db.session.commit()
        result = link.url, invoice.id, creditor.slug
        db.session.remove()
    return result


def invoice_state(live_server, invoice_id: int) -> tuple[str, int, int]:
    with live_server.app.app_context():
        invoice = db.session.get(Invoice, invoice_id)
        payments = len(db.session.scalars(select(Payment).where(Payment.invoice_id == invoice_id)).all())
        state = invoice.status, invoice.balance, payments
        db.session.remove()
    return state


@pytest.fixture(scope="module")
def localstripe() -> Iterator[str]:
    with LocalStripe() as server:
        yield server.api_base


@pytest.mark.parametrize("viewport", ["mobile", "desktop"])
def test_pay_with_the_simulator(live_server, open_page, viewport):
    url, invoice_id, _slug = new_bill(live_server)
    page, watch = open_page(viewport)
    page.goto(url)
    pay = page.get_by_role("button", name=re.compile("test mode"))
    expect(pay).to_be_visible()
    assert_axe_clean(page, "the bill page with its pay section")
    assert_no_sideways_scrolling(page)

    pay.click()
    expect(page.get_by_text("Test mode", exact=False).first).to_be_visible()
    assert "/simulator/" in page.url
    assert_axe_clean(page, "the simulator's hosted page")
    page.get_by_role("button", name="Pay successfully").click()

    expect(page.get_by_role("heading", level=1)).to_contain_text("received your payment")
    assert_axe_clean(page, "the return page")
    assert invoice_state(live_server, invoice_id)[:3] == (InvoiceStatus.PAID, 0, 1)

    page.get_by_role("link", name="See your receipt").click()
    expect(page.locator("main")).to_contain_text("Paid in full")
    assert_axe_clean(page, "the receipt page")
    assert_no_sideways_scrolling(page)
    page.go_back()

    page.get_by_role("link", name=re.compile("Back to the bill")).click()
    expect(page.get_by_role("button", name=re.compile("test mode"))).to_have_count(0)
    page.go_back()  # the back button to the return page and a reload: still one payment
    page.reload()
    assert invoice_state(live_server, invoice_id)[2] == 1
    assert not watch.page_errors and not page.evaluate("window.__cspViolations")


def test_simulator_decline_then_retry(live_server, open_page):
    url, invoice_id, _slug = new_bill(live_server)
    page, _watch = open_page("mobile")
    page.goto(url)
    page.get_by_role("button", name=re.compile("test mode")).click()
    page.get_by_role("button", name="Decline the card").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("not completed")
    assert invoice_state(live_server, invoice_id)[2] == 0
    page.get_by_role("link", name=re.compile("Back to the bill")).click()
    page.get_by_role("button", name=re.compile("test mode")).click()
    page.get_by_role("button", name="Pay successfully").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("received your payment")
    assert invoice_state(live_server, invoice_id)[:3] == (InvoiceStatus.PAID, 0, 1)


@pytest.fixture(scope="module")
def adyen() -> Iterator[AdyenServer]:
    with AdyenServer(api_key=ADYEN_KEY) as server:
        yield server


def test_pay_with_an_adyen_payment_link(live_server, open_page, adyen):
    settings = {"api_key": ADYEN_KEY, "merchant_account": "E2EECOM", "hmac_key": ADYEN_HMAC,
                "client_key": "test_E2E", "checkout_base_url": adyen.base_url, "flow": "link",
                "payment_link_origin": adyen.base_url}
    url, invoice_id, slug = new_bill(live_server, provider=("adyen", ("card", "vipps", "mobilepay"), settings))
    adyen.state.webhook = (f"{live_server.url}/webhooks/adyen/{slug}", ADYEN_HMAC)
    page, watch = open_page("mobile")
    page.goto(url)
    expect(page.locator("#pay-now")).to_contain_text("Card · Vipps")
    page.get_by_role("button", name=re.compile(r"^Pay ")).click()
    page.wait_for_url(f"{adyen.base_url}/**")  # Adyen's own page: nothing of the card passes through us
    page.get_by_role("button", name="Pay with test card").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("received your payment")
    assert_axe_clean(page, "the return page after Adyen")
    assert invoice_state(live_server, invoice_id)[:3] == (InvoiceStatus.PAID, 0, 1)
    assert not watch.page_errors and not page.evaluate("window.__cspViolations")


def fill_card(page, number: str) -> None:
    for field, value in (("number", number), ("exp_month", "12"), ("exp_year", "34"), ("cvc", "123"),
                         ("postal_code", "0150")):
        page.locator(f"#payment-element input[placeholder='{field}']").fill(value)


def test_pay_with_stripe(live_server, open_page, localstripe):
    url, invoice_id, _slug = new_bill(live_server, provider=("stripe", ("card", "apple_pay", "klarna", "vipps"),
                                                      {**STRIPE, "api_base": localstripe}))
    page, watch = open_page("mobile")
    page.goto(url)
    expect(page.locator("#pay-now")).to_contain_text("Card · Apple Pay · Klarna · Vipps")
    page.get_by_role("button", name=re.compile(r"^Pay ")).click()
    expect(page.locator("#payment-element input")).to_have_count(5)  # the stand-in's card fields
    assert "/checkout/" in page.url
    assert_axe_clean_outside_provider(page)
    fill_card(page, "4242424242424242")
    page.locator("#checkout-submit").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("received your payment")
    assert invoice_state(live_server, invoice_id)[:3] == (InvoiceStatus.PAID, 0, 1)
    assert not watch.page_errors and not page.evaluate("window.__cspViolations")


def test_stripe_declined_card_then_another(live_server, open_page, localstripe):
    url, invoice_id, _slug = new_bill(live_server, provider=("stripe", ("card",), {**STRIPE, "api_base": localstripe}))
    page, _watch = open_page("desktop")
    page.goto(url)
    page.get_by_role("button", name=re.compile(r"^Pay ")).click()
    expect(page.locator("#payment-element input")).to_have_count(5)
    fill_card(page, "4000000000000002")
    page.locator("#checkout-submit").click()
    expect(page.locator("#checkout-error")).to_be_visible()
    assert "/checkout/" in page.url
    assert invoice_state(live_server, invoice_id)[2] == 0
    expect(page.locator("#checkout-submit")).to_be_enabled()  # the customer may try another card
    page.locator("#payment-element input[placeholder='number']").fill("4242424242424242")
    page.locator("#checkout-submit").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("received your payment")
    assert invoice_state(live_server, invoice_id)[:3] == (InvoiceStatus.PAID, 0, 1)


def test_pay_on_stripes_hosted_checkout(live_server, open_page, localstripe):
    settings = {**STRIPE, "api_base": localstripe, "flow": "checkout"}
    url, invoice_id, _slug = new_bill(live_server, provider=("stripe", ("card", "klarna"), settings))
    page, watch = open_page("mobile")
    page.goto(url)
    page.get_by_role("button", name=re.compile(r"^Pay ")).click()
    page.wait_for_url(f"{localstripe}/checkout.stripe.test/**")  # Stripe's page, not ours
    page.get_by_label("Card number").fill("4242424242424242")
    page.get_by_role("button", name="Pay").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("received your payment")
    assert invoice_state(live_server, invoice_id)[:3] == (InvoiceStatus.PAID, 0, 1)
    assert not watch.page_errors and not page.evaluate("window.__cspViolations")


def assert_axe_clean_outside_provider(page) -> None:
    """Our checkout page is axe-clean; the payment fields are the provider's (a frame with Stripe,
    here localstripe's plain stand-in inputs), so they are left out of our check."""
    results = Axe().run(page, context={"exclude": [["#payment-element"]]},
                        options={"runOnly": {"type": "tag", "values": WCAG_TAGS}})
    violations = [f"{v['id']}: {v['help']} {[n['target'] for n in v['nodes']]}" for v in results.response["violations"]]
    assert not violations, "axe found WCAG violations on the checkout page:\n" + "\n".join(violations)


def norwegian_account() -> str:
    """A random valid Norwegian account number (MOD11), so the bank file names this creditor only."""
    while True:
        base = [random.randint(0, 9) for _ in range(10)]
        check = 11 - sum(d * w for d, w in zip(base, (5, 4, 3, 2, 7, 6, 5, 4, 3, 2), strict=True)) % 11
        if check < 10:
            return "".join(map(str, base)) + str(check % 11)


def test_pay_by_bank_transfer(live_server, open_page, tmp_path):
    """The customer copies account and KID into the bank; the bank's camt.054 is imported; the bill says paid."""
    account = norwegian_account()
    url, invoice_id, _slug = new_bill(live_server, kind="NO", bank_account_no=account)
    with live_server.app.app_context():
        invoice = db.session.get(Invoice, invoice_id)
        reference, balance = invoice.payment_reference, invoice.balance
        db.session.remove()
    page, _watch = open_page("mobile")
    page.goto(url)
    main = page.locator("main").inner_text().replace(" ", "").replace("\u00a0", "")
    assert reference in main and account in main.replace(".", "")
    bank_file = tmp_path / "camt054.xml"
    bank_file.write_bytes(camt054(account, [credit(balance, reference, payer="Kari Nordmann", ref="E2E-1")]))
    result = live_server.app.test_cli_runner().invoke(args=["bank", "import", str(bank_file)])
    assert result.exit_code == 0, result.output
    assert invoice_state(live_server, invoice_id)[:3] == (InvoiceStatus.PAID, 0, 1)
    page.reload()
    expect(page.get_by_role("button", name=re.compile(r"^Pay "))).to_have_count(0)
    assert_axe_clean(page, "the paid bill")


def test_bank_transfer_details_can_be_copied(live_server, open_page):
    url, _invoice_id, _slug = new_bill(live_server, kind="NO")
    page, _watch = open_page("mobile")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.goto(url)
    transfer = page.locator("#bank-transfer, section:has(h2:text-matches('bank transfer', 'i'))").first
    expect(transfer).to_be_visible()
    copy_buttons = transfer.get_by_role("button", name=re.compile("Copy"))
    expect(copy_buttons.first).to_be_visible()
    copy_buttons.last.click()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied and copied.replace(" ", "") in transfer.inner_text().replace(" ", "")
