"""The invoice PDF: content, locale formatting, brand images, pagination, metadata, no network."""

import base64
import io
import logging
import re
import time
from datetime import date, timedelta
from decimal import Decimal

import flask
import pytest
import tinycss2
from babel.dates import format_date
from PIL import Image
from pypdf import PdfReader

from app.billing.pdf import css_string, invoice_html, offline_url_fetcher, page_label_css, render_invoice_pdf
from app.billing.schemas import line_amounts
from app.billing.services import due_state, import_invoice, payments_received, record_payment
from app.billing.transfer import transfer_details
from app.core.dates import local_today
from app.creditors.services import set_logo
from app.errors import InvalidData
from app.i18n import FORMAT_LOCALES
from app.models import utcnow
from app.money import format_money
from tests.factories import creditor_today, invoice_payload, make_creditor, make_invoice


def bill_args(invoice, *, transfer="auto"):
    """What the view passes to the renderer, computed the same way."""
    creditor = invoice.creditor
    return {
        "payments": payments_received(invoice.id) if invoice.amount_paid else [],
        "state": due_state(invoice, local_today(creditor.country, utcnow())),
        "transfer": transfer_details(creditor, invoice) if transfer == "auto" else transfer,
    }


def render(app, invoice, lang="en", **kw):
    """The PDF as a request in `lang` would get it (session["locale"] is the explicit switch)."""
    with app.test_request_context(f"/?lang={lang}"):
        flask.session["locale"] = lang
        return render_invoice_pdf(invoice, **bill_args(invoice, **kw))


def html(app, invoice, lang="en"):
    with app.test_request_context(f"/?lang={lang}"):
        flask.session["locale"] = lang
        return invoice_html(invoice, **bill_args(invoice))


def read(pdf: bytes) -> tuple[PdfReader, list[str]]:
    """The reader and each page's text, wrapped lines joined (non-breaking spaces kept)."""
    reader = PdfReader(io.BytesIO(pdf))
    return reader, [re.sub(r"[ \n]+", " ", page.extract_text()) for page in reader.pages]


def invoice_with_lines(creditor, lines, **overrides):
    """An invoice with the given line dicts (amounts computed the way the import checks them)."""
    total = sum(line_amounts(Decimal(line.get("quantity", "1")), line["unit_price"], line.get("vat_rate", 0))[2]
                for line in lines)
    payload = invoice_payload(creditor.currency, lines=1, **overrides)
    payload.update(lines=lines, total=total)
    invoice, _created = import_invoice(creditor, payload, actor="test")
    return invoice


@pytest.mark.parametrize("kind", ["NO", "DE"])
@pytest.mark.parametrize("lang", ["en", "nb", "de"])
def test_pdf_shows_the_bill_in_the_page_locale(app, session, kind, lang):
    creditor = make_creditor(kind)
    invoice = make_invoice(creditor, lines=12)
    transfer = transfer_details(creditor, invoice)
    pdf = render(app, invoice, lang)
    reader, pages = read(pdf)
    text = " ".join(pages)
    fmt = FORMAT_LOCALES[lang]

    assert pdf.startswith(b"%PDF-")
    assert invoice.number in text
    assert format_money(invoice.total, invoice.currency, fmt) in text
    assert format_date(invoice.due_date, "long", locale=fmt) in text
    if lang != "en":  # the numbers follow the page's locale, not English
        assert format_money(invoice.total, invoice.currency, "en_GB") not in text
    assert transfer.reference in text and transfer.account in text
    assert "Kari Nordmann" in text and "Storgata 1" in text and "0150 Oslo" in text
    assert creditor.support_email in text and creditor.support_phone in text
    assert reader.metadata.author == creditor.name
    assert invoice.number in reader.metadata.title and creditor.name in reader.metadata.title
    assert reader.trailer["/Root"]["/Lang"] == lang


def test_pdf_metadata_and_labels_in_english(app, session):
    creditor = make_creditor("NO")
    invoice = make_invoice(creditor, lines=2)
    reader, pages = read(render(app, invoice, "en"))
    text = " ".join(pages)
    assert reader.metadata.title == f"Invoice {invoice.number} – {creditor.name}"
    root = reader.trailer["/Root"]
    assert root["/MarkInfo"]["/Marked"] and "/StructTreeRoot" in root  # tagged for screen readers
    assert "Invoice number" in text and "Due in 5 days" in text and "KID" in text
    assert "1503.20.80119" in text  # Norwegian account number, formatted the Norwegian way
    assert "Enter the KID in the KID field" in text
    assert "Scan with your banking app" not in text  # no EPC QR code for NOK
    assert pages[-1].rstrip().endswith(f"Page {len(pages)} of {len(pages)}")


