"""The hand-off: which bills may go to the creditor's collection partner, handing one off (the case,
its case file and its delivery, in one transaction), the partner's reports (acknowledged, paid,
uncollectable, recall confirmed, the case given back, costs, a plan, contact details, a message), a
recall, and what the partner must hear meanwhile: payments, and a credit, a correction or new
contact details (`case.updated`).

Never twice, never lost: `hand_off` locks the invoice row and decides again under the lock (a
dispute opened a second ago stops it), a partial unique index allows one open case per invoice,
and the case's delivery is written to the outbox in the same transaction as the case, so it is
sent at least once with a stable `webhook-id` and an `Idempotency-Key` equal to the case id.

Plain functions that add and flush. The cron job's loop, which commits each hand-off on its own,
is `debt_collection.worker.run`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from flask_babel import gettext as _
from sqlalchemy import and_, exists, select
from sqlalchemy.exc import IntegrityError

from app.billing.models import Customer, Invoice, InvoiceStatus, Reminder
from app.billing.services import record_event, release, transition
from app.core.dates import local_today
from app.core.validation import clean_email, clean_phone, is_e164, is_email
from app.debt_collection.case_file import build_case_file, split_amounts
from app.debt_collection.models import Case, CaseEvent, CaseStatus, Partner, Policy
from app.debt_collection.partners import policy_of
from app.dunning.models import Jurisdiction, Plan
from app.dunning.outlook import has_open_question
from app.dunning.services import check_address, default_plan, hand_off_not_before
from app.errors import Conflict, IllegalTransition, InvalidData
from app.extensions import db
from app.models import utcnow
from app.outbox.services import enqueue
from app.payments.models import Payment
from app.payments.services import lock_invoice, settle
from app.resolutions.pause import pause_words
from app.resolutions.services import dunning_for
from app.templating import date_filter

log = logging.getLogger(__name__)

HANDABLE = (InvoiceStatus.OPEN, InvoiceStatus.PARTIALLY_PAID)
PROVIDER = "collection"  # the payments partners report
EVENT_KINDS = ("payment_received", "closed_paid", "closed_uncollectable", "recall_acknowledged", "case_returned",
               "costs_added", "plan_agreed", "contact_updated", "message")
#: Why a partner gives a case back (`case_returned`).
RETURN_REASONS = ("customer_disputes", "wrong_debtor", "not_collectable")
#: What a partner reports that waits for an agent (the inbox), until one marks it dealt with.
NEEDS_AGENT = ("case_returned", "contact_updated", "message")
#: Events whose `amount` is money the partner received, settled on the bill like a payment.
PAYING = ("payment_received", "closed_paid", "recall_acknowledged", "case_returned")
MAX_INSTALMENTS = 120
MAX_MESSAGE = 2000
MAX_MINOR = 10**13


# --- may this bill go? -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Eligibility:
    """Whether the bill may be handed off today, and if not every reason why (codes:
    no_policy, partner_disabled, status:<status>, open_case, nothing_owed, below_minimum,
    not_overdue_enough, no_final_reminder, final_reminder_too_recent, no_collection_warning,
    warning_deadline:<first day>, open_question, paused:<dunning reason>, returned:<the partner's reason>,
    test_bill: a test-mode bill, never handed off to anyone)."""

    reasons: tuple[str, ...] = ()

    @property
    def eligible(self) -> bool:
        return not self.reasons


def reason_words(code: str) -> str:
    """An Eligibility reason in words, in the current locale (English on the command line)."""
    kind, _sep, value = code.partition(":")
    if kind == "status":
        return _("The bill is %(status)s.", status=InvoiceStatus.label_of(value))
    if kind == "paused":
        return _("Not handed off yet: %(why)s.", why=pause_words(value))
    if kind == "returned":
        return _("%(partner_reason)s An agent must look at it before it is handed off again.",
                 partner_reason=return_reason_words(value))
    if kind == "warning_deadline":
        return _("The deadline of the collection warning has not passed: not before %(date)s.",
                 date=date_filter(date.fromisoformat(value)))
    return {
        "no_policy": _("The creditor has no debt collection policy (flask collection policy)."),
        "partner_disabled": _("The creditor's collection partner is disabled."),
        "open_case": _("The bill is with a collection partner already."),
        "nothing_owed": _("Nothing is owed."),
        "below_minimum": _("Less is owed than the policy's minimum."),
        "not_overdue_enough": _("It is not overdue long enough yet."),
        "no_final_reminder": _("No final reminder has been sent."),
        "final_reminder_too_recent": _("The final reminder was sent too recently."),
        "no_collection_warning": _("The dunning plan's collection warning has not been sent."),
        "open_question": _("A question of the customer waits for an answer."),
        "busy": _("Another hand-off of this bill is running."),
        "gone": _("The bill no longer exists."),
        "test_bill": _("A test bill is never handed off to debt collection."),
    }.get(code, code)


def return_reason_words(reason: str) -> str:
    """Why the partner gave the case back, in words (the current locale)."""
    return {
        "customer_disputes": _("The collection partner gave the bill back: the customer disputes it."),
        "wrong_debtor": _("The collection partner gave the bill back: it is not this customer's debt."),
        "not_collectable": _("The collection partner gave the bill back: it cannot be collected."),
    }.get(reason, _("The collection partner gave the bill back."))


def unhandled_return(invoice_id: int) -> CaseEvent | None:
    """The partner's return of a case of this bill that no agent has dealt with yet (the bill stays
    out of debt collection until one has)."""
    return db.session.scalar(select(CaseEvent).join(Case, Case.id == CaseEvent.case_id).where(
        Case.invoice_id == invoice_id, CaseEvent.kind == "case_returned", CaseEvent.handled_at.is_(None))
        .order_by(CaseEvent.id.desc()).limit(1))


def final_reminder(invoice_id: int) -> Reminder | None:
    return db.session.scalar(select(Reminder).where(Reminder.invoice_id == invoice_id, Reminder.final.is_(True))
                             .order_by(Reminder.sent_at.desc()).limit(1))


def open_case(invoice_id: int) -> Case | None:
    """The invoice's case that is not over (handled by the partner, or a recall not confirmed yet)."""
    return db.session.scalar(select(Case).where(Case.invoice_id == invoice_id, Case.status.in_(CaseStatus.OPEN)))


