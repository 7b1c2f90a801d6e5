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

from blinker import signal
from flask import current_app
from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import exists, select

from app.billing.models import Customer, Invoice
from app.core.dates import local_today
from app.core.loading import linked
from app.creditors.models import Creditor
from app.dunning import templates, variants
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
from app.resolutions.models import Resolution
from app.resolutions.pause import dunning
from app.resolutions.services import live_resolutions_of
from app.support.models import RequestStatus, SupportRequest
from app.templating import date_filter, money

ACTOR = "dunning"

#: Asked while a reminder e-mail is rendered: (lead bill, locale=..., others=...) -> the creditor's content
#: blocks for it (`outbox.email.EmailBlock`s). `content` answers (connected by the factory): it sits above
#: dunning, so it is asked rather than called.
email_blocks = signal("dunning-email-blocks")
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


@dataclass
class Loaded:
    """A dunning message with everything its checks and text need: the message with its customer, its
    notices with their bills, creditors, steps and plans and whether each bill has an open customer
    question (oldest bill first), and the bills' live resolutions. Read in three statements for one
    message (`_load`) or for a dispatcher's whole batch (`prepare`, left on each outbox message).
    Each bill holds its creditor (`invoice.creditor` needs no statement of its own), each row its step and plan."""

    message: Message
    customer: Customer | None
    rows: list[tuple[Notice, Invoice, Step, Plan]]
    asked: set[int]  # the bills with an open customer question
    live: dict[int, list[Resolution]]  # each bill's live resolutions

    @property
    def legal(self) -> bool:
        return any(is_legal_notice(plan, step) for _notice, _invoice, step, plan in self.rows)


def _message_id(outbox_message: OutboxMessage) -> int:
    if outbox_message.kind != KIND:
        raise DeliveryError(f"no dunning text for {outbox_message.kind!r}", permanent=True)
    return int((outbox_message.payload or {}).get("message_id") or 0)


def _load_many(message_ids: list[int]) -> dict[int, Loaded]:
    """The dunning messages of these ids that still exist, each with what it needs, by id."""
    found = db.session.execute(
        select(Message, Customer).outerjoin(Customer, Customer.id == Message.customer_id)
        .where(Message.id.in_(message_ids))).all()
    if not found:
        return {}
    asked = exists().where(SupportRequest.invoice_id == Invoice.id, SupportRequest.status == RequestStatus.OPEN)
    rows = db.session.execute(
        select(Notice, Invoice, Step, Plan, Creditor, asked.label("asked"))
        .join(Invoice, Invoice.id == Notice.invoice_id)
        .join(Creditor, Creditor.id == Invoice.creditor_id).join(Step, Step.id == Notice.step_id)
        .join(Plan, Plan.id == Notice.plan_id)
        .where(Notice.message_id.in_([message.id for message, _customer in found]))
        .order_by(Notice.message_id, Invoice.due_date, Invoice.id)).all()
    live = live_resolutions_of({invoice.id for _n, invoice, _s, _p, _c, _a in rows})
    loaded = {message.id: Loaded(message, customer, [], set(), {}) for message, customer in found}
    for notice, invoice, step, plan, creditor, open_question in rows:
        linked((invoice, creditor), "creditor")  # held by its bill, as `_load`'s readers expect
        one = loaded[notice.message_id or 0]  # never None: the rows were chosen by it
        one.rows.append((notice, invoice, step, plan))
        one.live[invoice.id] = live[invoice.id]
        if open_question:
            one.asked.add(invoice.id)
    return loaded


def _load(outbox_message: OutboxMessage) -> Loaded | None:
    """What the batch's `prepare` read for this message, else read now."""
    message_id = _message_id(outbox_message)
    if isinstance(outbox_message.prepared, Loaded):
        return outbox_message.prepared
    return _load_many([message_id]).get(message_id)


