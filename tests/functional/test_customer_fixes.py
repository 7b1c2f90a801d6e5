"""Issue 16, customers 1, 2, 6 and 8 through the test client: a disputed line never stops the rest
being paid; a payment in progress is shown and not offered twice, and its waiting page moves on by
itself; declines in the customer's words with "try again" and the other ways; short receipt numbers
and a PDF receipt; the period said once, units with plurals, the PDF and the ways to pay near the top."""

from __future__ import annotations

import io
import re
from datetime import date, timedelta
from decimal import Decimal

import pytest
from babel.dates import format_date
from pypdf import PdfReader
from sqlalchemy import func, select

from app.billing.models import InvoiceStatus
from app.billing.schemas import line_amounts
from app.billing.services import import_invoice
from app.extensions import db
from app.i18n import format_locale
from app.models import utcnow
from app.money import format_money
from app.payments.gateways.base import GatewayEvent, PaymentStatus
from app.payments.models import Payment, PaymentAttempt
from app.payments.receipts import receipt_number
from app.payments.services import apply_status
from app.resolutions.disputes import open_dispute
from tests.factories import creditor_today, invoice_payload, make_creditor, make_invoice
from tests.functional.helpers import open_bill
from tests.functional.test_payments import choose, start

EN = {"Accept-Language": "en"}
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def local(app, url: str) -> str:
    return url.replace(app.config["PORTAL_BASE_URL"], "")


def plain(text: str) -> str:
    return re.sub(r"[\u00a0\u202f]", " ", text)


def money(amount: int, currency: str, locale: str = "en") -> str:
    return plain(format_money(amount, currency, format_locale(locale)))


def german(suggested: bool = True):
    """A German creditor whose customer reads English; `suggested`: whether it suggests paying the undisputed part."""
    creditor = make_creditor("DE", default_locale="en")
    creditor.dispute_partial_payable = suggested
    return creditor


def dispute_line(invoice, line, tmp_path):
    dispute, _created = open_dispute(
        invoice, reason="wrong_amount", message="This line is wrong", line_ids=[line.id], upload=None,
        attachment_dir=str(tmp_path), locale="en", submission_key=f"k-{line.id}", today=creditor_today("DE"),
    )
    db.session.commit()
    return dispute


def pdf_text(content: bytes) -> str:
    return plain(" ".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages))


# --- customers 1: disputing one line ------------------------------------------------------------


@pytest.mark.parametrize("suggested", [True, False])
def test_a_disputed_line_is_on_hold_and_the_rest_can_always_be_paid(client, app, session, tmp_path, suggested):
    creditor = german(suggested)
    invoice = make_invoice(creditor, lines=3)
    url = open_bill(client, app, invoice)
    held_line = invoice.lines[1]
    dispute_line(invoice, held_line, tmp_path)
    rest = invoice.balance - held_line.gross
    assert invoice.status == InvoiceStatus.DISPUTED

    page = plain(client.get(url, headers=EN).text)
    headline = re.search(r'<h1 id="h-amount"[^>]*>(.*?)</h1>', page, re.S).group(1)
    # the headline is what is to pay now, without what is on hold; the hold is said apart
    assert "To pay now" in headline and money(rest, "EUR") in headline and money(invoice.balance, "EUR") not in headline
    assert re.search(r'class="amount-held"><span class="label">On hold</span> <span class="value">'
                     + re.escape(money(held_line.gross, "EUR")), page)
    # the pay buttons and the bank transfer take the rest, whatever the creditor's setting
    assert 'name="provider" value="simulator"' in page and f"Pay {money(rest, 'EUR')}" in page
    assert 'id="h-pay">Pay by bank transfer' in page
    assert f'data-copy="{rest // 100}.{rest % 100:02d}"' in page
    waiting = "You can pay it now or wait until we have answered your dispute."
    assert (waiting in page) is not suggested
    # paying takes the rest, not the balance
    hosted = local(app, start(client, url).headers["Location"])
    attempt = db.session.scalar(select(PaymentAttempt).where(PaymentAttempt.invoice_id == invoice.id))
    assert attempt.amount == rest and hosted.startswith("/simulator/")


def test_the_pdf_says_what_is_to_pay_now_and_what_is_on_hold(client, app, session, tmp_path):
    creditor = german(False)
    invoice = make_invoice(creditor, lines=3)
    url = open_bill(client, app, invoice)
    held_line = invoice.lines[0]
    dispute_line(invoice, held_line, tmp_path)
    rest = invoice.balance - held_line.gross
    pdf = client.get(f"{url}/invoice.pdf", headers=EN)
    assert pdf.status_code == 200
    text = pdf_text(pdf.data)
    assert "To pay now" in text and f"On hold: {money(held_line.gross, 'EUR')}" in text
    assert money(rest, "EUR") in text


