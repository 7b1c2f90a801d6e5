"""The reminder dialogue in the back office: a bill's panel (the plan it follows and its jurisdiction, "No
rules" named as such, the next step, the notices sent) and the messages of a customer's timeline (each
as sent: channel, the text as rendered, its status, at the time it went out)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select

from app.billing.models import Customer, Invoice
from app.dunning.models import Letter, Message, Notice, Plan
from app.dunning.outlook import NextStep, next_step
from app.dunning.services import default_plan
from app.extensions import db
from app.outbox.models import OutboxMessage


@dataclass(frozen=True)
class Panel:
    """What the bill's page shows of its reminders."""

    plan: Plan | None  # the plan version it follows
    default: Plan | None  # the creditor's default, which the next run gives a bill without a plan
    excluded: bool  # the bill or its customer
    next: NextStep | None
    notices: list[Notice]
    messages: dict[int, Message]  # the notices' messages, by id


def panel(invoice: Invoice, today: date) -> Panel:
    plan = db.session.get(Plan, invoice.dunning_plan_id) if invoice.dunning_plan_id else None
    notices = list(db.session.scalars(select(Notice).where(Notice.invoice_id == invoice.id)
                                      .order_by(Notice.position, Notice.id)))
    ids = {n.message_id for n in notices if n.message_id is not None}
    messages = {m.id: m for m in db.session.scalars(select(Message).where(Message.id.in_(ids)))} if ids else {}
    return Panel(plan, default_plan(invoice.creditor_id) if plan is None else None,
                 invoice.dunning_excluded or invoice.customer.dunning_excluded, next_step(invoice, today), notices,
                 messages)


@dataclass(frozen=True)
class SentMessage:
    """A dunning message as the timeline shows it."""

    message: Message
    at: datetime  # when the run sent it (its notices' moment); else when it went out, else when written
    invoices: list[Invoice]  # the bills it was about (one message may carry several)
    kinds: list[str]  # the steps it carried


def messages_of(customer: Customer, invoices: dict[int, Invoice], *, limit: int) -> list[SentMessage]:
    """The customer's dunning messages at their creditor, newest first."""
    rows = db.session.execute(
        select(Message, OutboxMessage.delivered_at, Letter.printed_at)
        .outerjoin(OutboxMessage, OutboxMessage.id == Message.outbox_message_id)
        .outerjoin(Letter, Letter.message_id == Message.id)
        .where(Message.customer_id == customer.id, Message.creditor_id == customer.creditor_id)
        .order_by(Message.id.desc()).limit(limit)).all()
    if not rows:
        return []
    carried: dict[int, list[Notice]] = {}
    for notice in db.session.scalars(select(Notice).where(Notice.message_id.in_([r[0].id for r in rows]))
                                     .order_by(Notice.position)):
        carried.setdefault(notice.message_id or 0, []).append(notice)
    found = []
    for message, delivered_at, printed_at in rows:
        notices = carried.get(message.id, [])
        # When it happened is when the run sent it (the bill's panel shows the same moment), not when
        # the dispatcher handed it over or the letter was printed (a run for a past day, a later print).
        sent = [n.sent_at for n in notices if n.sent_at is not None]
        found.append(SentMessage(message, min(sent) if sent else (delivered_at or printed_at or message.created_at),
                                 [invoices[n.invoice_id] for n in notices if n.invoice_id in invoices],
                                 [n.kind for n in notices]))
    return found