def test_eur_invoice_embeds_the_epc_qr_code(app, session):
    creditor = make_creditor("DE")
    invoice = make_invoice(creditor, lines=2)
    document = html(app, invoice)
    match = re.search(r'src="data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)"', document)
    assert match, "the QR code is embedded as a data: URI"
    assert base64.b64decode(match.group(1)).lstrip().startswith(b"<svg")
    text = " ".join(read(render(app, invoice))[1])
    assert "Scan with your banking app to fill in the transfer for you." in text
    assert "DE89 3704 0044 0532 0130 00" in text and "COBADEFFXXX" in text


def test_logo_is_embedded_as_a_data_uri(app, session):
    creditor = make_creditor("NO")
    png = io.BytesIO()
    Image.new("RGB", (120, 40), "#1f4b99").save(png, format="PNG")
    set_logo(creditor, png.getvalue())
    invoice = make_invoice(creditor)
    document = html(app, invoice)
    assert f'src="data:image/png;base64,{base64.b64encode(png.getvalue()).decode()}"' in document
    reader, _pages = read(render(app, invoice))
    assert len(reader.pages[0].images) == 1


def test_without_logo_the_name_stands_in(app, session):
    creditor = make_creditor("NO")
    invoice = make_invoice(creditor)
    document = html(app, invoice)
    assert 'class="logo"' not in document  # the images left are the QR codes'
    assert document.count("data:image/") == document.count('<figure class="qr">')
    assert f'<p class="brand-name">{creditor.name}</p>' in document


def test_fees_and_interest_are_marked_and_explained(app, session):
    creditor = make_creditor("IE")
    start, end = creditor_today("IE") - timedelta(days=30), creditor_today("IE") - timedelta(days=1)
    invoice = invoice_with_lines(creditor, [
        {"description": "Broadband", "unit_price": 4000, "vat_rate": 2300, "unit": "month"},
        {"kind": "reminder_fee", "description": "Reminder fee", "unit_price": 850},
        {"kind": "interest", "description": "Interest", "unit_price": 37, "note": "8% a year.",
         "period_start": start.isoformat(), "period_end": end.isoformat()},
    ])
    text = " ".join(read(render(app, invoice))[1])
    assert text.count("Explained below") == 2
    assert "About the fees and interest" in text
    assert "A reminder fee is added when a bill is not paid by its due date" in text
    assert f"Late-payment interest on the overdue amount from {format_date(start, 'long', locale='en_GB')}" in text
    assert "8% a year." in text
    assert "1 month" in text and "23\u00a0%" in text


def test_payments_received_and_left_to_pay(app, session):
    invoice = make_invoice(make_creditor("NO"), lines=3)
    record_payment(invoice, 10000, actor="test", paid_on=date(2025, 3, 14), method="bank_transfer")
    text = " ".join(read(render(app, invoice, "nb"))[1])
    assert format_money(10000, "NOK", "nb_NO") in text
    assert format_date(date(2025, 3, 14), "long", locale="nb_NO") in text
    assert format_money(invoice.balance, "NOK", "nb_NO") in text


def test_paid_invoice_says_so_and_asks_for_nothing(app, session):
    invoice = make_invoice(make_creditor("IE"))
    record_payment(invoice, invoice.total, actor="test", paid_on=date.today(), method="card")
    text = " ".join(read(render(app, invoice))[1])
    assert "Paid. Thank you!" in text and "Payments received" in text
    assert "Pay by bank transfer" not in text
    assert "Left to pay €0.00" in text


def test_overdue_invoice_says_by_how_much(app, session):
    today = creditor_today("IE")
    invoice = make_invoice(make_creditor("IE"), issue_date=(today - timedelta(days=40)).isoformat(),
                           due_date=(today - timedelta(days=3)).isoformat())
    text = " ".join(read(render(app, invoice))[1])
    assert "Overdue by 3 days" in text


def test_without_bank_details_the_reference_is_still_printed(app, session):
    creditor = make_creditor("DE")
    invoice = make_invoice(creditor)
    text = " ".join(read(render(app, invoice, transfer=None))[1])
    assert "Pay by bank transfer" not in text
    reference = invoice.payment_reference
    assert " ".join(reference[i:i + 4] for i in range(0, len(reference), 4)) in text


