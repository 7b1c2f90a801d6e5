"""The invoice as an A4 PDF, rendered by WeasyPrint from the same facts and words as the bill page.

Rendering happens inside a request: the page's locale (flask_babel) picks the language and the
number formats. Nothing is fetched over the network: images are embedded as data: URIs and the
URL fetcher refuses every other scheme.

Rendering is slow (a 1,000-line invoice takes seconds of CPU), so each process keeps the PDFs it
rendered (`PdfCache`), keyed like the bill page's cache: the invoice, its version (what the bill
page's `BillAccess.document_version` holds: the invoice's, creditor's and customer's `updated_at` and
the newest event), the language and the creditor's local day. Bounded by PDF_CACHE_MB, least recently
used out first; one render at a time per key, so a double click renders once.
"""

from __future__ import annotations

import base64
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import date

from flask import Response, current_app, render_template
from flask_babel import get_locale
from flask_babel import gettext as _
from markupsafe import Markup
from sqlalchemy import func, select

from app.billing.corrections import credit_notes
from app.billing.invoice_law import rates_of, seller_identity
from app.billing.models import Invoice, InvoiceEvent
from app.billing.services import DueState, due_state, payments_received
from app.billing.transfer import TransferDetails, epc_payload, epc_qr_svg, qr_svg, transfer_details
from app.creditors.models import Creditor
from app.creditors.references import format_reference
from app.extensions import db

_PLACEHOLDER = re.compile(r"%\((page|pages)\)s")
EXTENSION = "invoice_pdf_cache"


class PdfCache:
    """Rendered PDFs by key, at most `max_bytes` of them (least recently used out first), shared by
    the threads of one process. A PDF larger than the whole cache is served, not kept."""

    STRIPES = 64  # locks for renders in progress, by the key's hash: one render per key at a time

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self.size = 0
        self._pdfs: OrderedDict[Hashable, bytes] = OrderedDict()
        self._lock = threading.Lock()
        self._rendering = [threading.Lock() for _ in range(self.STRIPES)]

    def get(self, key: Hashable) -> bytes | None:
        with self._lock:
            pdf = self._pdfs.get(key)
            if pdf is not None:
                self._pdfs.move_to_end(key)
            return pdf

    def put(self, key: Hashable, pdf: bytes) -> None:
        if len(pdf) > self.max_bytes:
            return
        with self._lock:
            old = self._pdfs.pop(key, None)
            self.size += len(pdf) - (len(old) if old is not None else 0)
            self._pdfs[key] = pdf
            while self.size > self.max_bytes:
                _key, evicted = self._pdfs.popitem(last=False)
                self.size -= len(evicted)

    def get_or_render(self, key: Hashable, render: Callable[[], bytes]) -> bytes:
        """The PDF for `key`; rendered by `render()` when missing, once however many ask at once."""
        pdf = self.get(key)
        if pdf is not None:
            return pdf
        with self._rendering[hash(key) % self.STRIPES]:
            pdf = self.get(key)  # rendered by the request this one waited for
            if pdf is None:
                pdf = render()
                self.put(key, pdf)
        return pdf

    def __len__(self) -> int:
        return len(self._pdfs)


def get_pdf_cache() -> PdfCache:
    """The app's PDF cache, made on first use from PDF_CACHE_MB."""
    cache = current_app.extensions.get(EXTENSION)
    if cache is None:
        cache = current_app.extensions[EXTENSION] = PdfCache(current_app.config["PDF_CACHE_MB"] * 1024 * 1024)
    return cache


def invoice_version(invoice: Invoice) -> tuple:
    """The version of what the invoice's documents show, as `access.services.BillAccess.document_version`
    reads it in the bill page's access statement (the same values, so both share a cached PDF): the invoice's,
    creditor's and customer's `updated_at`, the invoice's newest event and its count of link
    revocations. One statement."""
    newest_event = db.session.scalar(select(func.max(InvoiceEvent.id)).where(InvoiceEvent.invoice_id == invoice.id))
    return (invoice.updated_at, invoice.creditor.updated_at, invoice.customer.updated_at, newest_event,
            invoice.link_revocations)


