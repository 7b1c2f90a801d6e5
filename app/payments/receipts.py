"""Receipts: what the customer is told about a payment received, by e-mail and on the receipt page.

`settle()` calls `enqueue_receipt()` in the transaction that records the payment, so the receipt
e-mail exists exactly when the payment does. The e-mail is rendered when the dispatcher sends it,
from the payment's id, and carries a fresh signed link to the bill (see `receipt_email`); the
receipt page (`/b/<bill>/receipts/<public_ref>`) is reached from the bill's payment history and
from the return page, with the same grant as the bill.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import date

from flask import current_app, render_template
from flask_babel import get_locale
from flask_babel import gettext as _
from sqlalchemy import select

from app.billing.models import Customer, Invoice, InvoiceEvent
from app.billing.pdf import css_string, footer_text, get_pdf_cache, html_to_pdf, logo_data_uri, page_label_css
from app.core.dates import local_today
from app.creditors.models import Creditor
from app.errors import InvalidData
from app.extensions import db
from app.i18n import DEFAULT_LOCALE, normalise_locale
from app.links.services import IssuedLink, get_signer, issue_link
from app.outbox.base import DeliveryError
from app.outbox.email import Notice, RenderedEmail
from app.outbox.models import OutboxMessage
from app.outbox.services import enqueue
from app.payments.models import Payment
from app.templating import date_filter

KIND = "payment_receipt"
ACTOR = "receipt"

#: Payment methods known by their brand name, which is the same in every language.
BRAND_METHODS = {
    "apple_pay": "Apple Pay", "google_pay": "Google Pay", "paypal": "PayPal", "revolut_pay": "Revolut Pay",
    "klarna": "Klarna", "trustly": "Trustly", "ideal": "iDEAL", "bancontact": "Bancontact", "eps": "EPS",
    "p24": "Przelewy24", "blik": "BLIK", "vipps": "Vipps", "mobilepay": "MobilePay", "swish": "Swish",
    "twint": "TWINT",
}


def method_label(method: str | None, provider: str) -> str:
    """How the customer paid, in the current locale ("Card", "Vipps", "Bank transfer")."""
    if method == "card":
        label = _("Card")
    elif method == "sepa_debit":
        label = _("SEPA Direct Debit")
    elif method == "bank_transfer" or provider == "bank_transfer":
        label = _("Bank transfer")
    elif method in ("cash", "card_terminal", "cheque", "debt_collection", "other"):  # recorded by hand, or by a partner
        label = {"cash": _("Cash"), "card_terminal": _("Card terminal"), "cheque": _("Cheque"),
                 "debt_collection": _("Through the debt collection agency"), "other": _("Other")}[method]
    else:
        label = BRAND_METHODS.get(method or "") or _("Online payment")
    if provider == "simulator":
        return _("%(method)s (test mode)", method=label)
    return label


#: Crockford's base 32: no I, L, O or U, so a number read out on the phone is not misheard.
RECEIPT_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def receipt_number(public_ref: str) -> str:
    """The receipt's number for people: ten characters in two groups ("7KQ2M-9XDAB"), derived from the
    payment's random public ref (which stays the receipt page's address and our own key), so it needs no
    column of its own and is the same on the page, the PDF and the e-mail. 50 bits: two payments share
    one with odds of one in 10^15."""
    digest = int.from_bytes(hashlib.sha256(f"receipt:{public_ref}".encode()).digest()[:7], "big") >> 6
    chars = []
    for _i in range(10):
        digest, index = divmod(digest, 32)
        chars.append(RECEIPT_ALPHABET[index])
    return f"{''.join(chars[:5])}-{''.join(chars[5:])}"


@dataclass(frozen=True)
class Receipt:
    """One payment as its receipt shows it."""

    payment: Payment
    invoice: Invoice
    creditor: Creditor
    customer: Customer
    received_on: date  # the creditor's local date
    balance_after: int | None  # left to pay just after this payment; None when it was not booked on the bill

    @property
    def number(self) -> str:
        """The receipt number shown to the customer (`receipt_number`)."""
        return receipt_number(self.payment.public_ref)

    @property
    def method(self) -> str:
        return method_label(self.payment.method, self.payment.provider)

    @property
    def paid_in_full(self) -> bool:
        return self.balance_after is not None and self.balance_after <= 0


def receipt_for(payment: Payment) -> Receipt:
    invoice = payment.invoice
    return Receipt(
        payment=payment, invoice=invoice, creditor=invoice.creditor, customer=invoice.customer,
        received_on=local_today(invoice.creditor.country, payment.received_at),
        balance_after=balance_after(invoice, payment),
    )


def find_receipt(invoice_id: int, public_ref: str) -> Receipt | None:
    """The receipt of this invoice's payment with this public ref; None for any other invoice's."""
    if not public_ref or len(public_ref) > 32:
        return None
    payment = db.session.scalar(
        select(Payment).where(Payment.public_ref == public_ref, Payment.invoice_id == invoice_id)
    )
    return receipt_for(payment) if payment is not None else None


def receipt_pdf(receipt: Receipt) -> bytes:
    """The receipt as a PDF (WeasyPrint, as the invoice), in the current locale and the creditor's brand:
    rendered once per payment, language and version of what it shows, and kept with the invoice PDFs."""
    payment, creditor = receipt.payment, receipt.creditor
    key = ("receipt", payment.public_ref, str(get_locale()), creditor.updated_at, receipt.customer.updated_at,
           payment.refund_due, payment.refunded)

    def render() -> bytes:
        html = render_template(
            "payments/receipt_pdf.html", receipt=receipt, payment=payment, invoice=receipt.invoice,
            creditor=creditor, logo_src=logo_data_uri(creditor), footer_left=css_string(footer_text(creditor)),
            footer_right=page_label_css(_("Page %(page)s of %(pages)s")),
        )
        return html_to_pdf(html)

    return get_pdf_cache().get_or_render(key, render)


def receipt_refs(invoice_id: int) -> dict[str, str]:
    """The invoice's payments by provider payment id (the reference its "payment_recorded" events
    carry) -> public ref, so that the bill's payment history can link each one to its receipt."""
    rows = db.session.execute(
        select(Payment.provider_payment_id, Payment.public_ref).where(Payment.invoice_id == invoice_id)
    )
    return dict(rows.all())


