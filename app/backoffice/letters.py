"""A letter with a new link to the bill, for an agent to print and post: the creditor's letterhead,
the customer's address, what is owed, the link written out and as a QR code.

The link's token is in the letter only: the page is shown once, with no-store, and the token is
never stored (only its hash)."""

from __future__ import annotations

import io

import segno

from app.billing.models import Invoice
from app.links.services import IssuedLink
from app.models import utcnow
from app.portal.services import local_today


def qr_svg(url: str, title: str) -> str:
    qr = segno.make(url, error="m")
    out = io.BytesIO()
    qr.save(out, kind="svg", scale=4, border=2, title=title, xmldecl=False, svgns=True, nl=False)
    return out.getvalue().decode()


def letter_context(invoice: Invoice, issued: IssuedLink) -> dict:
    creditor = invoice.creditor
    return {
        "invoice": invoice, "creditor": creditor, "customer": invoice.customer, "url": issued.url,
        "qr": qr_svg(issued.url, invoice.number),
        "today": local_today(creditor.country, utcnow()),
        "expires": local_today(creditor.country, issued.link.expires_at),
    }
