"""What a dunning letter says, where its address goes, and the A4 PDF.

A letter is made in two steps, so that the same file can be made again:

1. `facts_for(...)` reads the letter's message, its notices and bills as they are at the print run
   and writes down everything the page shows (the step's subject and text in the customer's language,
   each bill with its fees and interest, what is left to pay, the deadline, the creditor's bank
   account, each bill's KID or RF reference and EPC QR payload): a JSON snapshot, kept with the print
   (`LetterPrint.facts`). The link is not in it: the text keeps the `{link}` variable.
2. `render_letter(facts, link)` prints the snapshot with the letter's short address and QR code
   (`links.codes`) in WeasyPrint: the invoice PDF's stylesheet and fonts (embedded as subsets),
   nothing fetched from anywhere, the document's dates fixed to the letter's date. The same facts
   and link give the same bytes, so a batch's files can be written again with their checksums.

The recipient's address sits where a window envelope shows it (`window_for`; see
docs/dunning/letters.md for the positions and their sources). Page numbers appear when the letter
runs over one page.
"""

from __future__ import annotations

import io
import os
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

import segno
from babel import Locale
from flask import current_app, render_template
from flask_babel import force_locale
from flask_babel import gettext as _

from app.billing.invoice_law import rates_of, seller_identity
from app.billing.models import Customer, Invoice
from app.billing.pdf import css_string, data_uri, font_config, offline_url_fetcher, page_label_css
from app.billing.texts import line_words
from app.billing.transfer import can_make_epc_qr, epc_payload, epc_qr_svg, transfer_details
from app.creditors.models import Creditor
from app.creditors.references import format_reference
from app.dunning import templates, variants
from app.dunning.models import Letter, Message, Notice, Plan, Step, StepKind
from app.extensions import db
from app.i18n import normalise_locale

VERSION = 1  # of the facts' shape: a template reading an older snapshot can tell
LINK = "{link}"  # kept in the snapshot's text where the short address goes (filled when printed)
KEPT_LINK = "[link]"  # the text kept on the message for the timeline, as messages.NO_LINK


@dataclass(frozen=True)
class Window:
    """Where the recipient's address is printed, in millimetres from the sheet's top left corner, so
    that a window envelope shows it (the return line too, where the standard keeps a zone for it)."""

    name: str
    left: float  # the address field's left edge
    top: float  # its top edge
    width: float
    height: float
    inset: float  # the text starts this far inside the field (room for the sheet to move in the envelope)
    return_line: bool  # a one-line return address above the recipient, inside the window
    fold_marks: tuple[float, ...]  # fold marks on the left edge (mm from the top)
    text_top: float  # where the letter's text begins on the first page


#: DIN 5008 form B (the address field of a letter folded in three for a DIN C5/6 or DL window envelope,
#: DIN 680): 45 mm from the top, 20 mm from the left, 85 × 45 mm: a 17.7 mm zone for the return address
#: and notes, then 27.3 mm for the address. Fold marks at 105 and 210 mm; the text from 98.5 mm.
DIN = Window("DIN 5008 B", left=20, top=45, width=85, height=45, inset=5, return_line=True,
             fold_marks=(105, 210), text_top=98.5)
#: The Nordic window envelopes E65 (window 15 mm from the left, 40 mm from the top, 95 × 30 mm) and C5
#: (15 mm, 44 mm, 105 × 35 mm): the field lies inside both, 46 mm from the top, 85 × 22 mm, its text
#: 5 mm inside the window's left edge. The return address is in the letterhead, not in the window.
NORDIC = Window("Nordic C5/E65", left=20, top=46, width=85, height=22, inset=0, return_line=False,
                fold_marks=(), text_top=78)
NORDIC_COUNTRIES = frozenset({"NO", "SE", "DK", "FI", "IS"})

PAGE_MARGIN = {"top": 20.0, "right": 20.0, "bottom": 22.0, "left": 25.0}  # mm; letter.css says the same


def window_for(country: str) -> Window:
    """The window of the envelopes the creditor's country posts in: Nordic, else DIN 5008."""
    return NORDIC if country in NORDIC_COUNTRIES else DIN


# --- the facts -----------------------------------------------------------------------------------------