def active_case(invoice_id: int) -> Case | None:
    """The invoice's case the partner handles now (sent or acknowledged), if any."""
    return db.session.scalar(select(Case).where(Case.invoice_id == invoice_id, Case.status.in_(CaseStatus.ACTIVE)))


def portal_runs_dunning(invoice: Invoice) -> bool:
    """Whether the portal sends this bill's reminders by a dunning plan (its own, or the creditor's
    default, which the next run gives it), rather than the creditor's own dunning system reporting them."""
    if invoice.dunning_excluded or invoice.customer.dunning_excluded:
        return False
    return invoice.dunning_plan_id is not None or default_plan(invoice.creditor_id) is not None


def plan_hand_off(invoice: Invoice, today: date, *, manual: bool = False) -> str | None:
    """For a bill the portal reminds: what its plan and the law still ask before a hand-off, or None.
    A plan with a step that starts the hand-off clock (Norway's inkassovarsel, a final reminder) needs
    that notice sent and its deadline passed (`dunning.services.hand_off_not_before`); a plan without
    one falls back on the final reminder, which the run records like a reported one. An agent's
    hand-off (`manual`) waits for the deadline too, and in Norway for the inkassovarsel itself (the
    law asks for it: inkassoloven § 9); elsewhere an agent may hand off before the warning went."""
    return plan_hand_off_after(invoice, today, hand_off_not_before(invoice.id), manual=manual)


def plan_hand_off_after(invoice: Invoice, today: date, not_before: date | None, *, manual: bool = False) -> str | None:
    """`plan_hand_off` with the plan's first hand-off day already known (`hand_off_not_before`)."""
    if not_before is not None:
        return None if today >= not_before else f"warning_deadline:{not_before.isoformat()}"
    plan = db.session.get(Plan, invoice.dunning_plan_id) if invoice.dunning_plan_id else default_plan(
        invoice.creditor_id)
    if plan is None or not any(step.starts_hand_off for step in plan.steps):
        return None
    return "no_collection_warning" if not manual or plan.jurisdiction == Jurisdiction.NO else None


