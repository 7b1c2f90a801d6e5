"""The message that brings a customer a new link to their bill ("link.reissued" outbox messages),
by e-mail or SMS, after an agent revoked the old ones.

Rendered by the dispatcher in the message's locale. The link itself is issued here, at delivery,
for the message's channel: only a link's hash is stored, so a token cannot wait in the outbox,
and the link's row commits only if the message went out."""

from __future__ import annotations

from flask import current_app
from flask_babel import gettext as _

from app.billing.models import Invoice
from app.core.dates import local_today
from app.errors import InvalidData
from app.extensions import db
from app.links.services import NOTICE_KIND as KIND
from app.links.services import IssuedLink, get_signer, issue_link
from app.outbox.base import DeliveryError
from app.outbox.email import Notice, RenderedEmail, notice_email
from app.outbox.models import OutboxMessage
from app.templating import date_filter as fmt_date
from app.templating import money

ACTOR = "link_notice"


def _invoice_and_link(message: OutboxMessage) -> tuple[Invoice, IssuedLink]:
    invoice = db.session.get(Invoice, (message.payload or {}).get("invoice_id") or 0)
    if invoice is None:
        raise DeliveryError("the invoice of this message no longer exists", permanent=True)
    config = current_app.config
    try:
        link = issue_link(invoice, channel=message.channel, ttl_days=config["LINK_DEFAULT_TTL_DAYS"],
                          signer=get_signer(), base_url=config["PORTAL_BASE_URL"], actor=ACTOR)
    except InvalidData:
        raise DeliveryError(f"invoice {invoice.number} is {invoice.status}: no link to send", permanent=True) from None
    return invoice, link


def render_email(message: OutboxMessage) -> RenderedEmail:
    if message.kind != KIND:
        raise DeliveryError(f"no e-mail template for {message.kind!r}", permanent=True)
    invoice, link = _invoice_and_link(message)
    creditor = invoice.creditor
    notice = Notice(
        subject=_("A new link to your bill from %(creditor)s", creditor=creditor.name),
        heading=_("Here is a new link to your bill"),
        paragraphs=[_("The link you had before no longer works. Please use this one to see the bill, pay it or "
                      "write to us.")],
        facts=[(_("Invoice number"), invoice.number),
               (_("Amount due"), money(max(invoice.balance, 0), invoice.currency)),
               (_("Due date"), fmt_date(invoice.due_date))],
        link_url=link.url, link_label=_("Open the bill"),
        link_note=_("The link works until %(date)s.",
                    date=fmt_date(local_today(creditor.country, link.link.expires_at))),
        why=_("You receive this e-mail because of your bill from %(creditor)s.", creditor=creditor.name),
        reply_to=creditor.support_email,
    )
    return notice_email(notice, creditor, locale=message.locale)


def render_sms(message: OutboxMessage) -> str:
    if message.kind != KIND:
        raise DeliveryError(f"no SMS text for {message.kind!r}", permanent=True)
    invoice, link = _invoice_and_link(message)
    return _("%(creditor)s: a new link to your bill %(number)s (%(amount)s, due %(date)s): %(url)s",
             creditor=invoice.creditor.name, number=invoice.number,
             amount=money(max(invoice.balance, 0), invoice.currency), date=fmt_date(invoice.due_date, "short"),
             url=link.url)