def invoice_pdf_response(invoice: Invoice, today: date, version: tuple | None = None, *,
                         default_notice: date | None = None, held: int = 0) -> Response:
    """The invoice's PDF as a download, in the current locale (the bill page's, and the collection
    partner's copy of it): from the cache when this version was rendered in this language today.
    `version`: the bill page's `BillAccess.document_version` when the caller has it (else read here).
    `default_notice`: Germany's consumer default notice (§ 286(3) BGB) and its day, where the creditor
    gives it (`dunning.outlook.default_notice_date`: the caller asks, billing cannot). `held`: what an open
    dispute holds back (the caller asks the resolutions): the PDF says it apart, and its bank details,
    amount and QR code are for the rest."""
    held = min(max(held, 0), max(invoice.balance, 0))
    key = ("invoice", invoice.public_id, str(get_locale()), today, version or invoice_version(invoice), default_notice,
           held)
    due_now = invoice.balance - held if held else None
    pdf = get_pdf_cache().get_or_render(key, lambda: render_invoice_pdf(
        invoice, payments=payments_received(invoice.id) if invoice.amount_paid else [],
        state=due_state(invoice, today), default_notice=default_notice, held=held,
        transfer=transfer_details(invoice.creditor, invoice, due_now) if not held or due_now else None,
    ))
    filename = f"invoice-{invoice.number}.pdf".replace("/", "-")
    return Response(pdf, mimetype="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def render_invoice_pdf(
    invoice: Invoice, *, payments: list[InvoiceEvent], state: DueState, transfer: TransferDetails | None,
    default_notice: date | None = None, held: int = 0,
) -> bytes:
    """The invoice as PDF bytes, in the current request's language and the creditor's brand."""
    return html_to_pdf(invoice_html(invoice, payments=payments, state=state, transfer=transfer,
                                    default_notice=default_notice, held=held))


def invoice_html(
    invoice: Invoice, *, payments: list[InvoiceEvent], state: DueState, transfer: TransferDetails | None,
    default_notice: date | None = None, held: int = 0,
) -> str:
    """The HTML document the PDF is printed from, with its images embedded."""
    creditor = invoice.creditor
    notes = credit_notes(invoice.id) if invoice.credited else []
    address = bill_address(invoice)
    return render_template(
        "billing/invoice_pdf.html",
        invoice=invoice,
        creditor=creditor,
        customer=invoice.customer,
        lines=invoice.lines,
        fees=[line for line in invoice.lines if line.is_fee],
        payments=payments,
        state=state,
        transfer=transfer,
        reference=_reference(invoice, creditor, transfer),
        credit_notes=notes,
        vat_rates=rates_of(invoice, notes),
        bill_address=address,
        bill_qr_src=data_uri(qr_svg(address.url, title=_("QR code with the address of your bill")).encode("utf-8"),
                             "image/svg+xml"),
        logo_src=logo_data_uri(creditor),
        qr_src=_qr_data_uri(invoice, transfer),
        footer_left=css_string(footer_text(creditor)),
        footer_right=page_label_css(_("Page %(page)s of %(pages)s")),
        default_notice=default_notice,
        held=held,
    )


@dataclass(frozen=True)
class BillAddress:
    url: str  # https://pay.example.com/b/<public id> (the QR code)
    typed: str  # pay.example.com/b/<public id> (printed)


def bill_address(invoice: Invoice) -> BillAddress:
    """The bill page's address as a printed invoice carries it: the creditor's portal domain (else
    PORTAL_BASE_URL) and the bill's public id. No credential: it opens the bill in a browser that holds a
    grant for it, and elsewhere the neutral page with "send me a new link", which goes to the contact points
    on file (docs/decisions.md, "Invoices that meet the law")."""
    base = (invoice.creditor.portal_base_url or current_app.config["PORTAL_BASE_URL"]).rstrip("/")
    url = f"{base}/b/{invoice.public_id}"
    return BillAddress(url, re.sub(r"^https?://", "", url))