def test_the_dispute_form_says_what_happens_to_payment_before_sending(client, app, session):
    for suggested in (True, False):
        creditor = german(suggested)
        url = open_bill(client, app, make_invoice(creditor, lines=2))
        form = plain(client.get(f"{url}/dispute", headers=EN).text)
        notice = form.index("What happens to payment")
        assert notice < form.index("Send my dispute")
        assert "If you dispute the whole bill, you pay nothing until we have answered." in form
        assert "you can pay the rest as usual" in form
        assert ("You may also wait for our answer before you pay the rest." in form) is not suggested


def test_a_dispute_of_the_whole_bill_holds_it_all(client, app, session, tmp_path):
    creditor = make_creditor("DE", default_locale="en")
    invoice = make_invoice(creditor, lines=2)
    url = open_bill(client, app, invoice)
    open_dispute(invoice, reason="other", message="All wrong", line_ids=None, upload=None,
                 attachment_dir=str(tmp_path), locale="en", submission_key="all", today=creditor_today("DE"))
    db.session.commit()
    page = plain(client.get(url, headers=EN).text)
    assert f"To pay now</span> {money(0, 'EUR')}" in page
    assert 'name="provider"' not in page and "Pay by bank transfer" not in page


# --- customers 2: a payment in progress -----------------------------------------------------------


def in_progress(client, app):
    creditor = make_creditor("NO", default_locale="en")
    invoice = make_invoice(creditor, lines=2)
    url = open_bill(client, app, invoice)
    hosted = local(app, start(client, url).headers["Location"])
    back = local(app, choose(client, hosted, "authenticate").headers["Location"])
    return invoice, url, hosted, back


def test_a_payment_in_progress_shows_on_the_bill_and_is_not_offered_again(client, app, session):
    invoice, url, _hosted, back = in_progress(client, app)
    attempt = db.session.scalar(select(PaymentAttempt).where(PaymentAttempt.invoice_id == invoice.id))
    assert attempt.status == PaymentStatus.REQUIRES_ACTION
    page = plain(client.get(url, headers=EN).text)
    assert "A payment is in progress" in page and money(attempt.amount, "NOK") in page
    assert f'href="{url}/paid/{attempt.public_ref}"' in page
    assert 'name="provider"' not in page and "Pay by bank transfer" not in page
    # a pay form from an older tab: refused, nothing new started
    token = CSRF.search(client.get(f"{url}/dispute").text).group(1)
    again = client.post(f"{url}/pay", data={"csrf_token": token, "provider": "simulator"}, headers=EN)
    assert again.status_code == 409 and "A payment is in progress" in again.text
    assert db.session.scalar(select(func.count(PaymentAttempt.id)).where(PaymentAttempt.invoice_id == invoice.id)) == 1
    # expired: the ways to pay are back
    attempt.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    page = client.get(url, headers=EN).text
    assert 'name="provider" value="simulator"' in page and "A payment is in progress" not in page
    expired = client.get(back, headers=EN).text
    assert "The payment was not confirmed in time." in expired and 'http-equiv="refresh"' not in expired


def test_the_waiting_page_moves_on_by_itself(client, app, session):
    invoice, url, hosted, back = in_progress(client, app)
    waiting = client.get(back, headers=EN)
    assert waiting.status_code == 200 and "waiting for confirmation" in waiting.text
    assert '<noscript><meta http-equiv="refresh" content="5"></noscript>' in waiting.text  # without JavaScript
    status_url = re.search(r'data-status-url="([^"]+)"', waiting.text).group(1)
    assert status_url == f"{back}/status"
    assert client.get(status_url).get_json() == {"waiting": True}
    # the customer confirms (the simulator's page again): the status says so, the page moves on to the receipt
    choose(client, hosted, "succeed")
    assert client.get(status_url).get_json() == {"waiting": False}
    done = client.get(back, headers=EN).text
    assert "Thank you, we have received your payment" in done and 'http-equiv="refresh"' not in done
    payment = db.session.scalar(select(Payment).where(Payment.invoice_id == invoice.id))
    assert f"{url}/receipts/{payment.public_ref}" in done
    # another bill's attempt under this bill's address: not found
    assert client.get(f"{url}/paid/nope/status").status_code == 404


# --- customers 6: declines, receipts ---------------------------------------------------------------


