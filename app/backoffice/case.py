"""A customer's whole story with one creditor, on one screen: their bills, and one timeline of what
happened to any of them, newest first.

The timeline is read from the records each feature keeps (no copy to drift): the invoices' own
events (links issued and opened, payments, disputes, promises, plans, hand-off...), the messages
of their conversations (with the words), payment attempts that failed, refunds, and the agents'
internal notes. Each entry is put into words here, in the agent's language."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time

from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from app.backoffice.calls import outcome_label as call_outcome_label
from app.backoffice.dunning import SentMessage, messages_of
from app.backoffice.models import Agent, AgentRole, Note
from app.billing.models import Customer, Invoice, InvoiceEvent, InvoiceStatus
from app.debt_collection.models import CaseStatus
from app.debt_collection.services import return_reason_words
from app.dunning.models import MessageStatus, StepKind
from app.extensions import db
from app.i18n import country_zone
from app.outbox.base import TEST_NOT_SENT
from app.outbox.models import OutboxMessage, OutboxStatus
from app.payments.gateways.base import PaymentStatus
from app.payments.models import PaymentAttempt, PaymentMismatch
from app.payments.receipts import method_label as payment_method_label
from app.resolutions.models import Kind, Status
from app.support.models import SupportMessage, SupportRequest
from app.templating import date_filter, datetime_filter, money

TIMELINE_LIMIT = 500


@dataclass(frozen=True)
class Entry:
    at: datetime
    kind: str  # a CSS class: event, message, note, attempt
    title: str
    invoice: Invoice | None = None
    detail: str | None = None
    body: str | None = None  # someone's own words: shown as text, never as markup
    who: str | None = None
    day: date | None = None  # only the day is known (a payment's booking day): shown as that day


def happened_at(event: InvoiceEvent, country: str) -> tuple[datetime, date | None]:
    """When the event happened, which is not always when it was recorded: a reminder the creditor's
    system reports carries the moment it was sent; a payment the day it was paid (a bank file read days
    later, a partner's report). A day alone is placed at the end of that day where the creditor is,
    and said as a day; the recorded moment stands when it falls on that day."""
    data = event.data or {}
    sent_at = data.get("sent_at") if event.kind in ("reminder_sent", "reminder_fell_back") else None
    if sent_at:
        try:
            moment = datetime.fromisoformat(sent_at)
        except ValueError:
            return event.created_at, None
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)), None
    paid_on = data.get("paid_on") if event.kind == "payment_recorded" else None
    if paid_on:
        try:
            day = date.fromisoformat(paid_on[:10])
        except ValueError:
            return event.created_at, None
        zone = country_zone(country)
        if event.created_at.astimezone(zone).date() == day:
            return event.created_at, None
        return datetime.combine(day, time(23, 59), tzinfo=zone).astimezone(UTC), day
    return event.created_at, None


def customer_invoices(customer: Customer) -> list[Invoice]:
    return list(db.session.scalars(
        select(Invoice).where(Invoice.customer_id == customer.id, Invoice.creditor_id == customer.creditor_id)
        .order_by(Invoice.issue_date.desc(), Invoice.id.desc())
    ))


def timeline(customer: Customer, invoices: list[Invoice], *, limit: int = TIMELINE_LIMIT) -> list[Entry]:
    """Everything about the customer's bills, newest first (at most `limit` entries)."""
    by_id = {invoice.id: invoice for invoice in invoices}
    ids = list(by_id)
    agents = _agents(customer.creditor_id)
    entries: list[Entry] = []
    if ids:
        for event in db.session.scalars(
            select(InvoiceEvent).where(InvoiceEvent.invoice_id.in_(ids), InvoiceEvent.kind.not_in(SHOWN_ELSEWHERE))
            .order_by(InvoiceEvent.id.desc()).limit(limit)
        ):
            invoice = by_id[event.invoice_id]
            title, detail = describe(event, invoice)
            body = (event.data or {}).get("text") if event.kind == "collection_message" else None
            at, day = happened_at(event, customer.creditor.country)
            entries.append(Entry(at, "event", title, invoice, detail, body=body, who=actor_label(event.actor, agents),
                                 day=day))
        for message in db.session.scalars(
            select(SupportMessage).join(SupportRequest).options(selectinload(SupportMessage.request))
            .where(SupportRequest.invoice_id.in_(ids)).order_by(SupportMessage.id.desc()).limit(limit)
        ):
            request = message.request
            by_customer = message.author == "customer"
            title = (_("The customer wrote (%(reference)s)", reference=request.reference) if by_customer
                     else _("We answered (%(reference)s)", reference=request.reference))
            who = customer.name if by_customer else message.author_name
            entries.append(Entry(message.created_at, "message", title, by_id[request.invoice_id], body=message.body,
                                 who=who))
        for sent in messages_of(customer, by_id, limit=limit):
            entries.append(_message_entry(sent, customer.creditor.country))
        for message in sent_to(customer, ids, limit=limit):
            entries.append(_outbox_entry(message, customer.creditor.country))
        for attempt in db.session.scalars(
            select(PaymentAttempt).where(PaymentAttempt.invoice_id.in_(ids),
                                         PaymentAttempt.status == PaymentStatus.FAILED)
            .order_by(PaymentAttempt.id.desc()).limit(limit)
        ):
            detail = _("%(amount)s with %(provider)s: %(reason)s", amount=money(attempt.amount, attempt.currency),
                       provider=provider_label(attempt.provider), reason=attempt.failure_reason or _("declined"))
            entries.append(Entry(attempt.updated_at, "attempt", _("A payment attempt failed"),
                                 by_id[attempt.invoice_id], detail))
    for note in db.session.scalars(
        select(Note).where(Note.customer_id == customer.id, Note.creditor_id == customer.creditor_id)
        .order_by(Note.id.desc()).limit(limit)
    ):
        entries.append(Entry(note.created_at, "note", _("Internal note"), by_id.get(note.invoice_id), body=note.body,
                             who=agents.get(note.agent_id)))
    entries.sort(key=lambda entry: entry.at, reverse=True)
    return entries[:limit]


def _message_entry(sent: SentMessage, country: str) -> Entry:
    """A dunning message as sent: its steps and channel, its status, who it went to, its text."""
    message = sent.message
    kinds = list(dict.fromkeys(sent.kinds))
    what = ", ".join(StepKind.label_of(kind) for kind in kinds) or _("Reminder")
    title = _("%(what)s by %(channel)s", what=what, channel=channel_label(message.channel))
    if len(sent.invoices) > 1:
        title += " · " + ngettext("%(num)d bill", "%(num)d bills", len(sent.invoices))
    status = MessageStatus.label_of(message.status)
    parts = [_("status: %(status)s", status=status)]
    if message.status_at and message.status != MessageStatus.QUEUED:
        parts[0] += " " + _("(%(when)s)", when=datetime_filter(message.status_at, "short", country))
    if message.recipient:
        parts.append(_("to %(recipient)s", recipient=message.recipient))
    if len(sent.invoices) > 1:
        parts.append(", ".join(invoice.number for invoice in sent.invoices))
    if message.failure:
        parts.append(message.failure)
    text = "\n\n".join(part for part in (message.subject, message.body) if part) or (
        _("The text is written when the letter is printed.") if message.channel == "letter"
        else _("The text is written when the message goes out."))
    return Entry(sent.at, "message dunning", title, sent.invoices[0] if sent.invoices else None, " · ".join(parts),
                 body=text, who=_("the reminder run"))


def agent_names(creditor_id: int) -> dict[int, str]:
    return _agents(creditor_id)


def sent_to(customer: Customer, invoice_ids: list[int], *, limit: int) -> list[OutboxMessage]:
    """What the outbox wrote to the customer at this creditor (receipts, confirmations, answers,
    decisions, links; reminders are told from dunning's own records): the e-mails and SMS to the
    customer's addresses on file and to those they gave in a conversation."""
    addresses = {customer.email, customer.phone}
    for email, phone in db.session.execute(select(SupportRequest.contact_email, SupportRequest.contact_phone)
                                           .where(SupportRequest.invoice_id.in_(invoice_ids))):
        addresses |= {email, phone}
    addresses.discard(None)
    if not addresses:
        return []
    return list(db.session.scalars(
        select(OutboxMessage).where(
            OutboxMessage.creditor_id == customer.creditor_id, OutboxMessage.channel.in_(("email", "sms")),
            OutboxMessage.recipient.in_(addresses), OutboxMessage.kind.not_like("dunning.%"),
            OutboxMessage.kind.not_like("agent.%"), OutboxMessage.kind != "support.notification",
        ).order_by(OutboxMessage.id.desc()).limit(limit)))


def _outbox_entry(message: OutboxMessage, country: str) -> Entry:
    """A message we sent the customer, with its words as they went out (links' tokens redacted)."""
    title = _("%(what)s by %(channel)s", what=message_kind_label(message.kind), channel=channel_label(message.channel))
    status = OutboxStatus.label_of(message.status)
    if message.provider_status == TEST_NOT_SENT:  # a test bill's: kept here, never sent to the customer
        status = _("test, not sent")
    parts = [_("status: %(status)s", status=status)]
    if message.delivered_at:
        parts[0] += " " + _("(%(when)s)", when=datetime_filter(message.delivered_at, "short", country))
    parts.append(_("to %(recipient)s", recipient=message.recipient))
    if message.sent_text:
        body = "\n\n".join(part for part in (message.sent_subject, message.sent_text) if part)
    elif message.status == OutboxStatus.PENDING:
        body = _("The text is written when the message goes out.")
    elif message.status == OutboxStatus.DEAD:
        body = _("It was not delivered: %(error)s", error=message.last_error or "")
    else:
        body = _("The text of messages sent before the back office kept them is not available.")
    return Entry(message.delivered_at or message.created_at, "message sent", title, None, " · ".join(parts),
                 body=body, who=_("the portal"))


def _agents(creditor_id: int) -> dict[int, str]:
    """The names of the agents who work (or worked, while they had a role) for the creditor."""
    return dict(db.session.execute(
        select(Agent.id, Agent.name).join(AgentRole, AgentRole.agent_id == Agent.id)
        .where(AgentRole.creditor_id == creditor_id)).all())


#: Events whose story the timeline tells from the record itself (the message with its words).
SHOWN_ELSEWHERE = ("support_message", "support_reply")


def actor_label(actor: str | None, agents: dict[int, str]) -> str | None:
    """Who did it, in words: the customer, an agent by name, or the system part that acted."""
    if not actor:
        return None
    if actor.startswith("partner:"):
        return _("the collection partner (%(partner)s)", partner=actor.partition(":")[2])
    if actor.startswith("agent:"):
        agent_id = actor.partition(":")[2]
        return agents.get(int(agent_id), _("an agent")) if agent_id.isdigit() else _("an agent")
    return {
        "customer": _("the customer"), "api": _("the creditor's system (API)"), "scheduler": _("the daily run"),
        "bank_import": _("the bank file import"), "test": _("a test"), "cli": _("the command line"),
        "dunning": _("the reminder run"), "portal": _("the portal"),
    }.get(actor, actor)


def provider_label(provider: str | None) -> str:
    """A payment provider by its name; the built-in simulator as what it is."""
    return {"simulator": _("the test-mode simulator"), "stripe": "Stripe", "adyen": "Adyen",
            "bank_transfer": _("bank transfer"), "manual": _("recorded by hand"),
            "debt_collection": _("the collection partner")}.get(provider or "", provider or "")


def message_kind_label(kind: str | None) -> str:
    """What an outbox message is, in words (the kinds the renderers know, by their name or prefix)."""
    kind = kind or ""
    exact = {
        "payment_receipt": _("Payment receipt"), "link.reissued": _("New link to the bill"),
        "agent.enrolment_code": _("Sign-in code for an agent"), "dunning.message": _("Reminder"),
        "support.received": _("Confirmation of the customer's message"), "support.reply": _("Our answer"),
        "support.notification": _("Notice to the creditor's support desk"),
        "resolution.dispute_received": _("Confirmation of a dispute"),
        "resolution.dispute_answered": _("Decision on a dispute"),
        "resolution.promise_confirmed": _("Confirmation of a promise to pay"),
        "resolution.promise_due": _("Reminder of a promise to pay"),
        "resolution.promise_broken": _("Notice of a broken promise to pay"),
        "resolution.deferral_requested": _("Confirmation of a request for more time"),
        "resolution.deferral_granted": _("More time granted"),
        "resolution.deferral_declined": _("More time declined"),
        "resolution.plan_requested": _("Confirmation of a request for an instalment plan"),
        "resolution.plan_accepted": _("Confirmation of an instalment plan"),
        "resolution.plan_declined": _("Instalment plan declined"),
        "resolution.instalment_due": _("Reminder of an instalment"),
        "resolution.plan_broken": _("Notice of a broken instalment plan"),
    }
    if kind in exact:
        return exact[kind]
    prefix, _dot, rest = kind.partition(".")
    if prefix == "collection":
        return _("Message to the collection partner (%(what)s)", what=rest.replace("_", " "))
    return {"support": _("Message about a conversation"), "resolution": _("Message about a request"),
            "link": _("Link to the bill"), "dunning": _("Reminder"), "agent": _("Message to an agent")}.get(
        prefix, kind.replace("_", " ").replace(".", ": "))


def channel_label(channel: str | None) -> str:
    labels = {"sms": _("SMS"), "email": _("e-mail"), "letter": _("letter"), "api": _("the creditor's system"),
              "provider": _("the payment provider"), "bank_transfer": _("bank transfer")}
    return labels.get(channel or "", channel or "")


def _preferences(d: dict) -> str:
    """What a customer changed of their preferred channel and consents, in the agent's words."""
    parts = []
    if "preferred_channel" in d:
        parts.append(_("prefers %(channel)s", channel=channel_label(d["preferred_channel"]))
                     if d["preferred_channel"] else _("no preferred channel"))
    names = {"email_allowed": _("e-mail"), "sms_allowed": _("SMS"),
             "electronic_notices_allowed": _("legal notices electronically")}
    for name, label in names.items():
        if name in d:
            parts.append(_("%(what)s allowed", what=label) if d[name] else _("%(what)s not allowed", what=label))
    return ", ".join(parts)


def _reminder_sent(d: dict) -> tuple[str, str | None]:
    """A reminder sent: by the portal's run, its step of the plan, channel, deadline; else a reported one."""
    channel = _("by %(channel)s", channel=channel_label(d.get("channel")))
    if not d.get("step_kind"):
        return (_("Final reminder sent") if d.get("final") else _("Reminder sent")), channel
    title = _("%(step)s sent (step %(position)s of plan %(plan)s v%(version)s)",
              step=StepKind.label_of(d["step_kind"]), position=d.get("step"), plan=d.get("plan"),
              version=d.get("version"))
    deadline = d.get("deadline")
    if deadline:
        channel += " · " + _("to pay by %(date)s", date=date_filter(date.fromisoformat(deadline)))
    return title, channel


def contact_field_label(name: str) -> str:
    return {"email": _("e-mail address"), "phone": _("phone number"), "address": _("postal address")}.get(name, name)


def partner_report_title(kind: str) -> str:
    """What kind of report a collection partner made, in words."""
    return {"case_returned": _("The bill was given back"), "costs_added": _("Collection costs added"),
            "plan_agreed": _("Payment plan agreed"), "contact_updated": _("New contact details of the debtor"),
            "message": _("Message for us")}.get(kind, kind)


def describe(event: InvoiceEvent, invoice: Invoice) -> tuple[str, str | None]:
    """An event as a title and a detail, in the agent's language."""
    d, cur = event.data or {}, invoice.currency

    def amount(key: str = "amount") -> str:
        return money(int(d.get(key) or 0), d.get("currency") or cur)

    def day(key: str) -> str:
        value = d.get(key)
        return date_filter(datetime.fromisoformat(value).date()) if value else ""

    def gross(key: str) -> int:  # a corrected line's gross amount, before or after
        return int((d.get(key) or {}).get("gross", 0))

    kind = event.kind
    words = {
        "created": lambda: (_("Bill %(number)s created", number=invoice.number), amount("total")),
        "link_issued": lambda: (_("Link issued"), _("by %(channel)s, until %(date)s",
                                                    channel=channel_label(d.get("channel")), date=day("expires_at"))),
        "link_opened": lambda: (_("The customer opened the bill"), _("link sent by %(channel)s",
                                                                     channel=channel_label(d.get("channel")))),
        "link_sent": lambda: (_("New link sent"), _("by %(channel)s", channel=channel_label(d.get("channel")))),
        "link_requested": lambda: (_("The customer asked for a new link"),
                                   _("sent by %(channel)s to the contact on file",
                                     channel=channel_label(d.get("channel")))),
        "links_revoked": lambda: (_("Links revoked"),
                                  ngettext("%(num)d link", "%(num)d links", int(d.get("count") or 0))),
        "link_locked": lambda: (_("Link locked after wrong answers to the check"), None),
        "payment_started": lambda: (_("The customer started a payment"),
                                    _("%(amount)s with %(provider)s", amount=amount(),
                                      provider=provider_label(d.get("provider")))),
        "payment_recorded": lambda: (_("Payment received"),
                                     _("%(amount)s on %(date)s, %(method)s", amount=amount(),
                                       method=payment_method_label(d.get("method"), ""), date=day("paid_on"))),
        "payment_note": lambda: (_("Note on the payment"), d.get("note")),
        "payment_to_refund": lambda: (_("Payment to a closed bill, owed back"), amount()),
        "payments_stopped": lambda: (_("Payments under way stopped, the bill being closed"),
                                     ngettext("%(num)d payment", "%(num)d payments", int(d.get("count") or 0))),
        "payment_mismatch": lambda: (_("Payment of %(what)s, owed back",
                                       what=PaymentMismatch.label_of(d.get("mismatch"))),
                                     _("%(amount)s received, %(expected)s asked for", amount=amount(),
                                       expected=money(int(d.get("expected_amount") or 0),
                                                      d.get("expected_currency") or cur))),
        "refund_due": lambda: (_("Money owed back to the customer"), amount()),
        "refund_sent": lambda: (_("Refund sent"), _("%(amount)s by %(channel)s", amount=amount(),
                                                    channel=channel_label(d.get("channel")))),
        "status_changed": lambda: (_("Status: %(status)s", status=InvoiceStatus.label_of(d.get("to", ""))),
                                   _("was %(status)s", status=InvoiceStatus.label_of(d.get("from", "")))),
        "charge_added": lambda: (_("Charge added"), amount()),
        "due_date_changed": lambda: (_("New due date: %(date)s", date=day("to")), _("was %(date)s", date=day("from"))),
        "credit_note_issued": lambda: (_("Credit note %(number)s", number=d.get("number")),
                                       f"− {amount()} · {d.get('reason') or ''}"),
        "line_corrected": lambda: (_("Line corrected: %(line)s", line=d.get("description", "")),
                                   _("%(before)s → %(after)s", before=money(gross("before"), cur),
                                     after=money(gross("after"), cur))),
        "reminders_paused": lambda: (_("Reminders paused"), (_("until %(date)s", date=day("until")) if d.get("until")
                                                             else _("until resumed")) + f" · {d.get('reason') or ''}"),
        "reminders_resumed": lambda: (_("Reminders resumed"), d.get("reason")),
        "dispute_opened": lambda: (_("Dispute %(reference)s opened", reference=d.get("reference")), amount()),
        "dispute_answered": lambda: (_("Dispute %(reference)s answered", reference=d.get("reference")),
                                     Status.label_of(d.get("outcome"))),
        "promise_made": lambda: (_("Promise to pay by %(date)s", date=day("date")), d.get("reference")),
        "deferral_requested": lambda: (_("More time asked for, to %(date)s", date=day("date")), d.get("reference")),
        "deferral_granted": lambda: (_("More time granted, to %(date)s", date=day("date")), d.get("reference")),
        "deferral_declined": lambda: (_("Request for more time declined"), d.get("reference")),
        "plan_accepted": lambda: (_("Instalment plan of %(months)s months", months=d.get("months")), amount("total")),
        "plan_requested": lambda: (_("Instalment plan of %(months)s months asked for", months=d.get("months")),
                                   d.get("reference")),
        "plan_granted": lambda: (_("Instalment plan of %(months)s months granted", months=d.get("months")),
                                 amount("total")),
        "plan_declined": lambda: (_("Instalment plan request declined"), d.get("reference")),
        "support_request_opened": lambda: (_("Conversation %(reference)s started", reference=d.get("reference")), None),
        "support_request_closed": lambda: (_("Conversation %(reference)s closed", reference=d.get("reference")), None),
        "support_request_reopened": lambda: (_("Conversation %(reference)s opened again", reference=d.get("reference")),
                                             None),
        "contact_change_requested": lambda: (_("The customer asked to change their %(channel)s contact",
                                               channel=channel_label(d.get("channel"))),
                                             _("code sent to %(to)s", to=d.get("to"))),
        "contact_changed": lambda: (_("The customer confirmed a new %(channel)s contact",
                                      channel=channel_label(d.get("channel"))),
                                    _("%(was)s → %(to)s", was=d.get("was") or "–", to=d.get("to"))),
        "contact_preferences_changed": lambda: (_("The customer changed how they are reached"),
                                                _preferences(d)),
        "email_unsubscribed": lambda: (_("The customer unsubscribed from reminders by e-mail"),
                                       _("with the e-mail's one-click button") if d.get("how") == "one_click"
                                       else _("on the unsubscribe page")),
        "reminder_sent": lambda: _reminder_sent(d),
        "callback_logged": lambda: (_("Call-back %(reference)s: %(outcome)s", reference=d.get("reference"),
                                      outcome=call_outcome_label(d.get("outcome"))), d.get("note")),
        "reminder_fell_back": lambda: (_("Reminder sent again by %(channel)s", channel=channel_label(d.get("channel"))),
                                       d.get("reason")),
        "dunning_plan_set": lambda: (_("Reminders by plan %(plan)s v%(version)s", plan=d.get("plan"),
                                       version=d.get("version")), None),
        "dunning_excluded": lambda: (_("Taken out of the reminder run"),
                                     _("with all the customer's bills") if d.get("customer") else None),
        "dunning_included": lambda: (_("Back in the reminder run"), None),
        "dunning_step_skipped": lambda: (_("Step %(position)s skipped: %(step)s", position=d.get("step"),
                                           step=StepKind.label_of(d.get("step_kind", ""))), d.get("reason")),
        "dunning_step_postponed": lambda: (_("Step %(position)s postponed to %(date)s", position=d.get("step"),
                                             date=day("until")), d.get("reason")),
        "handed_off": lambda: (_("Handed to debt collection"), f"{d.get('partner')} · {amount()}"),
        "hand_off_recalled": lambda: (_("Recalled from debt collection"), d.get("reason") or d.get("partner")),
        "collection_acknowledged": lambda: (_("The collection partner has the case"), d.get("reference")),
        "collection_closed": lambda: (_("The collection partner closed the case"),
                                      CaseStatus.label_of(d.get("outcome"))),
        "collection_recall_confirmed": lambda: (_("The collection partner confirmed the recall"), d.get("case")),
        "collection_returned": lambda: (_("The collection partner gave the bill back"),
                                        " · ".join(filter(None, (return_reason_words(d.get("reason") or ""),
                                                                 d.get("note"))))),
        "collection_costs_added": lambda: (
            _("The collection partner added costs of %(amount)s", amount=amount()),
            " · ".join(filter(None, (_("the debtor owes it %(claim)s now", claim=amount("claim")), d.get("note"))))),
        "collection_plan_agreed": lambda: (
            _("The collection partner agreed a payment plan with the debtor"),
            ngettext("%(num)d instalment, %(total)s, %(first)s to %(last)s",
                     "%(num)d instalments, %(total)s, %(first)s to %(last)s", int(d.get("count") or 0),
                     total=amount("total"), first=day("first"), last=day("last"))),
        "collection_contact_reported": lambda: (
            _("The collection partner reported new contact details"),
            ", ".join(contact_field_label(name) for name in d.get("fields") or [])),
        "collection_message": lambda: (_("Message from the collection partner"), None),
        "collection_updated": lambda: (
            _("The collection partner was told of a change"),
            ", ".join(_("the amounts") if c == "amounts" else _("the debtor's contact details")
                      for c in d.get("changes") or [])),
        "collection_report_handled": lambda: (_("The collection partner's report was dealt with"),
                                              partner_report_title(d.get("report") or "")),
    }
    if kind in words:
        return words[kind]()
    subject, _sep, outcome = kind.partition("_")
    if subject in Kind.values() and outcome:  # the daily run closed it
        return _("%(what)s %(reference)s: %(outcome)s", what=Kind(subject).label, reference=d.get("reference") or "",
                 outcome=Status.label_of(outcome)), d.get("why")
    return kind.replace("_", " "), None