def check(invoice: Invoice, policy: Policy | None, today: date, *, manual: bool = False) -> Eligibility:
    """Decide for `invoice` under the creditor's `policy`. `manual`: an agent hands off now, so
    the policy's amounts and days do not apply; the pause rule, an open question of the customer and
    the dunning plan's collection warning (its deadline is the law's: Norway's inkassoloven § 9) do.

    For a bill the portal reminds (`portal_runs_dunning`), the plan's collection warning takes the
    place of the final reminder and its days: the hand-off waits until the warning's deadline has
    passed. Bills the creditor reminds itself keep the reported final reminder and the policy's days."""
    reasons = []
    if not invoice.livemode:
        reasons.append("test_bill")  # test mode (docs/api.md): no partner ever sees a test bill
    if policy is None or not policy.enabled:
        reasons.append("no_policy")
    elif not policy.partner.enabled:
        reasons.append("partner_disabled")
    if invoice.status not in HANDABLE:
        reasons.append(f"status:{invoice.status}")
    if open_case(invoice.id) is not None:
        reasons.append("open_case")
    returned = unhandled_return(invoice.id)
    if returned is not None:
        reasons.append(f"returned:{(returned.details or {}).get('reason', '')}")
    if invoice.balance <= 0:
        reasons.append("nothing_owed")
    ours = portal_runs_dunning(invoice)
    waiting = plan_hand_off(invoice, today, manual=manual) if ours else None
    final = final_reminder(invoice.id)
    if not manual and policy is not None:
        if invoice.balance < policy.min_balance:
            reasons.append("below_minimum")
        if today < invoice.due_date + timedelta(days=policy.days_past_due):
            reasons.append("not_overdue_enough")
        if ours and waiting is not None:
            reasons.append(waiting)
        elif ours and hand_off_not_before(invoice.id) is not None:
            pass  # the warning's deadline passed: it replaces the final reminder and its days
        elif final is None:
            reasons.append("no_final_reminder")
        elif today < local_today(invoice.creditor.country, final.sent_at) + timedelta(
                days=policy.days_after_final_reminder):
            reasons.append("final_reminder_too_recent")
    elif waiting is not None:
        reasons.append(waiting)  # an agent hands off now: never before the warning's deadline either
    dunning = dunning_for(invoice, today)
    if not dunning.may_hand_off and f"status:{invoice.status}" not in reasons:
        reasons.append(f"paused:{dunning.reason}")
    elif invoice.status in HANDABLE and has_open_question(invoice.id):
        reasons.append("open_question")
    return Eligibility(tuple(reasons))


def candidates(*, creditor_id: int | None = None, limit: int = 1000, on: date | None = None) -> list[int]:
    """Ids of invoices that may be due for hand-off, roughly (the exact rule is `check`, under a
    lock): creditors with a policy and an enabled partner, live bills open or part paid, past due (by `on`,
    default today), with a final reminder (the dunning run records one for its final steps), and no
    open case. Oldest due first."""
    query = (
        select(Invoice.id)
        .join(Policy, and_(Policy.creditor_id == Invoice.creditor_id, Policy.enabled.is_(True)))
        .join(Partner, and_(Partner.id == Policy.partner_id, Partner.enabled.is_(True)))
        .where(Invoice.livemode.is_(True), Invoice.status.in_(HANDABLE), Invoice.total > Invoice.amount_paid,
               Invoice.due_date < (on or utcnow().date()),
               exists().where(Reminder.invoice_id == Invoice.id, Reminder.final.is_(True)),
               ~exists().where(Case.invoice_id == Invoice.id, Case.status.in_(CaseStatus.OPEN)))
        .order_by(Invoice.due_date, Invoice.id).limit(limit)
    )
    if creditor_id is not None:
        query = query.where(Invoice.creditor_id == creditor_id)
    return list(db.session.scalars(query))


# --- handing off -------------------------------------------------------------------------------------


