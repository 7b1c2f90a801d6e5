"""The outbox renderers of dunning messages ("dunning.message", by e-mail and SMS), registered by the
app factory.

Rendered at delivery, in the message's language, from the step's text and the bills as they are
then: a bill paid, cancelled, paused or asked about since the run decided is left out (its notice becomes
`paid_before`); when none is left the message is not sent at all (a permanent DeliveryError whose
`after` records why). A fresh signed link is issued here, for the message's channel, to the oldest
bill of the message (it opens the customer's other open bills too, listed on its page): only its
hash is stored, and its row commits only if the message goes out, as `links.notices` does. The text
as sent, with the link's token left out, is kept on the message for the timeline.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from flask import current_app
from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import select

from app.billing.models import Customer, Invoice
from app.core.dates import local_today
from app.creditors.models import Creditor
from app.dunning import templates
from app.dunning.contact import unsubscribe_url
from app.dunning.engine import KIND, is_legal_notice, reachable
from app.dunning.models import Channel, Message, MessageStatus, Notice, NoticeStatus, Plan, Step, StepKind
from app.dunning.services import fall_back
from app.errors import InvalidData
from app.extensions import db
from app.links.services import get_signer, issue_link
from app.models import utcnow
from app.outbox.base import DeliveryError
from app.outbox.email import Notice as EmailNotice
from app.outbox.email import RenderedEmail, notice_email
from app.outbox.models import OutboxMessage
from app.resolutions.services import dunning_for
from app.support.models import RequestStatus, SupportRequest
from app.templating import date_filter, money

ACTOR = "dunning"
NO_LINK = "[link]"  # what the kept text shows in place of the link


@dataclass
class Content:
    message: Message
    rendered: templates.Rendered
    kept: templates.Rendered  # the same, with NO_LINK for the link
    url: str
    lead: Invoice
    others: list[Invoice]
    creditor: Creditor
    customer: Customer
    legal: bool  # a notice the law requires (Norway's inkassovarsel): no unsubscribe link


def _notices_left(message: Message, now: datetime) -> tuple[list[tuple[Notice, Invoice]], list[Notice]]:
    pairs = db.session.execute(select(Notice, Invoice).join(Invoice, Invoice.id == Notice.invoice_id)
                               .where(Notice.message_id == message.id).order_by(Invoice.due_date, Invoice.id)).all()
    asked = set(db.session.scalars(select(SupportRequest.invoice_id).where(
        SupportRequest.invoice_id.in_([invoice.id for _notice, invoice in pairs]),
        SupportRequest.status == RequestStatus.OPEN)))
    left: list[tuple[Notice, Invoice]] = []
    gone: list[tuple[Notice, Invoice]] = []
    for notice, invoice in pairs:
        today = local_today(invoice.creditor.country, now)
        remind = dunning_for(invoice, today).may_remind and invoice.id not in asked
        (left if remind else gone).append((notice, invoice))
    return left, [notice for notice, _invoice in gone]


def _nothing_left(message_id: int, notice_ids: list[int]):
    def record() -> None:
        found = db.session.get(Message, message_id)
        if found is not None:
            found.status, found.failure, found.status_at = MessageStatus.FAILED, "settled before it went out", utcnow()
        for notice in db.session.scalars(select(Notice).where(Notice.id.in_(notice_ids))):
            notice.status = NoticeStatus.PAID_BEFORE
    return record


def content(outbox_message: OutboxMessage) -> Content:
    """What a dunning message says now (see the module's docstring); raises DeliveryError when nothing."""
    if outbox_message.kind != KIND:
        raise DeliveryError(f"no dunning text for {outbox_message.kind!r}", permanent=True)
    message = db.session.get(Message, (outbox_message.payload or {}).get("message_id") or 0)
    if message is None:
        raise DeliveryError("the dunning message no longer exists", permanent=True)
    now = utcnow()
    left, gone = _notices_left(message, now)
    if not left:
        raise DeliveryError("nothing left to remind: settled or paused since it was decided", permanent=True,
                            after=_nothing_left(message.id, [n.id for n in gone]))
    for notice in gone:
        notice.status = NoticeStatus.PAID_BEFORE
    lead_notice, lead = max(left, key=lambda pair: (StepKind(pair[0].kind).rank, -pair[1].due_date.toordinal()))
    step = db.session.get(Step, lead_notice.step_id)
    plan = db.session.get(Plan, lead_notice.plan_id)
    creditor, customer = lead.creditor, db.session.get(Customer, message.customer_id)
    if step is None or plan is None or customer is None:  # kept by RESTRICT and CASCADE: never, but said
        raise DeliveryError("the dunning message's step, plan or customer no longer exists", permanent=True)
    oldest = left[0][1]
    config = current_app.config
    try:
        link = issue_link(oldest, channel=message.channel, ttl_days=config["LINK_DEFAULT_TTL_DAYS"],
                          signer=get_signer(), base_url=config["PORTAL_BASE_URL"], actor=ACTOR)
    except InvalidData:
        raise DeliveryError(f"invoice {oldest.number} is {oldest.status}: no link to send", permanent=True) from None
    message.link_id = link.link.id  # its first opening marks the message opened (`delivery`)
    facts = templates.Facts(
        customer=customer.name, invoice=lead.number, amount=lead.balance, currency=lead.currency,
        due_date=lead.due_date, deadline=lead_notice.deadline, fee=lead_notice.fee, link=link.url,
        creditor=creditor.name, reference=lead.payment_reference, jurisdiction=plan.jurisdiction,
        support=creditor.support_phone or creditor.support_email or "")
    locale = templates.pick_locale(step.texts, message.locale, (creditor.default_locale, "en"))
    rendered = templates.render(step.texts, facts, locale)
    kept = templates.render(step.texts, templates.Facts(**{**facts.__dict__, "link": NO_LINK}), locale)
    others = [invoice for _notice, invoice in left if invoice.id != lead.id]
    return Content(message, rendered, kept, link.url, lead, others, creditor, customer,
                   is_legal_notice(plan, step))


def _keep(found: Content, subject: str | None, body: str) -> None:
    found.message.subject, found.message.body = (subject or "")[:300] or None, body
    found.message.status, found.message.status_at = MessageStatus.SENT, utcnow()
    db.session.flush()


def _other_bills(found: Content) -> list[tuple[str, str]]:
    return [(_("Also due: invoice %(number)s", number=invoice.number),
             _("%(amount)s, due %(date)s", amount=money(max(invoice.balance, 0), invoice.currency),
               date=date_filter(invoice.due_date))) for invoice in found.others]


def _still_reachable(outbox_message: OutboxMessage) -> None:
    """An unsubscribe (or a consent withdrawn) between the run's decision and the delivery is honoured at
    once: the e-mail does not go, and its notices fall back to the next channel (a letter at the end)."""
    message = db.session.get(Message, (outbox_message.payload or {}).get("message_id") or 0)
    if message is None:
        return
    customer = db.session.get(Customer, message.customer_id)
    legal = any(is_legal_notice(plan, step) for plan, step in db.session.execute(
        select(Plan, Step).join(Notice, Notice.step_id == Step.id).join(Plan, Plan.id == Notice.plan_id)
        .where(Notice.message_id == message.id)).all())
    if customer is None or reachable(customer, Channel.EMAIL, legal=legal):
        return
    message_id = message.id

    def fall_back_now() -> None:
        found = db.session.get(Message, message_id)
        if found is not None:
            fall_back(found, "unsubscribed")

    raise DeliveryError("the customer unsubscribed from e-mails (or withdrew consent) before it went out",
                        permanent=True, after=fall_back_now)


def render_email(outbox_message: OutboxMessage) -> RenderedEmail:
    _still_reachable(outbox_message)
    found = content(outbox_message)
    creditor, lead = found.creditor, found.lead
    facts = [(_("Invoice number"), lead.number), (_("Amount due"), money(max(lead.balance, 0), lead.currency)),
             (_("Due date"), date_filter(lead.due_date)), *_other_bills(found)]
    unsubscribe = unsubscribe_url(found.customer.id, lead.id)
    notice = EmailNotice(
        subject=found.rendered.subject, heading=found.rendered.subject,
        paragraphs=[part.strip() for part in found.rendered.body.split("\n\n") if part.strip()],
        facts=facts, link_url=found.url, link_label=_("Open the bill"),
        why=_("You receive this e-mail because of your bill from %(creditor)s.", creditor=creditor.name),
        reply_to=creditor.support_email,
        unsubscribe_url=unsubscribe, unsubscribe_label=_("Stop reminders by e-mail"),
        one_click_url=f"{unsubscribe}/one-click",
    )
    if found.legal:  # required by law: sent whatever the customer chose for reminders, and it says why
        notice = replace(notice, unsubscribe_url=None, unsubscribe_label=None, one_click_url=None, why=_(
            "You receive this notice because the law requires %(creditor)s to send it in writing before a claim "
            "goes to debt collection, and you agreed to receive such notices by e-mail. A notice the law requires "
            "has no unsubscribe link.", creditor=creditor.name))
    _keep(found, found.kept.subject, found.kept.body)
    return notice_email(notice, creditor, locale=found.rendered.locale)


def render_sms(outbox_message: OutboxMessage) -> str:
    found = content(outbox_message)
    text, kept = found.rendered.sms, found.kept.sms
    if found.others:
        more = ngettext("(and %(num)d more bill)", "(and %(num)d more bills)", len(found.others))
        text, kept = f"{text} {more}", f"{kept} {more}"
    if found.url not in text:  # the creditor's text has no {link}: the link goes last
        text, kept = f"{text} {found.url}", f"{kept} {NO_LINK}"
    _keep(found, None, kept)
    return text