def failed_with(client, app, reason: str | None):
    creditor = make_creditor("DE", default_locale="en")
    invoice = make_invoice(creditor, lines=2)
    url = open_bill(client, app, invoice)
    hosted = local(app, start(client, url).headers["Location"])
    attempt = db.session.scalar(select(PaymentAttempt).where(PaymentAttempt.invoice_id == invoice.id))
    apply_status(attempt, GatewayEvent(provider="simulator", event_id="e1", event_type="payment.failed",
                                       provider_ref=attempt.provider_ref, status=PaymentStatus.FAILED,
                                       failure_reason=reason), actor="simulator")
    db.session.commit()
    return invoice, url, hosted, f"{url}/paid/{attempt.public_ref}"


@pytest.mark.parametrize(("reason", "words"), [
    ("insufficient_funds", "there is not enough money on the card or account"),
    ("Not enough balance", "there is not enough money on the card or account"),  # Adyen's refusal reason
    ("expired_card", "The card has expired"),
    ("3D Not Authenticated", "The payment was not confirmed with your bank"),
    ("something_new", "declined the payment without giving us a reason"),
    (None, "declined the payment without giving us a reason"),
])
def test_a_decline_says_why_and_offers_try_again_and_the_other_ways(client, app, session, reason, words):
    invoice, url, _hosted, back = failed_with(client, app, reason)
    page = plain(client.get(back, headers=EN).text)
    assert "The payment was not completed" in page and words in page
    assert f'action="{url}/pay"' in page and f"Try again: pay {money(invoice.balance, 'EUR')}" in page
    assert "Pay by bank transfer" in page and "RF" in page  # the other way, with its reference
    # "try again" starts a new attempt
    token = CSRF.search(page).group(1)
    again = client.post(f"{url}/pay", data={"csrf_token": token, "provider": "simulator",
                                            "amount": f"{invoice.balance / 100:.2f}"})
    assert again.status_code == 303
    assert db.session.scalar(select(func.count(PaymentAttempt.id)).where(PaymentAttempt.invoice_id == invoice.id)) == 2


def test_the_simulators_decline_is_said_in_each_language(client, app, session):
    creditor = make_creditor("NO")
    invoice = make_invoice(creditor)
    url = open_bill(client, app, invoice)
    back = local(app, choose(client, local(app, start(client, url).headers["Location"]), "decline").headers["Location"])
    texts = {lang: client.get(f"{back}?lang={lang}").text for lang in ("en", "nb", "de")}
    assert "declined the payment without giving us a reason" in texts["en"]
    assert "declined the payment without giving us a reason" not in texts["nb"] + texts["de"]
    assert len({t.count('class="decline"') for t in texts.values()}) == 1 and 'class="decline"' in texts["nb"]


def paid(client, app, kind="NO"):
    creditor = make_creditor(kind, org_number="987 654 321")
    invoice = make_invoice(creditor, lines=2)
    url = open_bill(client, app, invoice)
    hosted = local(app, start(client, url).headers["Location"])
    choose(client, hosted, "succeed")
    payment = db.session.scalar(select(Payment).where(Payment.invoice_id == invoice.id))
    return invoice, url, payment


def test_the_receipt_number_is_short_and_readable(client, app, session):
    _invoice, url, payment = paid(client, app)
    number = receipt_number(payment.public_ref)
    assert re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{5}-[0-9A-HJKMNP-TV-Z]{5}", number)
    assert receipt_number(payment.public_ref) == number  # derived: the same wherever it is shown
    page = client.get(f"{url}/receipts/{payment.public_ref}", headers=EN).text
    assert f'<dd class="mono">{number}</dd>' in page and f">{payment.public_ref}<" not in page


def test_the_receipt_as_a_pdf_in_the_customers_language(client, app, session):
    invoice, url, payment = paid(client, app)
    page = client.get(f"{url}/receipts/{payment.public_ref}", headers=EN).text
    pdf_url = f"{url}/receipts/{payment.public_ref}/receipt.pdf"
    assert f'href="{pdf_url}"' in page
    for lang, words in (("en", "Receipt number"), ("nb", "Kvitteringsnummer"), ("de", "Quittungsnummer")):
        response = client.get(f"{pdf_url}?lang={lang}")
        assert response.status_code == 200 and response.mimetype == "application/pdf"
        assert f'filename="receipt-{receipt_number(payment.public_ref)}.pdf"' in response.headers["Content-Disposition"]
        text = pdf_text(response.data)
        assert words in text and receipt_number(payment.public_ref) in text and invoice.number in text
        assert money(payment.amount, "NOK", lang) in text and "987 654 321" in text
    # the same receipt again comes from the cache: byte for byte
    assert client.get(f"{pdf_url}?lang=en").data == client.get(f"{pdf_url}?lang=en").data
    # another bill's receipt under this address: not found
    _other, _other_url, other_payment = paid(client, app)
    assert client.get(f"{url}/receipts/{other_payment.public_ref}/receipt.pdf").status_code == 404