class NotEligible(Exception):
    def __init__(self, reasons: tuple[str, ...]):
        super().__init__(", ".join(reasons))
        self.reasons = reasons


def hand_off(invoice_id: int, *, actor: str, today_for: Callable[[str], date], manual: bool = False,
             skip_locked: bool = False) -> Case:
    """Hand the invoice to its creditor's partner: lock it, decide again, make the case with its
    case file, move the invoice to in_collection and write the delivery to the outbox. Raises
    NotEligible (nothing changes) with the reasons; `skip_locked`: a bill another run holds is
    skipped (NotEligible(("busy",))) instead of waited for."""
    query = select(Invoice).where(Invoice.id == invoice_id).with_for_update(skip_locked=skip_locked) \
        .execution_options(populate_existing=True)
    invoice = db.session.scalar(query)
    if invoice is None:
        raise NotEligible(("busy",) if skip_locked else ("gone",))
    policy = policy_of(invoice.creditor_id)
    decision = check(invoice, policy, today_for(invoice.creditor.country), manual=manual)
    if not decision.eligible:
        raise NotEligible(decision.reasons)
    partner = policy.partner
    split = split_amounts(invoice)
    amounts = split["outstanding"]
    now = utcnow()
    case = Case(public_id="case_" + secrets.token_urlsafe(16), creditor_id=invoice.creditor_id, invoice=invoice,
                partner=partner, status=CaseStatus.SENT, currency=invoice.currency, principal=amounts["principal"],
                fees=amounts["fees"], interest=amounts["interest"], keep_payments=policy.keep_payments,
                case_file={}, handed_off_by=actor, handed_off_at=now)
    try:
        with db.session.begin_nested():
            db.session.add(case)
            db.session.flush()
    except IntegrityError:  # another hand-off of this invoice committed first
        raise NotEligible(("open_case",)) from None
    case.case_file = build_case_file(case, split, created_at=now)
    transition(invoice, InvoiceStatus.IN_COLLECTION, actor=actor, reason=f"handed off to {partner.slug}")
    record_event(invoice, "handed_off", actor, partner=partner.name, case=case.public_id,
                 amount=amounts["total"], currency=invoice.currency)
    _deliver(case, "case_created", f"collection.case_created:{case.public_id}")
    db.session.flush()
    return case


def _deliver(case: Case, kind: str, key: str, **payload) -> None:
    """A delivery of this case to its partner, through the outbox (the partner's current endpoint
    and secrets are read when it is sent)."""
    enqueue("webhook", f"collection.{kind}", case.partner.slug, {"case_id": case.id, **payload},
            idempotency_key=key, creditor_id=case.creditor_id, locale=None)


# --- recall ------------------------------------------------------------------------------------------


def recall(case: Case, *, actor: str, reason: str) -> Case:
    """The creditor takes the case back: the partner is told, the bill page is the creditor's
    again (payable, and reminders may resume), the case waits for the partner's confirmation."""
    if case.status not in CaseStatus.ACTIVE:
        raise IllegalTransition(f"case {case.public_id} is {case.status}")
    lock_invoice(case.invoice_id)
    case.status, case.recalled_at = CaseStatus.RECALL_REQUESTED, utcnow()
    invoice = case.invoice
    if invoice.status == InvoiceStatus.IN_COLLECTION:
        release(invoice, actor=actor, reason="recalled from debt collection")
    record_event(invoice, "hand_off_recalled", actor, partner=case.partner.name, case=case.public_id,
                 reason=(reason or "")[:300] or None)
    _deliver(case, "case_recalled", f"collection.case_recalled:{case.public_id}:{case.recalled_at:%Y%m%d%H%M%S}",
             reason=(reason or "")[:300] or None)
    db.session.flush()
    return case


# --- what the partner reports ------------------------------------------------------------------------


def acknowledge(case: Case, *, reference: str | None) -> Case:
    """The partner has the case (again: nothing changes). Its own reference is kept and shown."""
    if case.status == CaseStatus.SENT:
        case.status, case.acknowledged_at = CaseStatus.ACKNOWLEDGED, utcnow()
        case.partner_reference = (reference or "").strip()[:64] or None
        record_event(case.invoice, "collection_acknowledged", f"partner:{case.partner.slug}", case=case.public_id,
                     reference=case.partner_reference)
        db.session.flush()
    elif case.status not in (CaseStatus.ACKNOWLEDGED,):
        raise IllegalTransition(f"case {case.public_id} is {case.status}")
    return case


