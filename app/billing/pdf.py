"""The invoice as an A4 PDF, rendered by WeasyPrint from the same facts and words as the bill page.

Rendering happens inside a request: the page's locale (flask_babel) picks the language and the
number formats. Nothing is fetched over the network: images are embedded as data: URIs and the
URL fetcher refuses every other scheme.
"""

from __future__ import annotations

import base64
import os
import re
from datetime import date

from flask import Response, current_app, render_template
from flask_babel import gettext as _
from markupsafe import Markup

from app.billing.corrections import credit_notes
from app.billing.models import Invoice, InvoiceEvent
from app.billing.services import DueState, due_state, payments_received
from app.billing.transfer import TransferDetails, epc_payload, epc_qr_svg, transfer_details
from app.creditors.models import Creditor
from app.creditors.references import format_reference

_PLACEHOLDER = re.compile(r"%\((page|pages)\)s")


def invoice_pdf_response(invoice: Invoice, today: date) -> Response:
    """The invoice's PDF as a download, in the current locale (the bill page's, and the collection
    partner's copy of it)."""
    pdf = render_invoice_pdf(
        invoice, payments=payments_received(invoice.id) if invoice.amount_paid else [],
        state=due_state(invoice, today), transfer=transfer_details(invoice.creditor, invoice, None),
    )
    filename = f"invoice-{invoice.number}.pdf".replace("/", "-")
    return Response(pdf, mimetype="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def render_invoice_pdf(
    invoice: Invoice, *, payments: list[InvoiceEvent], state: DueState, transfer: TransferDetails | None
) -> bytes:
    """The invoice as PDF bytes, in the current request's language and the creditor's brand."""
    return html_to_pdf(invoice_html(invoice, payments=payments, state=state, transfer=transfer))


def invoice_html(
    invoice: Invoice, *, payments: list[InvoiceEvent], state: DueState, transfer: TransferDetails | None
) -> str:
    """The HTML document the PDF is printed from, with its images embedded."""
    creditor = invoice.creditor
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
        credit_notes=credit_notes(invoice.id) if invoice.credited else [],
        logo_src=_logo_data_uri(creditor),
        qr_src=_qr_data_uri(invoice, transfer),
        footer_left=css_string(_footer_text(creditor)),
        footer_right=page_label_css(_("Page %(page)s of %(pages)s")),
    )


def html_to_pdf(html: str) -> bytes:
    """Print self-contained HTML to a tagged PDF with the invoice stylesheet, fetching nothing from outside."""
    from weasyprint import CSS, HTML  # slow to import: only when a PDF is asked for

    fetcher = offline_url_fetcher()
    assert current_app.static_folder is not None  # create_app gives the app its static folder
    with open(os.path.join(current_app.static_folder, "css", "pdf.css"), encoding="utf-8") as f:
        stylesheet = CSS(string=f.read(), base_url=None, url_fetcher=fetcher)
    return HTML(string=html, base_url=None, url_fetcher=fetcher).write_pdf(stylesheets=[stylesheet], pdf_tags=True)


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


def _logo_data_uri(creditor: Creditor) -> str | None:
    """The creditor's logo embedded in the document (loads the deferred column)."""
    if not creditor.logo_mime:
        return None
    content = creditor.logo
    return data_uri(content, creditor.logo_mime) if content else None


def _qr_data_uri(invoice: Invoice, transfer: TransferDetails | None) -> str | None:
    """The EPC QR code for a SEPA transfer of the balance, when one can be made."""
    if transfer is None or not transfer.epc_qr:
        return None
    svg = epc_qr_svg(epc_payload(invoice.creditor, invoice), title=_("QR code for a bank transfer"))
    return data_uri(svg.encode("utf-8"), "image/svg+xml")


def _footer_text(creditor: Creditor) -> str:
    text = creditor.legal_name or creditor.name
    if creditor.org_number:
        text += f" · {_('Org. no.')} {creditor.org_number}"
    return text


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