def test_the_receipt_pdf_is_rate_limited(client, app, session):
    _invoice, url, payment = paid(client, app)
    app.config["PDF_RATE_LIMIT"] = "2 per minute"
    try:
        pdf_url = f"{url}/receipts/{payment.public_ref}/receipt.pdf"
        assert [client.get(pdf_url).status_code for _ in range(3)] == [200, 200, 429]
    finally:
        app.config["PDF_RATE_LIMIT"] = "20 per minute; 200 per hour"


# --- customers 8: long pages, dates, plurals -----------------------------------------------------------


def periods_bill(creditor):
    today = creditor_today(creditor.country)
    start_, end = date(today.year, today.month, 1) - timedelta(days=31), date(today.year, today.month, 1) - \
        timedelta(days=1)
    start_ = start_.replace(day=1)
    period = {"period_start": start_.isoformat(), "period_end": end.isoformat()}
    lines = [
        {"description": "Mobile plan", "quantity": "1", "unit": "month", "unit_price": 2439, "vat_rate": 2500,
         **period},
        {"description": "Texts to short code", "quantity": "3", "unit": "text", "unit_price": 81, "vat_rate": 2500,
         **period},
        {"description": "Roaming", "quantity": "1.25", "unit": "GB", "unit_price": 800, "vat_rate": 2500, **period},
    ]
    total = sum(line_amounts(Decimal(line["quantity"]), line["unit_price"], line["vat_rate"])[2] for line in lines)
    payload = invoice_payload(creditor.currency, today=creditor_today(creditor.country), lines=0)
    invoice, _created = import_invoice(creditor, {**payload, "lines": lines, "total": total}, actor="test")
    return invoice, start_, end


def test_the_shared_period_is_said_once_in_one_date_format(client, app, session):
    creditor = make_creditor("NO")
    invoice, start_, end = periods_bill(creditor)
    url = open_bill(client, app, invoice)
    for lang in ("en", "nb", "de"):
        page = plain(client.get(f"{url}?lang={lang}").text)
        long_start = plain(format_date(start_, "long", locale=format_locale(lang)))
        long_end = plain(format_date(end, "long", locale=format_locale(lang)))
        assert page.count(long_start) == 1 and page.count(long_end) == 1, lang  # once, at the head
        for other in ("short", "medium"):  # and in no other format anywhere
            for day in (start_, end):
                assert plain(format_date(day, other, locale=format_locale(lang))) not in page, (lang, other)


@pytest.mark.parametrize(("lang", "texts", "month"), [
    ("en", "3 text messages", "1 month"), ("nb", "3 tekstmeldinger", "1 måned"), ("de", "3 SMS", "1 Monat"),
])
def test_units_are_said_in_words_with_their_plural(client, app, session, lang, texts, month):
    invoice, _start, _end = periods_bill(make_creditor("NO"))
    url = open_bill(client, app, invoice)
    page = plain(client.get(f"{url}?lang={lang}").text)
    assert texts in page and month in page
    assert not re.search(r"\b3 text\b(?! message)", page)
    assert "1.25 GB" in page or "1,25 GB" in page  # an abbreviation stays as sent


def test_the_pdf_and_the_ways_to_pay_come_first_and_how_to_pay_goes_there(client, app, session):
    creditor = make_creditor("IE")
    invoice = make_invoice(creditor, lines=3)
    url = open_bill(client, app, invoice)
    page = client.get(url, headers=EN).text
    pdf_link = page.index(f'href="{url}/invoice.pdf"')
    assert page.count(f'href="{url}/invoice.pdf"') == 1
    assert pdf_link < page.index('id="how-to-pay"') < page.index('id="h-lines"')  # near the top, before the lines
    assert 'href="#how-to-pay"' in page and page.index('id="h-pay-now"') > page.index('id="how-to-pay"')
    # the EPC QR code: shown on wide screens, behind "Show QR code" (no JavaScript needed) on phones
    assert re.search(r'<details class="qr-small">\s*<summary>Show QR code</summary>', page)
    assert page.count(f'src="{url}/epc-qr.svg"') == 2 and page.count('loading="lazy"') >= 2