@dataclass(frozen=True)
class PartnerEvent:
    """What a partner reports (the partner API's event body, parsed). Beyond payments and closures:
    `reason` (case_returned), `costs` and `claim` (costs_added; `claim` also with any event of a case
    the partner handles: what the debtor owes it now, its costs and interest included), `instalments`
    ((due date, amount) pairs: plan_agreed), `contact` (email, phone, address: contact_updated) and
    `message` (for the creditor: message)."""

    event_id: str
    kind: str
    amount: int | None = None
    currency: str | None = None
    occurred_on: date | None = None
    note: str | None = None
    reason: str | None = None
    costs: int | None = None
    claim: int | None = None
    instalments: tuple[tuple[date, int], ...] | None = None
    contact: dict | None = None
    message: str | None = None

    def digest(self) -> str:
        body = {"kind": self.kind, "amount": self.amount, "currency": self.currency,
                "occurred_on": self.occurred_on.isoformat() if self.occurred_on else None, "note": self.note}
        later = {"reason": self.reason, "costs": self.costs, "claim": self.claim,
                 "instalments": [[d.isoformat(), a] for d, a in self.instalments] if self.instalments is not None
                 else None, "contact": self.contact, "message": self.message}
        body.update({name: value for name, value in later.items() if value is not None})  # ids hashed before stay equal
        return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def apply_event(case: Case, event: PartnerEvent) -> tuple[CaseEvent, bool]:
    """Record and carry out what the partner reports, once per its event id: (the event, created).
    The same id with other content is a Conflict. A payment settles the bill like any payment (the
    receipt e-mail included), keyed by the partner and its event id. A case given back
    (`case_returned`) is the creditor's again at once and waits for an agent; costs, a plan, new
    contact details and a message are kept with the case, shown to agents and in the case file."""
    partner = case.partner
    existing = db.session.scalar(select(CaseEvent).where(CaseEvent.partner_id == partner.id,
                                                         CaseEvent.event_id == event.event_id))
    if existing is not None:
        if existing.payload_hash != event.digest() or existing.case_id != case.id:
            raise Conflict(f"event {event.event_id} was reported before with other content")
        return existing, False
    invoice = lock_invoice(case.invoice_id)
    db.session.refresh(case)  # as committed before the lock: a recall changes the case under the invoice's lock
    details = _check_event(case, invoice, event)
    recorded = CaseEvent(case_id=case.id, partner_id=partner.id, event_id=event.event_id, kind=event.kind,
                         amount=event.amount, currency=event.currency,
                         occurred_on=event.occurred_on.isoformat() if event.occurred_on else None,
                         note=(event.note or "")[:500] or None, details=details or None, payload_hash=event.digest())
    try:
        with db.session.begin_nested():
            db.session.add(recorded)
            db.session.flush()
    except IntegrityError:  # the same event, in a request that committed in between
        return db.session.scalar(select(CaseEvent).where(CaseEvent.partner_id == partner.id,
                                                         CaseEvent.event_id == event.event_id)), False
    actor = f"partner:{partner.slug}"
    if event.amount and event.kind in PAYING:
        settle(invoice.id, provider=PROVIDER, payment_id=f"{partner.slug}:{event.event_id}", amount=event.amount,
               currency=event.currency or invoice.currency, method="debt_collection",
               received_at=datetime.combine(event.occurred_on or utcnow().date(), time(12), tzinfo=UTC),
               actor=actor)
    if event.claim is not None:
        case.partner_claim, case.partner_claim_at = event.claim, utcnow()
    if event.kind == "closed_paid":
        _close(case, CaseStatus.CLOSED_PAID, actor)
    elif event.kind == "closed_uncollectable":
        _close(case, CaseStatus.CLOSED_UNCOLLECTABLE, actor)
        if invoice.status == InvoiceStatus.IN_COLLECTION:
            transition(invoice, InvoiceStatus.WRITTEN_OFF, actor=actor, reason="uncollectable")
    elif event.kind == "recall_acknowledged":
        case.status = CaseStatus.RECALLED
        record_event(invoice, "collection_recall_confirmed", actor, case=case.public_id)
    elif event.kind == "case_returned":
        case.status, case.recalled_at = CaseStatus.RETURNED, utcnow()
        if invoice.status == InvoiceStatus.IN_COLLECTION:
            release(invoice, actor=actor, reason=f"returned by the collection partner: {event.reason}")
        record_event(invoice, "collection_returned", actor, case=case.public_id, reason=event.reason,
                     note=recorded.note, event=recorded.id)
    elif event.kind == "costs_added":
        record_event(invoice, "collection_costs_added", actor, case=case.public_id, amount=event.costs,
                     claim=event.claim, currency=invoice.currency, note=recorded.note)
    elif event.kind == "plan_agreed":
        instalments = details["instalments"]
        record_event(invoice, "collection_plan_agreed", actor, case=case.public_id, count=len(instalments),
                     total=sum(i["amount"] for i in instalments), currency=invoice.currency,
                     first=instalments[0]["due_date"], last=instalments[-1]["due_date"])
    elif event.kind == "contact_updated":
        record_event(invoice, "collection_contact_reported", actor, case=case.public_id,
                     fields=sorted(details["contact"]), event=recorded.id)
    elif event.kind == "message":
        record_event(invoice, "collection_message", actor, case=case.public_id, text=details["message"],
                     event=recorded.id)
    db.session.flush()
    return recorded, True


