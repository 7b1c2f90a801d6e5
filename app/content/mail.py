"""Content blocks placed in reminder e-mails: the dunning renderer asks (`dunning.messages.email_blocks`,
a signal the factory connects here) and gets the blocks the bill's customer may see, in the e-mail's
language, with absolute links to our signed redirect (a link) or to the "I am interested" page (a link
in an e-mail must not act by itself: mail scanners open them). No impression is counted from an e-mail
(no tracking pixel in mail); a click or a lead counts the bill as shown."""

from __future__ import annotations

from collections.abc import Sequence

from flask import current_app

from app.billing.models import Invoice
from app.content.models import Action, Placement
from app.content.services import audience_for, page_content
from app.core.dates import local_today
from app.models import utcnow
from app.outbox.email import EmailBlock


def reminder_blocks(invoice: Invoice, *, locale: str, others: Sequence[Invoice] = ()) -> list[EmailBlock]:
    """The blocks of a reminder e-mail about `invoice` (`others`: the other bills it reminds of)."""
    creditor = invoice.creditor
    if not creditor.content_version:
        return []
    config = current_app.config
    today = local_today(creditor.country, utcnow())
    audience = audience_for(invoice, Placement.EMAIL, locale, today, other_bills=others, channel="email")
    found = page_content(invoice, audience, today, config["SECRET_KEY"])
    base = config["PORTAL_BASE_URL"].rstrip("/")
    blocks = []
    for item in found.blocks:
        shown = item.shown
        url = None
        if shown.block.action == Action.LINK and shown.cta:
            url = f"{base}/c/{item.ref}"
        elif shown.block.action == Action.INTEREST and shown.cta:
            url = f"{base}/c/{item.ref}/interest"
        text = (shown.variant.texts.get(locale) or {}).get("body", "")
        blocks.append(EmailBlock(title=shown.title, html=shown.html, text=text, link_url=url,
                                 link_label=shown.cta or None))
    return blocks
