""""Send me a new link": a customer whose link expired or was revoked asks for a new one on the neutral
page, and it goes to the contact points on file (never to an address typed there, never shown), by
the customer's preferred channel that works (consent given, not unsubscribed or stopped, an address
or number on file), through the outbox; the link itself is issued when the message goes out
(`links.notices`). The old links stay as they are: whoever asks cannot end the customer's links.

Each bill gets at most `per_day` new links a day this way (the answer is the same either way: the
page says the same whether anything was sent, whether the bill is still open, whether it exists).
Adds and flushes; the view commits.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import func, select

from app.billing.models import Customer, Invoice, InvoiceEvent, InvoiceStatus
from app.billing.services import record_event
from app.dunning.engine import reachable
from app.dunning.models import Channel
from app.extensions import db
from app.i18n import normalise_locale
from app.links.services import reissue
from app.links.signer import LinkSigner

ACTOR = "customer"
KIND = "link_requested"  # the invoice event of a new link a customer asked for


def channel_for(customer: Customer) -> str | None:
    """The customer's preferred channel that reaches them (e-mail or SMS), else the other one that does."""
    order: list[str] = [Channel.SMS, Channel.EMAIL]
    if customer.preferred_channel in order:
        order.remove(customer.preferred_channel)
        order.insert(0, customer.preferred_channel)
    return next((channel for channel in order if reachable(customer, channel, legal=False)), None)


def sent_today(invoice_id: int, now: datetime) -> int:
    return db.session.scalar(select(func.count(InvoiceEvent.id)).where(
        InvoiceEvent.invoice_id == invoice_id, InvoiceEvent.kind == KIND,
        InvoiceEvent.created_at > now - timedelta(days=1))) or 0


def send_new_link(invoice: Invoice, *, now: datetime, per_day: int, ttl_days: int, signer: LinkSigner,
                  base_url: str) -> str | None:
    """Send the customer a new link to the bill if it is still owed, a channel reaches them and the
    bill's daily allowance is not used up: the channel it goes by, or None when nothing was sent."""
    if invoice.is_closed or invoice.status == InvoiceStatus.PAID or invoice.balance <= 0:
        return None
    customer = invoice.customer
    channel = channel_for(customer)
    if channel is None or sent_today(invoice.id, now) >= per_day:
        return None
    to = customer.email if channel == Channel.EMAIL else customer.phone
    locale = normalise_locale(customer.preferred_locale) or normalise_locale(invoice.creditor.default_locale) or "en"
    reissue(invoice, channel, to=to, locale=locale, key=f"renew:{invoice.id}:{secrets.token_hex(8)}", actor=ACTOR,
            ttl_days=ttl_days, signer=signer, base_url=base_url, revoke=False)
    record_event(invoice, KIND, ACTOR, channel=channel)
    db.session.flush()
    return channel