#: What a partner may report on a case, by the case's status: the bill while it handles it; once the
#: creditor recalled it, only the confirmation (with any money collected before the recall) or a
#: message; nothing once the case is over or given back.
HANDLING = ("payment_received", "closed_paid", "closed_uncollectable", "case_returned", "costs_added",
            "plan_agreed", "contact_updated", "message")
EVENTS_BY_STATUS = {
    CaseStatus.SENT: HANDLING,
    CaseStatus.ACKNOWLEDGED: HANDLING,
    CaseStatus.RECALL_REQUESTED: ("recall_acknowledged", "message"),
}


def outstanding(invoice: Invoice) -> int:
    """What the case can still collect: the bill's balance (never below zero)."""
    return max(invoice.balance, 0)


def _check_event(case: Case, invoice: Invoice, event: PartnerEvent) -> dict:
    """Every reason the event cannot be taken, at once (InvalidData), before anything is written; else
    the event's details as kept (its reason, costs, instalments, contact details or message)."""
    errors: dict[str, str] = {}
    allowed = EVENTS_BY_STATUS.get(case.status, ())
    if event.kind not in EVENT_KINDS:
        errors["type"] = f"one of {', '.join(EVENT_KINDS)}"
    elif event.kind not in allowed:
        if event.kind == "recall_acknowledged":
            errors["type"] = "no recall is waiting for this case"
        elif case.status == CaseStatus.RECALL_REQUESTED:
            errors["type"] = ("the case was recalled: confirm with recall_acknowledged, with the amount of any "
                              "payment collected before the recall")
        else:
            errors["type"] = f"the case is {case.status}"
    if event.kind == "payment_received" and not event.amount:
        errors["amount"] = "required for a payment"
    if event.amount is not None and event.kind in EVENT_KINDS and event.kind not in PAYING:
        errors["amount"] = f"only with {', '.join(PAYING)}: money you received"
    elif event.amount is not None and (not isinstance(event.amount, int) or event.amount <= 0):
        errors["amount"] = "a positive amount in minor units"
    elif event.amount and event.amount > outstanding(invoice):
        errors["amount"] = (f"at most what the case owes now ({outstanding(invoice)} minor units): a payment beyond "
                            "it is yours to return to the debtor")
    if event.currency is not None and event.currency != invoice.currency:
        errors["currency"] = f"the invoice is in {invoice.currency}"
    if event.occurred_on and event.occurred_on > utcnow().date() + timedelta(days=1):
        errors["occurred_on"] = "in the future"
    elif event.occurred_on and event.occurred_on < case.handed_off_at.date() - timedelta(days=1):
        errors["occurred_on"] = "before the case was handed off"
    if event.kind == "closed_paid" and invoice.balance - (event.amount or 0) > 0:
        errors.setdefault("amount", "the bill still has a balance: report the payments first (or with this event)")
    details = _event_details(case, event, errors)
    for name in ("reason", "costs", "instalments", "contact", "message"):
        if getattr(event, name) is not None and name not in FIELDS_OF.get(event.kind, ()):
            errors.setdefault(name, f"not part of {event.kind}")
    if event.claim is not None and (not isinstance(event.claim, int) or not 0 <= event.claim < MAX_MINOR):
        errors["claim"] = "what the debtor owes you now, in minor units"
    elif event.claim is not None and event.kind not in HANDLING:
        errors["claim"] = "only while you handle the case"
    if errors:
        raise InvalidData(errors)
    return details


