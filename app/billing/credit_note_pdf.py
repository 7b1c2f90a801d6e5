"""A credit note as an A4 PDF: its own document, in the creditor's brand and the reader's language,
naming the invoice it corrects, its lines with their VAT, and what the bill asks for after it.

A credit note never changes once issued, so its PDF is cached (in the invoice PDFs' `PdfCache`) by
the note, the language and the creditor's `updated_at` (its brand and legal details)."""

from __future__ import annotations

from flask import Response, render_template
from flask_babel import get_locale
from flask_babel import gettext as _

from app.billing.corrections import credit_notes
from app.billing.models import CreditNote, Invoice
from app.billing.pdf import css_string, footer_text, get_pdf_cache, html_to_pdf, logo_data_uri, page_label_css
from app.core.dates import local_today


def credit_note_for(invoice: Invoice, number: str) -> CreditNote | None:
    """The invoice's credit note of this number (None when the invoice has none such)."""
    return next((note for note in credit_notes(invoice.id) if note.number == number), None)


def vat_by_rate(note: CreditNote) -> list[tuple[int, int, int]]:
    """(rate in basis points, net, VAT) per rate of the note's lines, highest rate first."""
    rates: dict[int, tuple[int, int]] = {}
    for line in note.lines:
        net, vat = rates.get(line.vat_rate, (0, 0))
        rates[line.vat_rate] = (net + line.net, vat + line.vat)
    return [(rate, net, vat) for rate, (net, vat) in sorted(rates.items(), reverse=True)]


def credit_note_html(note: CreditNote, invoice: Invoice) -> str:
    creditor = invoice.creditor
    return render_template(
        "billing/credit_note_pdf.html",
        note=note,
        invoice=invoice,
        creditor=creditor,
        customer=invoice.customer,
        rates=vat_by_rate(note),
        issued=local_today(creditor.country, note.created_at),
        logo_src=logo_data_uri(creditor),
        footer_left=css_string(footer_text(creditor)),
        footer_right=page_label_css(_("Page %(page)s of %(pages)s")),
    )


def credit_note_pdf_response(note: CreditNote, invoice: Invoice) -> Response:
    """The credit note's PDF as a download, in the current locale."""
    key = ("credit_note", note.id, str(get_locale()), invoice.creditor.updated_at)
    pdf = get_pdf_cache().get_or_render(key, lambda: html_to_pdf(credit_note_html(note, invoice)))
    filename = f"credit-note-{note.number}.pdf".replace("/", "-")
    return Response(pdf, mimetype="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})
