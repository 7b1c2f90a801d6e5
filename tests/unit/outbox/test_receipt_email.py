"""The payment receipt: enqueued by settle() in the payment's transaction, rendered at delivery in the
customer's language and the creditor's brand, with Babel's amounts and dates and a fresh bill link.

Expected sentences are looked up with gettext in the message's locale, so these tests hold with
or without the translations compiled; Babel's formatting of amounts and dates never depends on them."""

from __future__ import annotations

import re

import pytest
from babel.dates import format_date
from babel.messages.extract import extract_from_file
from flask_babel import force_locale, gettext
from sqlalchemy import func, select

from app.config import ROOT
from app.core.dates import local_today
from app.extensions import db
from app.i18n import format_locale
from app.links.models import AccessLink
from app.links.services import get_signer, resolve_token
from app.models import utcnow
from app.money import format_money
from app.outbox.dispatcher import run_once
from app.outbox.email import message_id
from app.outbox.models import OutboxMessage, OutboxStatus
from app.payments.receipts import receipt_for, receipt_number
from app.payments.services import settle
from tests.factories import make_creditor, make_invoice

pytestmark = pytest.mark.usefixtures("ctx")

TOKEN = re.compile(r"https://pay\.example\.test/l/([A-Za-z0-9_.-]+)")


def pay(invoice, amount=None, payment_id="pay_1", provider="simulator", method="card"):
    return settle(invoice.id, provider=provider, payment_id=payment_id, amount=amount or invoice.balance,
                  currency=invoice.currency, method=method, received_at=utcnow(), actor="test")


def receipts_of(invoice) -> list[OutboxMessage]:
    return list(db.session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.kind == "payment_receipt", OutboxMessage.creditor_id == invoice.creditor_id)
    ))


def parts(sent) -> tuple[str, str]:
    return sent.get_body(("plain",)).get_content(), sent.get_body(("html",)).get_content()


class TestEnqueued:
    def test_settle_enqueues_one_receipt_in_the_customers_language(self):
        invoice = make_invoice(make_creditor("NO"))
        payment = pay(invoice)
        [message] = receipts_of(invoice)
        assert message.channel == "email" and message.recipient == "kari@example.test" and message.locale == "nb"
        assert message.idempotency_key == f"payment_receipt:{payment.public_ref}"
        assert message.payload == {"payment_id": payment.id} and message.status == OutboxStatus.PENDING
        assert pay(invoice) is None  # the same payment again: no payment, no second receipt
        assert len(receipts_of(invoice)) == 1

    def test_the_customers_preferred_language_wins(self):
        invoice = make_invoice(make_creditor("NO"))
        invoice.customer.preferred_locale = "de"
        pay(invoice)
        assert receipts_of(invoice)[0].locale == "de"

    def test_no_address_no_receipt(self):
        invoice = make_invoice(make_creditor("NO"))
        invoice.customer.email = None
        assert pay(invoice) is not None and receipts_of(invoice) == []

    def test_a_rolled_back_payment_takes_its_receipt_with_it(self):
        invoice = make_invoice(make_creditor("NO"))
        db.session.commit()
        pay(invoice)
        db.session.rollback()
        assert receipts_of(invoice) == []