#: The fields each kind of event takes beyond id, type, amount, currency, occurred_on, note and claim.
FIELDS_OF = {"case_returned": ("reason",), "costs_added": ("costs",), "plan_agreed": ("instalments",),
             "contact_updated": ("contact",), "message": ("message",)}


def _event_details(case: Case, event: PartnerEvent, errors: dict[str, str]) -> dict:
    """The details of a return, costs, a plan, contact details or a message, checked (problems into `errors`)."""
    kind = event.kind
    if kind == "case_returned":
        if event.reason not in RETURN_REASONS:
            errors["reason"] = f"one of {', '.join(RETURN_REASONS)}"
        return {"reason": event.reason}
    if kind == "costs_added":
        if not isinstance(event.costs, int) or not 0 < event.costs < MAX_MINOR:
            errors["costs"] = "required: the costs you added, a positive amount in minor units"
        if event.claim is None:
            errors.setdefault("claim", "required with costs_added: what the debtor owes you now, costs included")
        return {"costs": event.costs, "claim": event.claim, "description": event.note}
    if kind == "plan_agreed":
        return {"instalments": _instalments(case, event.instalments, errors), "claim": event.claim}
    if kind == "contact_updated":
        return {"contact": _contact(event.contact, errors)}
    if kind == "message":
        text = (event.message or "").strip()
        if not text:
            errors["message"] = "required: your message for the creditor"
        elif len(text) > MAX_MESSAGE or "\x00" in text:
            errors["message"] = f"at most {MAX_MESSAGE} characters, no NUL"
        return {"message": text}
    return {}


def _instalments(case: Case, given: tuple[tuple[date, int], ...] | None, errors: dict[str, str]) -> list[dict]:
    if not given:
        errors["instalments"] = f"required: 1 to {MAX_INSTALMENTS} instalments, each a due_date and an amount"
        return []
    if len(given) > MAX_INSTALMENTS:
        errors["instalments"] = f"at most {MAX_INSTALMENTS} instalments"
    earliest = case.handed_off_at.date() - timedelta(days=1)
    previous: date | None = None
    for n, (due, amount) in enumerate(given):
        if not isinstance(amount, int) or not 0 < amount < MAX_MINOR:
            errors.setdefault(f"instalments.{n}.amount", "a positive amount in minor units")
        if due < earliest or due > earliest + timedelta(days=366 * 10):
            errors.setdefault(f"instalments.{n}.due_date", "from the hand-off to ten years after it")
        elif previous is not None and due <= previous:
            errors.setdefault(f"instalments.{n}.due_date", "after the instalment before it")
        previous = due
    return [{"due_date": due.isoformat(), "amount": amount} for due, amount in given]


def _contact(given: dict | None, errors: dict[str, str]) -> dict:
    """New contact details of the debtor as the partner reports them: checked like the creditor's own."""
    if not isinstance(given, dict) or not any(given.get(name) for name in ("email", "phone", "address")):
        errors["contact"] = "required: at least one of email, phone, address"
        return {}
    found: dict = {}
    if given.get("email"):
        email = clean_email(given["email"])
        if not is_email(email):
            errors["contact.email"] = "not an e-mail address"
        found["email"] = email
    if given.get("phone"):
        phone = clean_phone(given["phone"])
        if not is_e164(phone):
            errors["contact.phone"] = "not a phone number in international form (E.164, e.g. +4791234567)"
        found["phone"] = phone
    if given.get("address"):
        cleaned, problems = check_address(given["address"])
        errors.update({f"contact.{name}": problem for name, problem in problems.items()})
        found["address"] = cleaned
    return found


