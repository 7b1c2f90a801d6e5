"""Receipts end to end: pay with the simulator -> a receipt in the outbox -> the dispatcher sends it to
a real SMTP server; the receipt page, linked from the return page and the bill, behind the bill's grant."""

from __future__ import annotations

from sqlalchemy import select

from app.extensions import db
from app.i18n import format_locale
from app.money import format_money
from app.outbox.dispatcher import run_once
from app.outbox.models import OutboxMessage, OutboxStatus
from app.payments.models import Payment
from app.payments.receipts import receipt_number
from tests.factories import make_creditor, make_invoice
from tests.functional.helpers import open_bill
from tests.functional.test_payments import choose, start
from tests.support.database import recorded_statements

EN = {"Accept-Language": "en"}




def local(app, url: str) -> str:
    return url.replace(app.config["PORTAL_BASE_URL"], "")


def pay_in_full(client, app, invoice) -> tuple[str, str]:
    """Open the bill, pay with the simulator; returns (bill path, return page path)."""
    url = open_bill(client, app, invoice)
    hosted = local(app, start(client, url).headers["Location"])
    back = choose(client, hosted, "succeed")
    return url, local(app, back.headers["Location"])


def payment_of(invoice) -> Payment:
    return db.session.scalar(select(Payment).where(Payment.invoice_id == invoice.id))


def test_paying_sends_a_receipt(client, app, session, smtp):
    invoice = make_invoice(make_creditor("NO"), lines=2)
    pay_in_full(client, app, invoice)
    payment = payment_of(invoice)
    message = db.session.scalar(select(OutboxMessage).where(OutboxMessage.idempotency_key.endswith(payment.public_ref)))
    assert message.kind == "payment_receipt" and message.status == OutboxStatus.PENDING and not smtp.messages
    with app.app_context():
        report = run_once()
    assert report.delivered >= 1 and message.status == OutboxStatus.DELIVERED
    [sent] = [m for m in smtp.messages if m["X-Idempotency-Key"] == message.idempotency_key]
    assert sent["To"] == "kari@example.test" and sent["Content-Language"] == "nb"
    text = sent.get_body(("plain",)).get_content()
    assert invoice.number in text and format_money(payment.amount, "NOK", format_locale("nb")) in text


def test_receipt_page_from_the_return_page_and_the_bill(client, app, session):
    invoice = make_invoice(make_creditor("NO", org_number="987 654 321"), lines=2)
    url, back = pay_in_full(client, app, invoice)
    payment = payment_of(invoice)
    receipt_url = f"{url}/receipts/{payment.public_ref}"
    assert f'href="{receipt_url}"' in client.get(back, headers=EN).text
    assert f'href="{receipt_url}"' in client.get(url, headers=EN).text  # the bill's payment history
    page = client.get(receipt_url, headers=EN)
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    html = page.text
    for fact in ("Receipt", format_money(payment.amount, "NOK", "en_GB"), invoice.number,
                 receipt_number(payment.public_ref), "Card (test mode)", "Paid in full", "Kari Nordmann", "987 654 321",
                 "@media print"):
        assert fact in html, fact
    assert "--brand:" in html  # the creditor's colours
    nb = client.get(f"{receipt_url}?lang=nb").text
    assert format_money(payment.amount, "NOK", "nb_NO") in nb and 'lang="nb"' in nb


def test_the_receipt_of_a_creditor_without_content_blocks_reads_no_reminders_nor_other_bills(client, app, session):
    """What only content blocks need (was there a reminder after the due date, the customer's other bills
    owed) is read only for a creditor that wrote blocks."""
    invoice = make_invoice(make_creditor("NO"), lines=2)
    url, _back = pay_in_full(client, app, invoice)
    receipt_url = f"{url}/receipts/{payment_of(invoice).public_ref}"
    with app.app_context():
        engine = db.engine
    with recorded_statements(engine) as seen:
        assert client.get(receipt_url, headers=EN).status_code == 200
    assert seen and not [s for s in seen if "dunning_notices" in s or "reminders" in s], seen
    assert not [s for s in seen if "invoices.id != " in s], seen  # no other bill of the customer


def test_receipt_page_needs_the_grant_of_its_own_bill(client, app, session):
    creditor = make_creditor("NO")
    invoice, other = make_invoice(creditor), make_invoice(creditor)
    url, _back = pay_in_full(client, app, invoice)
    payment = payment_of(invoice)
    other_url, _ = pay_in_full(client, app, other)
    other_payment = payment_of(other)
    assert client.get(f"{url}/receipts/{payment.public_ref}").status_code == 200
    # a payment of another bill, under this bill's address (the browser holds both grants): not found
    assert client.get(f"{url}/receipts/{other_payment.public_ref}").status_code == 404
    assert client.get(f"{other_url}/receipts/{payment.public_ref}").status_code == 404
    assert client.get(f"{url}/receipts/no-such-receipt").status_code == 404
    # another browser, without a grant: the portal's neutral page, as for the bill itself
    stranger = app.test_client()
    neutral = stranger.get(f"{url}/receipts/{payment.public_ref}", headers=EN)
    assert neutral.status_code == stranger.get(url, headers=EN).status_code == 404
    assert payment.public_ref not in neutral.text and invoice.number not in neutral.text