def _creditor(creditor: Creditor) -> dict[str, Any]:
    return {"name": creditor.name, "legal_name": creditor.legal_name, "address": creditor.address,
            "org_number": creditor.org_number, "vat_id": creditor.vat_id, "tax_number": creditor.tax_number,
            "country": creditor.country, "currency": creditor.currency,
            "brand_primary": creditor.brand_primary, "brand_accent": creditor.brand_accent,
            "support_phone": creditor.support_phone, "support_email": creditor.support_email,
            "support_hours": creditor.support_hours, "support_url": creditor.support_url,
            "locale": normalise_locale(creditor.default_locale) or "en"}


def _bill(creditor: Creditor, invoice: Invoice) -> dict[str, Any]:
    fees = [line for line in invoice.lines if line.is_fee]
    balance = max(invoice.balance, 0)
    return {
        "number": invoice.number, "due_date": invoice.due_date.isoformat(), "currency": invoice.currency,
        "reference": format_reference(creditor.reference_scheme, invoice.payment_reference),
        "reference_kind": "rf" if creditor.reference_scheme == "rf" else "kid",
        "amount": invoice.total - sum(line.gross for line in fees),  # the bill without its fees and interest
        # in the letter's language (the caller's locale): a portal-written fee's words translated
        "charges": [{"kind": line.kind, "description": line_words(line, creditor.default_locale), "amount": line.gross}
                    for line in fees],
        "paid": invoice.amount_paid, "balance": balance,
        "vat": [{"rate": r.rate, "net": r.net, "vat": r.vat} for r in rates_of(invoice)],  # the bill's, per rate
        "epc": epc_payload(creditor, invoice) if can_make_epc_qr(creditor, invoice) else None,
    }


def _transfer(creditor: Creditor, invoice: Invoice) -> dict[str, Any] | None:
    details = transfer_details(creditor, invoice)
    if details is None:
        return None
    return {"account_label": details.account_label, "account": details.account, "bic": details.bic,
            "recipient": creditor.legal_name or creditor.name}


def facts_for(letter: Letter, message: Message, notices: list[tuple[Notice, Invoice]], *, on: date,
              link_expires: date) -> dict[str, Any]:
    """The snapshot a letter is printed from (see the module). `notices`: the message's notices still to
    send, with their bills, oldest bill first; the most advanced step speaks (as in an e-mail)."""
    lead_notice, lead = max(notices, key=lambda pair: (StepKind(pair[0].kind).rank, -pair[1].due_date.toordinal()))
    step = db.session.get(Step, lead_notice.step_id)
    plan = db.session.get(Plan, lead_notice.plan_id)
    assert step is not None and plan is not None  # a notice's step and plan are never deleted (RESTRICT)
    creditor = lead.creditor
    customer = db.session.get(Customer, message.customer_id)
    assert customer is not None
    texts = variants.texts_for(step.texts, step.variants, message.variant) if message.variant else step.texts
    locale = templates.pick_locale(texts, message.locale, (creditor.default_locale, "en"))
    text = templates.Facts(
        customer=customer.name, invoice=lead.number, amount=max(lead.balance, 0), currency=lead.currency,
        due_date=lead.due_date, deadline=lead_notice.deadline, fee=lead_notice.fee, link=LINK,
        creditor=creditor.name, reference=format_reference(creditor.reference_scheme, lead.payment_reference),
        jurisdiction=plan.jurisdiction, support=creditor.support_phone or creditor.support_email or "")
    rendered = templates.render(texts, text, locale)
    with force_locale(locale):
        consequences = templates.consequences(plan.jurisdiction)
    legal = consequences if step.kind == StepKind.COLLECTION_WARNING and consequences not in rendered.body else None
    deadlines = [notice.deadline for notice, _invoice in notices if notice.deadline]
    with force_locale(locale):
        bills = [_bill(creditor, invoice) for _notice, invoice in notices]
    currencies = {bill["currency"] for bill in bills}
    return {
        "version": VERSION, "letter": letter.id, "date": on.isoformat(), "locale": locale,
        "kind": step.kind, "jurisdiction": plan.jurisdiction, "window": asdict(window_for(creditor.country)),
        "creditor": _creditor(creditor),
        "customer": {"number": customer.external_ref, "name": customer.name, "kind": customer.kind},
        "address": {"name": customer.name, **(letter.address or {})},
        "subject": rendered.subject, "body": rendered.body, "legal": legal,
        "deadline": min(deadlines).isoformat() if deadlines else None,
        "bills": bills,
        "total": sum(bill["balance"] for bill in bills) if len(currencies) == 1 else None,
        "currency": lead.currency,
        "transfer": _transfer(creditor, lead),
        "link_expires": link_expires.isoformat(),
    }