def _close(case: Case, status: str, actor: str) -> None:
    case.status, case.closed_at = status, utcnow()
    record_event(case.invoice, "collection_closed", actor, case=case.public_id, outcome=status)


# --- payments made meanwhile ---------------------------------------------------------------------------


def report_payment(payment: Payment, **_ignored) -> None:
    """A payment of a bill in collection (by card on the bill page, a bank transfer with the KID,
    recorded by an agent) is reported to the partner, who must not chase what is paid. Payments
    the partner reported itself are not echoed back."""
    if payment.provider == PROVIDER:
        return
    case = active_case(payment.invoice_id)
    if case is None:
        return
    _deliver(case, "payment_received", f"collection.payment_received:{payment.public_ref}", payment_id=payment.id)


# --- what agents do with the partner's reports -----------------------------------------------------------


def reports_of(invoice_id: int) -> list[CaseEvent]:
    """What partners reported on the bill beyond payments and closures, newest first (the back office)."""
    return list(db.session.scalars(select(CaseEvent).join(Case, Case.id == CaseEvent.case_id).where(
        Case.invoice_id == invoice_id, CaseEvent.kind.in_(tuple(FIELDS_OF))).order_by(CaseEvent.id.desc())))


def mark_handled(event: CaseEvent, *, actor: str) -> CaseEvent:
    """An agent dealt with what the partner reported (it leaves the inbox; a returned bill may be handed
    off again). Only what waits for an agent can be marked, once."""
    if event.kind not in NEEDS_AGENT:
        raise IllegalTransition(f"a partner's {event.kind} waits for nobody")
    if event.handled_at is not None:
        raise IllegalTransition("dealt with already")
    event.handled_at, event.handled_by = utcnow(), actor
    record_event(event.case.invoice, "collection_report_handled", actor, case=event.case.public_id,
                 report=event.kind)
    db.session.flush()
    return event


# --- what changed on the creditor's side -----------------------------------------------------------------


def report_update(case: Case, *, changes: list[str], reason: str | None = None, actor: str = "portal") -> None:
    """Tell the partner what changed on a bill it handles (`case.updated`): the case file built again
    (kept as the one last sent) with what changed (`amounts`: a credit note or corrected lines;
    `debtor`: the customer's name, contact details or organisation number), the reason and what the
    case owes now. One delivery per change, each with its own key."""
    invoice = case.invoice
    case.case_file = build_case_file(case, split_amounts(invoice))
    stamp = f"{utcnow():%Y%m%d%H%M%S}:{secrets.token_hex(4)}"
    _deliver(case, "case_updated", f"collection.case_updated:{case.public_id}:{stamp}", changes=changes,
             reason=reason, outstanding=outstanding(invoice), case_file=case.case_file)
    record_event(invoice, "collection_updated", actor, case=case.public_id, changes=changes)
    db.session.flush()


def report_correction(invoice: Invoice, *, actor: str = "portal", **_ignored) -> None:
    """A handed-off bill was credited or corrected (billing's `total_changed`): the partner hears of it."""
    case = active_case(invoice.id)
    if case is not None:
        report_update(case, changes=["amounts"], reason="the creditor credited or corrected the bill", actor=actor)


def report_contact_change(customer: Customer, *, actor: str = "portal", **_ignored) -> None:
    """The customer's name, contact details or organisation number changed (billing's `contact_changed`):
    every partner handling one of their bills hears of it."""
    cases = db.session.scalars(select(Case).join(Invoice, Invoice.id == Case.invoice_id).where(
        Invoice.customer_id == customer.id, Case.status.in_(CaseStatus.ACTIVE)).order_by(Case.id))
    for case in cases:
        report_update(case, changes=["debtor"], reason="the debtor's contact details changed", actor=actor)