def html_to_pdf(html: str) -> bytes:
    """Print self-contained HTML to a tagged PDF with the invoice stylesheet, fetching nothing from outside."""
    from weasyprint import CSS, HTML  # slow to import: only when a PDF is asked for

    fetcher, fonts = offline_url_fetcher(), font_config()
    assert current_app.static_folder is not None  # create_app gives the app its static folder
    with open(os.path.join(current_app.static_folder, "css", "pdf.css"), encoding="utf-8") as f:
        stylesheet = CSS(string=f.read(), base_url=None, url_fetcher=fetcher, font_config=fonts)
    return HTML(string=html, base_url=None, url_fetcher=fetcher).write_pdf(stylesheets=[stylesheet], pdf_tags=True,
                                                                           font_config=fonts)


_fonts = threading.local()


def font_config():
    """This thread's WeasyPrint font configuration, made for its first document and kept for the next.
    Without one, WeasyPrint makes a new one per document (Pango's font map, fontconfig's set), and
    what those leave in native memory is never given back: a documents worker grew by 48 MB in 200
    invoices and went on growing; with one kept, it stays within 2 MB of where its tenth PDF left it
    (docs/decisions.md, "One font configuration per documents worker"). Per thread: Pango's font
    maps are not made to be shared between threads (gunicorn's sync workers have one)."""
    config = getattr(_fonts, "config", None)
    if config is None:
        from weasyprint.text.fonts import FontConfiguration

        config = _fonts.config = FontConfiguration()
    return config


def offline_url_fetcher():
    """A WeasyPrint URL fetcher that only reads data: URIs (our embedded logo and QR code)."""
    from weasyprint.urls import URLFetcher

    return URLFetcher(allowed_protocols=("data",), allow_redirects=False, timeout=1)


def _reference(invoice: Invoice, creditor: Creditor, transfer: TransferDetails | None) -> dict:
    """The payment reference as printed, and whether it is a KID or an RF reference."""
    if transfer is not None:
        return {"kind": transfer.reference_kind, "text": transfer.reference}
    scheme = creditor.reference_scheme
    return {"kind": "rf" if scheme == "rf" else "kid", "text": format_reference(scheme, invoice.payment_reference)}


def data_uri(content: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(content).decode('ascii')}"


def logo_data_uri(creditor: Creditor) -> str | None:
    """The creditor's logo embedded in the document (loads the deferred column)."""
    if not creditor.logo_mime:
        return None
    content = creditor.logo
    return data_uri(content, creditor.logo_mime) if content else None


def _qr_data_uri(invoice: Invoice, transfer: TransferDetails | None) -> str | None:
    """The EPC QR code for a SEPA transfer of what the bank details ask for, when one can be made."""
    if transfer is None or not transfer.epc_qr:
        return None
    svg = epc_qr_svg(epc_payload(invoice.creditor, invoice, transfer.amount), title=_("QR code for a bank transfer"))
    return data_uri(svg.encode("utf-8"), "image/svg+xml")


def footer_text(creditor: Creditor) -> str:
    """The legal name and the seller's identity as the creditor's country's law wants it."""
    return " · ".join([creditor.legal_name or creditor.name, *seller_identity(creditor)])


def css_string(text: str) -> Markup:
    """`text` as a quoted CSS string that is also safe inside an HTML <style> element."""
    escaped = "".join(
        f"\\{ord(char):x} " if char in '"\\<>&' or ord(char) < 0x20 or ord(char) == 0x7F else char for char in text
    )
    return Markup(f'"{escaped}"')  # noqa: S704  quotes, backslashes, <, >, & and controls escaped above


def page_label_css(label: str) -> Markup:
    """A translated 'Page %(page)s of %(pages)s' as a CSS content value with the page counters.

    The translation may put the placeholders in any order, or leave one out."""
    parts = _PLACEHOLDER.split(label)
    values = [f"counter({part})" if i % 2 else css_string(part) for i, part in enumerate(parts) if part]
    return Markup(" ".join(values))  # noqa: S704  css_string's Markup and counter(page|pages)