def prepare(outbox_messages: list[OutboxMessage]) -> None:
    """The dispatcher's batch of dunning messages read at once (registered as the kind's preparer): the
    same three statements for the whole batch as `_load` makes for one message."""
    wanted = {}
    for outbox_message in outbox_messages:
        if outbox_message.kind == KIND:
            wanted[outbox_message.id] = int((outbox_message.payload or {}).get("message_id") or 0)
    loaded = _load_many(sorted(set(wanted.values())))
    for outbox_message in outbox_messages:
        if outbox_message.id in wanted:
            outbox_message.prepared = loaded.get(wanted[outbox_message.id])


def _notices_left(loaded: Loaded, now: datetime) -> tuple[list[tuple[Notice, Invoice, Step, Plan]], list[Notice]]:
    asked = loaded.asked
    left: list[tuple[Notice, Invoice, Step, Plan]] = []
    gone: list[Notice] = []
    for row in loaded.rows:
        invoice = row[1]
        today = local_today(invoice.creditor.country, now)
        remind = dunning(invoice, today, loaded.live.get(invoice.id, [])).may_remind and invoice.id not in asked
        if remind:
            left.append(row)
        else:
            gone.append(row[0])
    return left, gone


def _nothing_left(message_id: int, notice_ids: list[int]):
    def record() -> None:
        found = db.session.get(Message, message_id)
        if found is not None:
            found.status, found.failure, found.status_at = MessageStatus.FAILED, "settled before it went out", utcnow()
        for notice in db.session.scalars(select(Notice).where(Notice.id.in_(notice_ids))):
            notice.status = NoticeStatus.PAID_BEFORE
    return record


def content(outbox_message: OutboxMessage, loaded: Loaded | None = None) -> Content:
    """What a dunning message says now (see the module's docstring); raises DeliveryError when nothing."""
    loaded = loaded or _load(outbox_message)
    if loaded is None:
        raise DeliveryError("the dunning message no longer exists", permanent=True)
    message, customer = loaded.message, loaded.customer
    now = utcnow()
    left, gone = _notices_left(loaded, now)
    if not left:
        raise DeliveryError("nothing left to remind: settled or paused since it was decided", permanent=True,
                            after=_nothing_left(message.id, [n.id for n in gone]))
    for notice in gone:
        notice.status = NoticeStatus.PAID_BEFORE
    lead_notice, lead, step, plan = max(
        left, key=lambda row: (StepKind(row[0].kind).rank, -row[1].due_date.toordinal()))
    creditor = lead.creditor
    if customer is None:  # kept by RESTRICT and CASCADE: never, but said
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
    texts = variants.texts_for(step.texts, step.variants, message.variant) if message.variant else step.texts
    locale = templates.pick_locale(texts, message.locale, (creditor.default_locale, "en"))
    rendered = templates.render(texts, facts, locale)
    kept = templates.render(texts, templates.Facts(**{**facts.__dict__, "link": NO_LINK}), locale)
    others = [invoice for _notice, invoice, _step, _plan in left if invoice.id != lead.id]
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


def _still_reachable(loaded: Loaded | None) -> None:
    """An unsubscribe (or a consent withdrawn) between the run's decision and the delivery is honoured at
    once: the e-mail does not go, and its notices fall back to the next channel (a letter at the end)."""
    if loaded is None:
        return
    customer = loaded.customer
    if customer is None or reachable(customer, Channel.EMAIL, legal=loaded.legal):
        return
    message_id = loaded.message.id

    def fall_back_now() -> None:
        found = db.session.get(Message, message_id)
        if found is not None:
            fall_back(found, "unsubscribed")

    raise DeliveryError("the customer unsubscribed from e-mails (or withdrew consent) before it went out",
                        permanent=True, after=fall_back_now)


def render_email(outbox_message: OutboxMessage) -> RenderedEmail:
    loaded = _load(outbox_message)
    _still_reachable(loaded)
    found = content(outbox_message, loaded)
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
    blocks = tuple(block for _receiver, answer in email_blocks.send(lead, locale=found.rendered.locale,
                                                                      others=found.others) for block in answer or ())
    if blocks:
        notice = replace(notice, blocks=blocks)
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