def payment_for_attempt(attempt_id: int) -> Payment | None:
    """The payment an attempt made, for the return page (its receipt, and whether the bill took it)."""
    return db.session.scalar(select(Payment).where(Payment.attempt_id == attempt_id).order_by(Payment.id).limit(1))


def balance_after(invoice: Invoice, payment: Payment) -> int | None:
    """What was left to pay right after this payment, from the invoice's timeline (append-only),
    so a receipt says the same whenever it is shown. None for a payment the bill did not take
    (one of a cancelled invoice: it is owed back in full)."""
    paid = 0
    events = db.session.scalars(
        select(InvoiceEvent)
        .where(InvoiceEvent.invoice_id == invoice.id, InvoiceEvent.kind == "payment_recorded")
        .order_by(InvoiceEvent.id)
    )
    for event in events:
        paid += int(event.data.get("amount") or 0)
        if event.data.get("reference") == payment.provider_payment_id:
            return max(invoice.total - paid, 0)
    return None


def receipt_locale(invoice: Invoice) -> str:
    """The customer's language if we know it, else the creditor's."""
    return (
        normalise_locale(invoice.customer.preferred_locale)
        or normalise_locale(invoice.creditor.default_locale)
        or DEFAULT_LOCALE
    )


def receipt_key(payment_public_ref: str) -> str:
    """The receipt message's idempotency key (the bank import's batch path writes the same)."""
    return f"{KIND}:{payment_public_ref}"


def enqueue_receipt(payment: Payment, invoice: Invoice) -> OutboxMessage | None:
    """The receipt e-mail for a payment just recorded, in the same transaction (None without an address).

    The key is the payment's random public ref, so it, and the Message-ID made from it, never
    repeats, not even across databases."""
    email = invoice.customer.email
    if not email:
        return None
    return enqueue(
        "email", KIND, email, {"payment_id": payment.id}, idempotency_key=receipt_key(payment.public_ref),
        creditor_id=invoice.creditor_id, locale=receipt_locale(invoice), livemode=invoice.livemode,
    )