def kept_text(facts: dict[str, Any]) -> tuple[str, str]:
    """The subject and text as the timeline keeps them (the link left out, as for e-mails and SMS)."""
    values = {"link": KEPT_LINK}
    return templates.fill(facts["subject"], values), templates.fill(facts["body"], values)


# --- the PDF -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LetterLink:
    url: str  # the QR code's content: https://pay.example.com/k/7KQ2M-9XDAB
    typed: str  # printed: pay.example.com/k/7KQ2M-9XDAB


@dataclass(frozen=True)
class RenderedLetter:
    pdf: bytes
    pages: int


def _qr(payload: str, title: str) -> str:
    qr = segno.make(payload, error="m", micro=False, boost_error=False, encoding="utf-8")
    out = io.BytesIO()
    qr.save(out, kind="svg", scale=4, border=4, title=title, xmldecl=False, svgns=True, nl=False)
    return data_uri(out.getvalue(), "image/svg+xml")


def _country_line(address: dict[str, Any], creditor: dict[str, Any]) -> str | None:
    """The destination country, on a line of its own, when the letter leaves the creditor's country: in
    the sender's country's language, in capitals (UPU's advice)."""
    country = (address.get("country") or "").upper()
    if not country or country == creditor["country"]:
        return None
    name = Locale.parse(creditor["locale"]).territories.get(country, country)
    return name.upper()


def letter_html(facts: dict[str, Any], link: LetterLink, *, logo_src: str | None, numbered: bool) -> str:
    """The HTML document the PDF is printed from, in the letter's language, its images embedded."""
    locale = facts["locale"]
    with force_locale(locale):
        bills = facts["bills"]
        epc = [(bill, epc_qr_svg(bill["epc"], title=_("QR code for a bank transfer"))) for bill in bills
               if bill.get("epc")]
        # The seller's identity as its country's law wants it (a snapshot before vat_id was kept: none).
        footer = " · ".join([facts["creditor"]["legal_name"] or facts["creditor"]["name"],
                             *seller_identity(facts["creditor"])])
        return render_template(
            "dunning/letter_pdf.html", f=facts, w=facts["window"], margin=PAGE_MARGIN, locale=locale,
            body=templates.fill(facts["body"], {"link": link.typed}).split("\n\n"), link=link,
            link_qr=_qr(link.url, _("QR code with the address of your bill")),
            epc=[(bill, data_uri(svg.encode("utf-8"), "image/svg+xml")) for bill, svg in epc],
            logo_src=logo_src, country_line=_country_line(facts["address"], facts["creditor"]),
            footer_left=css_string(footer), footer_right=page_label_css(_("Page %(page)s of %(pages)s")),
            numbered=numbered, created=f"{facts['date']}T00:00:00+00:00",
        )


def logo_of(creditor: Creditor) -> str | None:
    """The creditor's logo as a data: URI (the PDF fetches nothing)."""
    if not creditor.logo_mime:
        return None
    content = creditor.logo
    return data_uri(content, creditor.logo_mime) if content else None


def _stylesheets(fetcher, fonts) -> list:
    from weasyprint import CSS

    assert current_app.static_folder is not None
    sheets = []
    for name in ("pdf.css", "letter.css"):  # the invoice's typography, then the letter's layout
        with open(os.path.join(current_app.static_folder, "css", name), encoding="utf-8") as f:
            sheets.append(CSS(string=f.read(), base_url=None, url_fetcher=fetcher, font_config=fonts))
    return sheets


def render_letter(facts: dict[str, Any], link: LetterLink, *, logo_src: str | None) -> RenderedLetter:
    """The letter as PDF bytes and its number of pages (numbered when more than one)."""
    from weasyprint import HTML  # slow to import: only when a letter is printed

    fetcher, fonts = offline_url_fetcher(), font_config()  # the stylesheets' and the layout's, one and the same
    stylesheets = _stylesheets(fetcher, fonts)

    def layout(numbered: bool):
        html = letter_html(facts, link, logo_src=logo_src, numbered=numbered)
        return HTML(string=html, base_url=None, url_fetcher=fetcher).render(stylesheets=stylesheets, pdf_tags=True,
                                                                            font_config=fonts)

    document = layout(False)
    if len(document.pages) > 1:
        document = layout(True)
    return RenderedLetter(document.write_pdf(pdf_tags=True), len(document.pages))