@pytest.mark.parametrize("kind, locale", [("IE", "en"), ("NO", "nb"), ("DE", "de")])
def test_receipt_email_in_each_language(smtp, kind, locale):
    creditor = make_creditor(kind, brand_primary="#7a1f5c")
    invoice = make_invoice(creditor, lines=2)
    payment = pay(invoice, method="card")
    db.session.commit()
    assert run_once().delivered == 1
    [sent] = smtp.messages
    text, html = parts(sent)
    babel_locale = format_locale(locale)
    amount = format_money(payment.amount, invoice.currency, babel_locale)
    day = format_date(local_today(creditor.country, payment.received_at), "long", locale=babel_locale)
    with force_locale(locale):
        expected = [
            gettext("Thank you for your payment"), gettext("Amount received"), gettext("Payment method"),
            gettext("Paid in full"), gettext("Keep this e-mail as your receipt."),
            gettext("%(method)s (test mode)", method=gettext("Card")),
        ]
        subject = gettext("Receipt for your payment to %(creditor)s", creditor=creditor.name)
    for part in (text, html):
        for snippet in (amount, day, invoice.number, receipt_number(payment.public_ref), *expected):
            assert snippet in part, (locale, snippet)
    assert "&amp;" not in text and "<" not in text
    assert sent["Subject"] == subject
    assert sent["Content-Language"] == locale and f'lang="{locale}"' in html
    assert "#7a1f5c" in html and creditor.name in html  # the brand
    assert sent["From"].addresses[0].display_name == creditor.name
    assert sent["Reply-To"] == creditor.support_email
    assert sent["Message-ID"] == message_id(f"payment_receipt:{payment.public_ref}", "pay.example.test")


def test_the_link_in_the_receipt_opens_the_bill(smtp):
    invoice = make_invoice(make_creditor("NO"))
    pay(invoice)
    db.session.commit()
    run_once()
    text, html = parts(smtp.messages[0])
    token = TOKEN.search(text).group(1)
    assert f"/l/{token}" in html
    resolution = resolve_token(token, signer=get_signer())
    assert resolution.ok and resolution.public_id == invoice.public_id
    assert db.session.get(AccessLink, resolution.link_id).channel == "email"


def test_a_failed_send_keeps_no_link(app, mail_settings):
    from tests.support.smtp import SmtpServer, free_port

    mail_settings(SmtpServer(port=free_port()))
    invoice = make_invoice(make_creditor("NO"))
    pay(invoice)
    db.session.commit()
    assert run_once().retried == 1
    assert db.session.scalar(select(func.count(AccessLink.id)).where(AccessLink.invoice_id == invoice.id)) == 0


def test_part_payment_shows_what_is_left_and_overpayment_what_comes_back(smtp):
    creditor = make_creditor("NO")
    invoice = make_invoice(creditor)
    total = invoice.total
    pay(invoice, amount=5000, payment_id="p1")
    pay(invoice, amount=total, payment_id="p2")  # more than the rest: the difference is owed back
    db.session.commit()
    assert run_once().delivered == 2
    texts = [parts(m)[0] for m in smtp.messages]
    left = format_money(total - 5000, "NOK", "nb_NO")
    refund = format_money(5000, "NOK", "nb_NO")
    with force_locale("nb"):
        full = gettext("Paid in full")
        owed_back = gettext("%(amount)s of this payment is more than was owed. %(creditor)s will pay it back to you.",
                            amount=refund, creditor=creditor.name)
    assert any(left in t and full not in t for t in texts)
    assert any(full in t and owed_back in t for t in texts)


def test_receipt_facts_come_from_the_timeline():
    creditor = make_creditor("NO")
    invoice = make_invoice(creditor)
    total = invoice.total
    first = pay(invoice, amount=3000, payment_id="p1")
    second = pay(invoice, amount=total - 3000, payment_id="p2")
    assert receipt_for(first).balance_after == total - 3000 and not receipt_for(first).paid_in_full
    assert receipt_for(second).balance_after == 0 and receipt_for(second).paid_in_full


def test_the_text_part_says_nothing_the_html_part_does_not():
    """babel.cfg extracts templates/**.html: every sentence of the .txt part must be one of the .html part's."""

    def msgids(name):
        path = f"{ROOT}/templates/email/{name}"
        return {m[1] for m in extract_from_file("jinja2.ext.babel_extract", path, options={"trim_blocks": "true"})}

    assert msgids("payment_receipt.txt") <= msgids("payment_receipt.html")
    assert len(msgids("payment_receipt.txt")) > 10