def test_long_invoice_paginates_with_the_table_header_on_every_page(app, session):
    creditor = make_creditor("NO")
    short, long = make_invoice(creditor, lines=10), make_invoice(creditor, lines=200)
    render(app, short)  # warm up: WeasyPrint's import and font setup are paid once per process
    started = time.perf_counter()
    short_pdf = render(app, short)
    short_seconds = time.perf_counter() - started
    started = time.perf_counter()
    long_pdf = render(app, long)
    long_seconds = time.perf_counter() - started
    _reader, short_pages = read(short_pdf)
    _reader, long_pages = read(long_pdf)
    print(f"\ninvoice PDF: 10 lines {short_seconds:.2f} s ({len(short_pages)} pages), "
          f"200 lines {long_seconds:.2f} s ({len(long_pages)} pages)")

    assert len(long_pages) > len(short_pages) + 2
    table_pages = [text for text in long_pages if re.search(r"Service \d+ ", text)]
    assert len(table_pages) >= 3
    assert all("Description Quantity Unit price VAT Amount" in text for text in table_pages)
    text = " ".join(long_pages)
    assert all(f"Service {i} " in text for i in (1, 100, 200))
    assert long_pages[0].rstrip().endswith(f"Page 1 of {len(long_pages)}")
    assert long_pages[-1].rstrip().endswith(f"Page {len(long_pages)} of {len(long_pages)}")


def test_fetcher_reads_data_uris_only(app):
    fetcher = offline_url_fetcher()
    response = fetcher.fetch("data:text/plain;base64,aGk=")
    assert response.read() == b"hi"
    response.close()
    for url in ("http://127.0.0.1:9/x.png", "https://example.com/a.css", "file:///etc/passwd", "ftp://x/y"):
        with pytest.raises(ValueError):
            fetcher.fetch(url)


def test_svg_logo_cannot_reach_out(app, session, caplog):
    creditor = make_creditor("NO")
    reaching = (b'<svg xmlns="http://www.w3.org/2000/svg" width="100" height="30">'
                b'<image href="file:///etc/passwd" width="10" height="10"/>'
                b'<image href="http://127.0.0.1:9/track.png" width="10" height="10"/></svg>')
    with pytest.raises(InvalidData):
        set_logo(creditor, reaching)  # refused today; one stored before the check still cannot reach out
    creditor.logo, creditor.logo_mime, creditor.logo_version = reaching, "image/svg+xml", "0123456789ab"
    invoice = make_invoice(creditor)
    with caplog.at_level(logging.WARNING, logger="weasyprint"):
        pdf = render(app, invoice)
    assert pdf.startswith(b"%PDF-")
    refused = [r.getMessage() for r in caplog.records if "disallowed protocol" in r.getMessage()]
    assert any("file:///etc/passwd" in m for m in refused) and any("127.0.0.1:9" in m for m in refused)


@pytest.mark.parametrize("text", ['Acme "Ltd" \\ </style><script>', "Line\nbreak & <b>", "Ærlig · Straße"])
def test_css_string_round_trips_and_cannot_break_out(text):
    value = css_string(text)
    assert "<" not in value and ">" not in value and "&" not in value and "\n" not in value
    token = tinycss2.parse_one_component_value(str(value))
    assert token.type == "string" and token.value == text


def test_page_label_keeps_the_translators_order():
    assert page_label_css("Page %(page)s of %(pages)s") == '"Page " counter(page) " of " counter(pages)'
    assert page_label_css("%(page)s/%(pages)s") == 'counter(page) "/" counter(pages)'
    assert page_label_css("%(pages)s pages, this is %(page)s") == 'counter(pages) " pages, this is " counter(page)'


# --- the cache of rendered PDFs ---------------------------------------------------------------------------


def test_the_pdf_cache_is_bounded_by_bytes_least_recently_used_out_first():
    from app.billing.pdf import PdfCache

    cache = PdfCache(max_bytes=10)
    cache.put("a", b"aaaa")
    cache.put("b", b"bbbb")
    assert cache.get("a") == b"aaaa"  # a is now the most recently used
    cache.put("c", b"cccc")  # 12 bytes: b goes
    assert (cache.get("b"), cache.get("a"), cache.get("c"), cache.size) == (None, b"aaaa", b"cccc", 8)
    cache.put("huge", b"x" * 11)  # larger than the whole cache: served by the caller, never kept
    assert cache.get("huge") is None and cache.size == 8
    cache.put("a", b"aa")  # a key rendered again replaces its bytes
    assert cache.size == 6 and len(cache) == 2
    assert PdfCache(max_bytes=0).get_or_render("k", lambda: b"pdf") == b"pdf"  # 0: nothing kept


def test_one_render_per_key_however_many_ask_at_once():
    import threading

    from app.billing.pdf import PdfCache

    cache, calls, started = PdfCache(max_bytes=1000), [], threading.Barrier(8)

    def render():
        calls.append(1)
        time.sleep(0.2)  # WeasyPrint at work: the other requests arrive meanwhile
        return b"%PDF-1.7 one"

    def ask(results):
        started.wait()
        results.append(cache.get_or_render(("invoice", "x", "nb"), render))

    results: list[bytes] = []
    threads = [threading.Thread(target=ask, args=(results,)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(calls) == 1 and results == [b"%PDF-1.7 one"] * 8