def on_file(invoice: Invoice, recipient: str | None) -> bool:
    """Whether `recipient` is the customer's e-mail address as the creditor gave it to us (case and
    spaces aside). Only such an address gets a link to the bill: an address typed into one of the
    bill's forms is anyone's, and a link there would outlive every revocation of the links before."""
    on_record = (invoice.customer.email or "").strip().lower()
    return bool(on_record) and on_record == (recipient or "").strip().lower()


def email_bill_link(invoice: Invoice, *, actor: str, recipient: str | None) -> IssuedLink | None:
    """A fresh signed link to the bill for an e-mail being sent to `recipient`: None for a closed
    bill, and None unless `recipient` is the customer's address on file (`on_file`).

    Issued at delivery, because only a link's hash is stored: the token cannot wait in the
    outbox. It is committed only if the e-mail goes out."""
    if invoice.is_closed or not on_file(invoice, recipient):
        return None
    config = current_app.config
    try:
        return issue_link(
            invoice, channel="email", ttl_days=config["LINK_DEFAULT_TTL_DAYS"], signer=get_signer(),
            base_url=config["PORTAL_BASE_URL"], actor=actor,
        )
    except InvalidData:
        return None


def receipt_email(message: OutboxMessage) -> RenderedEmail:
    """The receipt e-mail (run by the dispatcher in the message's locale).

    It carries a fresh signed link to the bill (purpose "bill", channel "email"), whose payment
    history links to this receipt's page. The link is issued here, at delivery, because only its
    hash is stored: the token cannot wait in the outbox. It is committed only if the e-mail goes
    out. A bill that can no longer be opened (cancelled, written off) gets no link; the e-mail
    itself is the receipt either way, and says so."""
    payment = db.session.get(Payment, (message.payload or {}).get("payment_id") or 0)
    if payment is None:
        raise DeliveryError("the payment of this receipt no longer exists", permanent=True)
    receipt = receipt_for(payment)
    link = email_bill_link(receipt.invoice, actor=ACTOR, recipient=message.recipient)
    context = {
        "receipt": receipt, "payment": payment, "invoice": receipt.invoice, "creditor": receipt.creditor,
        "link": link, "link_expires_on": local_today(receipt.creditor.country, link.link.expires_at) if link else None,
        "locale": message.locale or DEFAULT_LOCALE,
        "subject": _("Receipt for your payment to %(creditor)s", creditor=receipt.creditor.name),
    }
    return RenderedEmail(
        subject=context["subject"],
        text=render_template("email/payment_receipt.txt", **context),
        html=render_template("email/payment_receipt.html", **context),
        sender_name=receipt.creditor.sender_name,
        reply_to=receipt.creditor.reply_address(receipt.creditor.support_email),
    )


def with_bill_link(notice: Notice, invoice: Invoice, *, recipient: str | None, actor: str) -> Notice:
    """A customer's notice (support, self-service) with a fresh link to the bill where the address
    is the one on file; otherwise without a link, saying why and how to reach the bill (the notice
    carries the reference). A closed bill gets no link and no words about it."""
    link = email_bill_link(invoice, actor=actor, recipient=recipient)
    if link is not None:
        expires = local_today(invoice.creditor.country, link.link.expires_at)
        note = _("The link works until %(date)s.", date=date_filter(expires))
        return replace(notice, link_url=link.url, link_note=note)
    if invoice.is_closed:
        return replace(notice, link_url=None, link_label=None, link_note=None)
    return replace(notice, link_url=None, link_label=None, link_note=None, paragraphs=[
        *notice.paragraphs,
        _("For your security, this e-mail carries no link to the bill: %(creditor)s does not have this address on "
          "file. Open the bill with the link in the messages %(creditor)s sends you, and quote your reference if you "
          "contact us.", creditor=invoice.creditor.name),
    ])
