"""Disputes, promises to pay, deferrals and instalment plans: the rules, and what each one does.

Plain functions: they add and flush, and the caller (a view, a CLI command) commits once. Each
one that changes something records an invoice event (the bill page is cached by the newest
one) and writes its e-mails to the outbox in the same transaction. Limits come from the
creditor's self-service rules (`flask resolutions rules`); amounts and dates are computed here,
never taken from a form beyond the customer's choice.

A double submit (the same form's `submission_key` twice) returns the first record: a unique key
on (invoice, submission_key) settles a race between two requests.
"""

from __future__ import annotations

import calendar
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from app.billing.corrections import LineCorrection, LineCredit, correct_lines, creditable, issue_credit_note
from app.billing.models import Invoice
from app.billing.models import InvoiceStatus as S
from app.billing.services import (
    add_charge,
    cancel_invoice,
    move_due_date,
    record_event,
    release,
    resume,
    transition,
)
from app.errors import IllegalTransition, InvalidData
from app.extensions import db
from app.models import utcnow
from app.money import round_half_up
from app.outbox.services import enqueue
from app.resolutions.models import DISPUTE_REASONS, Instalment, Kind, Resolution, Status
from app.resolutions.pause import Dunning, dunning
from app.support.attachments import Upload, store_attachment

ACTOR = "customer"
REFERENCE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read out on the phone
PLAN_FIRST_DUE_DAYS = 14  # the first instalment is due in two weeks (or on the due date, if later)
DEFERRAL_REQUEST_MAX_DAYS = 90  # beyond the rules a customer may ask an agent for up to three months
MESSAGE_MAX = 4000


def new_reference() -> str:
    return "R-" + "".join(secrets.choice(REFERENCE_ALPHABET) for _i in range(8))


# --- reading -------------------------------------------------------------------------------------


def resolutions_for(invoice_id: int) -> list[Resolution]:
    """Every resolution of the invoice, oldest first, with a plan's instalments: two statements."""
    return list(db.session.scalars(
        select(Resolution).options(selectinload(Resolution.instalments))
        .where(Resolution.invoice_id == invoice_id).order_by(Resolution.id)
    ))


def live_resolutions(invoice_id: int) -> list[Resolution]:
    return [r for r in resolutions_for(invoice_id) if r.is_live]


def find_resolution(invoice_id: int, reference: str) -> Resolution | None:
    if not reference or len(reference) > 16:
        return None
    return db.session.scalar(
        select(Resolution).where(Resolution.invoice_id == invoice_id, Resolution.reference == reference)
    )


def dunning_for(invoice: Invoice, today: date) -> Dunning:
    """`pause.dunning` with the invoice's live resolutions read from the database."""
    return dunning(invoice, today, live_resolutions(invoice.id))


# --- instalment plans: offers and progress ---------------------------------------------------------


def add_months(day: date, months: int) -> date:
    """The same day `months` later, or the month's last day when it is shorter (31 Jan -> 28 Feb)."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


@dataclass(frozen=True)
class PlanOffer:
    months: int
    principal: int  # the balance today
    fee: int
    interest: int
    schedule: tuple[tuple[date, int], ...]  # (due date, amount)

    @property
    def total(self) -> int:
        return self.principal + self.fee + self.interest

    @property
    def instalment(self) -> int:
        """The usual instalment (the first one carries any remainder)."""
        return self.schedule[-1][1]


def plan_interest(principal: int, annual_bp: int, months: int) -> int:
    """Interest on a balance paid down in equal monthly parts: each month's interest is on what is
    still owed that month, which sums to principal × rate × (months + 1) / 24. Half up."""
    return round_half_up(Decimal(principal) * annual_bp * (months + 1) / (10000 * 24))


def plan_first_due(invoice: Invoice, today: date) -> date:
    return max(invoice.due_date, today + timedelta(days=PLAN_FIRST_DUE_DAYS))


def plan_offer(invoice: Invoice, months: int, today: date) -> PlanOffer:
    """The plan of `months` monthly instalments for the balance today, with the creditor's fee and
    interest; the first instalment carries the remainder of the division."""
    creditor = invoice.creditor
    principal = invoice.balance
    interest = plan_interest(principal, creditor.plan_interest_bp, months)
    total = principal + creditor.plan_fee + interest
    part, remainder = divmod(total, months)
    amounts = [part + remainder] + [part] * (months - 1)
    first_due = plan_first_due(invoice, today)
    schedule = tuple((add_months(first_due, k), amount) for k, amount in enumerate(amounts))
    return PlanOffer(months, principal, creditor.plan_fee, interest, schedule)


def plan_offers(invoice: Invoice, today: date) -> list[PlanOffer]:
    """The plans the creditor's rules allow for this balance: 2 to plan_max_months monthly
    instalments, none below plan_min_instalment."""
    creditor = invoice.creditor
    if invoice.balance <= 0 or creditor.plan_max_months < 2:
        return []
    offers = []
    for months in range(2, creditor.plan_max_months + 1):
        offer = plan_offer(invoice, months, today)
        if offer.instalment < max(creditor.plan_min_instalment, 1):
            break  # more months only make the instalments smaller
        offers.append(offer)
    return offers


@dataclass(frozen=True)
class InstalmentState:
    instalment: Instalment
    paid: int  # of this instalment's amount
    state: str  # paid | part_paid | due | overdue

    @property
    def left(self) -> int:
        return self.instalment.amount - self.paid


def plan_progress(plan: Resolution, invoice: Invoice, today: date) -> list[InstalmentState]:
    """Which instalments the payments made since the plan began cover, in order."""
    paid = max(invoice.amount_paid - (plan.paid_before or 0), 0)
    states = []
    for instalment in plan.instalments:
        covered = min(paid, instalment.amount)
        paid -= covered
        if covered >= instalment.amount:
            state = "paid"
        elif instalment.due_date < today:
            state = "overdue"
        else:
            state = "part_paid" if covered else "due"
        states.append(InstalmentState(instalment, covered, state))
    return states


def next_instalment(plan: Resolution, invoice: Invoice, today: date) -> InstalmentState | None:
    return next((s for s in plan_progress(plan, invoice, today) if s.state != "paid"), None)


def missed_instalment(plan: Resolution, invoice: Invoice, today: date) -> InstalmentState | None:
    """The first instalment still unpaid after its due date plus the creditor's grace days."""
    grace = timedelta(days=invoice.creditor.grace_days)
    return next(
        (s for s in plan_progress(plan, invoice, today) if s.state == "overdue" and s.instalment.due_date + grace < today),
        None,
    )


# --- what the bill page offers -----------------------------------------------------------------------


@dataclass
class SelfService:
    """The invoice's resolutions as the bill page shows them, and what the customer may do next."""

    resolutions: list[Resolution]
    dunning: Dunning
    payable_now: int | None  # what the pay buttons take: the balance, an instalment, the undisputed part
    pay_reason: str | None = None  # None (the balance), "instalment" or "undisputed"
    open_dispute: Resolution | None = None
    promise: Resolution | None = None
    deferral: Resolution | None = None  # an open request or a deferral granted that still runs
    plan: Resolution | None = None  # a plan running
    plan_request: Resolution | None = None  # a plan asked for beyond the rules, waiting for an agent
    progress: list[InstalmentState] = field(default_factory=list)
    can: dict[str, bool] = field(default_factory=dict)  # dispute, promise, deferral, plan, plan_request

    @property
    def disputes(self) -> list[Resolution]:
        return [r for r in self.resolutions if r.kind == Kind.DISPUTE]

    @property
    def next_instalment(self) -> InstalmentState | None:
        return next((s for s in self.progress if s.state != "paid"), None)


def is_payable(invoice: Invoice, *, in_collection: bool = False) -> bool:
    """Something is owed and the bill page takes it. A bill in collection is the partner's to
    collect, unless the creditor keeps taking payments then (`in_collection`)."""
    if invoice.status == S.IN_COLLECTION:
        return in_collection and invoice.balance > 0
    return not invoice.is_closed and invoice.balance > 0 and invoice.status != S.PAID


def self_service(invoice: Invoice, today: date, resolutions: list[Resolution] | None = None, *,
                 collection_payable: bool = False) -> SelfService:
    """The bill page's self-service state. `collection_payable`: the bill is in collection and its
    creditor keeps taking payments (then only paying is offered, nothing else)."""
    resolutions = resolutions_for(invoice.id) if resolutions is None else resolutions
    live = [r for r in resolutions if r.is_live]
    creditor = invoice.creditor
    found = SelfService(resolutions=resolutions, dunning=dunning(invoice, today, live), payable_now=None)
    for r in live:
        if r.kind == Kind.DISPUTE:
            found.open_dispute = r
        elif r.kind == Kind.PROMISE:
            found.promise = r
        elif r.kind == Kind.PLAN and r.status == Status.OPEN:
            found.plan_request = r
        elif r.kind == Kind.PLAN:
            found.plan = r
        elif r.kind == Kind.DEFERRAL and (r.status == Status.OPEN or today <= r.new_date):
            found.deferral = r
    if invoice.status == S.IN_COLLECTION:
        found.payable_now = invoice.balance if is_payable(invoice, in_collection=collection_payable) else None
        found.can = dict.fromkeys(("dispute", "promise", "deferral", "plan", "plan_request"), False)
        return found
    payable = is_payable(invoice)
    if payable:
        found.payable_now = invoice.balance
        if found.plan is not None:
            found.progress = plan_progress(found.plan, invoice, today)
            upcoming = found.next_instalment
            if upcoming is not None and upcoming.left < invoice.balance:
                found.payable_now, found.pay_reason = upcoming.left, "instalment"
        elif found.open_dispute is not None:
            undisputed = invoice.balance - (found.open_dispute.amount or 0)
            held = not creditor.dispute_partial_payable or undisputed <= 0
            found.payable_now, found.pay_reason = (None, None) if held else (undisputed, "undisputed")
    busy = found.open_dispute is not None or found.plan is not None or found.plan_request is not None
    settled_otherwise = found.promise is not None or found.deferral is not None
    found.can = {
        "dispute": payable and found.open_dispute is None,
        "promise": payable and not busy and found.promise is None and found.deferral is None
        and creditor.promise_max_days > 0,
        "deferral": payable and not busy and found.promise is None and found.deferral is None
        and creditor.deferral_max_days > 0,
        "plan": payable and not busy and not settled_otherwise and bool(plan_offers(invoice, today)),
        "plan_request": payable and not busy and not settled_otherwise,
    }
    return found


def _require(invoice: Invoice, what: str, today: date) -> SelfService:
    """The self-service state, or InvalidData when `what` is not open to this invoice now."""
    found = self_service(invoice, today)
    if not found.can.get(what):
        if invoice.balance <= 0 or invoice.status == S.PAID:
            raise InvalidData({"invoice": "paid"})
        raise InvalidData({"invoice": "unavailable"})
    return found


# --- creating: one record per submission ------------------------------------------------------------


def _existing(invoice: Invoice, submission_key: str) -> Resolution | None:
    return db.session.scalar(
        select(Resolution).where(Resolution.invoice_id == invoice.id, Resolution.submission_key == submission_key)
    )


def _create(invoice: Invoice, submission_key: str, build: Callable[[], Resolution],
            after: Callable[[Resolution], None]) -> tuple[Resolution, bool]:
    """Add the resolution `build()` makes, unless this submission made one already; then `after()`."""
    if not submission_key or len(submission_key) > 64:
        raise InvalidData({"submission": "missing"})
    existing = _existing(invoice, submission_key)
    if existing is not None:
        return existing, False
    resolution = build()
    resolution.reference = new_reference()
    resolution.submission_key = submission_key
    resolution.invoice = invoice
    resolution.creditor_id = invoice.creditor_id
    try:
        with db.session.begin_nested():
            db.session.add(resolution)
            db.session.flush()
    except IntegrityError:  # the same submission, in a request that committed in between
        existing = _existing(invoice, submission_key)
        if existing is None:
            raise
        return existing, False
    after(resolution)
    db.session.flush()
    return resolution, True


def _email(resolution: Resolution, kind: str, recipient: str | None, *, key_suffix: str = "",
           locale: str | None = None, **payload) -> None:
    if not recipient:
        return
    enqueue(
        "email", f"resolution.{kind}", recipient, {"resolution_id": resolution.id, **payload},
        idempotency_key=f"resolution.{kind}:{resolution.reference}{key_suffix}",
        creditor_id=resolution.creditor_id, locale=locale or resolution.locale,
    )


def _to_customer(resolution: Resolution, kind: str, *, key_suffix: str = "", **payload) -> None:
    _email(resolution, kind, resolution.invoice.customer.email, key_suffix=key_suffix, **payload)


def _to_creditor(resolution: Resolution, kind: str) -> None:
    creditor = resolution.invoice.creditor
    _email(resolution, kind, creditor.support_email, locale=creditor.default_locale)


# --- disputes ----------------------------------------------------------------------------------------


def dispute_amount(invoice: Invoice, line_ids: Sequence[int] | None) -> int:
    """What a dispute holds back: the chosen lines' gross (at most the balance), or the balance."""
    if not line_ids:
        return invoice.balance
    chosen = [line for line in invoice.lines if line.id in set(line_ids)]
    return min(sum(line.gross for line in chosen), invoice.balance)


def open_dispute(
    invoice: Invoice, *, reason: str, message: str, line_ids: Sequence[int] | None, upload: Upload | None,
    attachment_dir: str, locale: str, submission_key: str, today: date,
) -> tuple[Resolution, bool]:
    """Dispute the whole invoice or some lines: the invoice goes on hold (status disputed), reminders
    and the hand-off pause, the creditor's support desk is told."""
    existing = _existing(invoice, submission_key) if submission_key else None
    if existing is not None:
        return existing, False
    _require(invoice, "dispute", today)
    errors = {}
    if reason not in DISPUTE_REASONS:
        errors["reason"] = "choose"
    message = (message or "").strip()
    if not message:
        errors["message"] = "required"
    elif len(message) > MESSAGE_MAX:
        errors["message"] = "too_long"
    ids = sorted(set(line_ids or ()))
    own = {line.id for line in invoice.lines}
    if line_ids is not None and (not ids or not set(ids) <= own):
        errors["lines"] = "choose"
    if reason == "already_paid" and upload is None:
        errors["attachment"] = "proof"
    if errors:
        raise InvalidData(errors)
    if ids and set(ids) == own:
        ids = []  # every line: the whole invoice

    def build() -> Resolution:
        attachment = store_attachment(upload, invoice, attachment_dir) if upload else None
        return Resolution(
            kind=Kind.DISPUTE, status=Status.OPEN, reason=reason, message=message, attachment=attachment,
            line_ids=ids or None, amount=dispute_amount(invoice, ids), locale=locale,
        )

    def after(dispute: Resolution) -> None:
        if invoice.status != S.DISPUTED:
            transition(invoice, S.DISPUTED, actor=ACTOR, reason="dispute")
        record_event(invoice, "dispute_opened", ACTOR, reference=dispute.reference, reason=reason,
                     amount=dispute.amount, lines=dispute.line_ids)
        _to_customer(dispute, "dispute_received")
        _to_creditor(dispute, "dispute_notification")

    return _create(invoice, submission_key, build, after)


DISPUTE_OUTCOMES = (Status.UPHELD, Status.PARTIAL, Status.REJECTED)


def answer_dispute(dispute: Resolution, outcome: str, answer: str, *, actor: str,
                   credits: Sequence[LineCredit] = (), corrections: Sequence[LineCorrection] = ()) -> Resolution:
    """An agent's decision, told to the customer, and the bill made right in the same step:

    - rejected: the bill stands; it is payable again and the process resumes;
    - upheld: the customer is right about what they disputed. A bill disputed whole with nothing
      paid is cancelled; otherwise a credit note takes off what was disputed (the chosen lines, or
      everything still owed), unless the agent gives the credits or corrections to make instead;
    - partial: the customer is right in part: the agent's credits and/or line corrections (at
      least one) are made, the rest stands.

    Then the dispute no longer holds the bill (unless another one is open), and whatever was paid
    beyond the new total is owed back. Raises InvalidData (nothing changes) for a bad credit or
    correction, keyed as `billing.corrections` keys them."""
    if dispute.kind != Kind.DISPUTE or dispute.status != Status.OPEN:
        raise IllegalTransition(f"{dispute.reference} is not an open dispute")
    if outcome not in DISPUTE_OUTCOMES:
        raise InvalidData({"outcome": f"one of {', '.join(DISPUTE_OUTCOMES)}"})
    answer = (answer or "").strip()
    if not answer:
        raise InvalidData({"answer": "required: the customer reads it"})
    if outcome == Status.REJECTED and (credits or corrections):
        raise InvalidData({"outcome": "a rejected dispute changes nothing on the bill"})
    if outcome == Status.PARTIAL and not (credits or corrections):
        raise InvalidData({"credits": "none"})
    invoice = dispute.invoice
    others = [r for r in live_resolutions(invoice.id) if r.kind == Kind.DISPUTE and r.id != dispute.id]
    if outcome == Status.UPHELD and not (credits or corrections):
        if not dispute.line_ids and invoice.amount_paid == 0 and not others:
            dispute.status, dispute.answer, dispute.answered_by, dispute.closed_at = outcome, answer, actor, utcnow()
            cancel_invoice(invoice, actor=actor, reason="dispute upheld")
            return _dispute_answered(dispute, outcome, actor)
        credits = _credits_for(dispute)
    with force_locale(dispute.locale):
        label = _("After your dispute %(reference)s", reference=dispute.reference)
    if corrections:
        correct_lines(invoice, corrections, reason=label, actor=actor, reference=dispute.reference)
    if credits:
        issue_credit_note(invoice, credits, reason=label, actor=actor, reference=dispute.reference)
    dispute.status, dispute.answer, dispute.answered_by, dispute.closed_at = outcome, answer, actor, utcnow()
    if invoice.status == S.DISPUTED and not others:
        release(invoice, actor=actor, reason=f"dispute {outcome}")
    return _dispute_answered(dispute, outcome, actor)


def _credits_for(dispute: Resolution) -> list[LineCredit]:
    """What upholding a dispute takes off: the disputed lines' gross still open to a credit, or,
    for the whole bill, every line's (so that the customer owes nothing and gets back what they paid)."""
    open_to_credit = creditable(dispute.invoice)
    chosen = dispute.line_ids or list(open_to_credit)
    return [LineCredit(line_id, open_to_credit[line_id]) for line_id in chosen if open_to_credit.get(line_id, 0) > 0]


def _dispute_answered(dispute: Resolution, outcome: str, actor: str) -> Resolution:
    record_event(dispute.invoice, "dispute_answered", actor, reference=dispute.reference, outcome=outcome)
    _to_customer(dispute, "dispute_answered")
    db.session.flush()
    return dispute


# --- promises to pay ---------------------------------------------------------------------------------


def promise_window(invoice: Invoice, today: date) -> tuple[date, date]:
    """The dates a customer may promise: from tomorrow to the creditor's limit."""
    return today + timedelta(days=1), today + timedelta(days=invoice.creditor.promise_max_days)


def check_promise(invoice: Invoice, promised: date | None, today: date) -> None:
    _require(invoice, "promise", today)
    first, last = promise_window(invoice, today)
    if promised is None or not first <= promised <= last:
        raise InvalidData({"date": "range"})


def make_promise(invoice: Invoice, promised: date, *, locale: str, submission_key: str,
                 today: date) -> tuple[Resolution, bool]:
    """Reminders pause until the promised date plus the grace days; an e-mail confirms it (with a
    calendar file) and another comes the day before."""
    existing = _existing(invoice, submission_key) if submission_key else None
    if existing is not None:
        return existing, False
    check_promise(invoice, promised, today)

    def after(promise: Resolution) -> None:
        record_event(invoice, "promise_made", ACTOR, reference=promise.reference, date=promised.isoformat(),
                     amount=promise.amount)
        _to_customer(promise, "promise_confirmed")

    return _create(invoice, submission_key, lambda: Resolution(
        kind=Kind.PROMISE, status=Status.ACTIVE, new_date=promised, amount=invoice.balance, locale=locale,
    ), after)


# --- deferrals ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeferralTerms:
    new_date: date
    fee: int
    within_rules: bool  # granted at once; otherwise a request an agent decides
    why_not: str | None = None  # beyond_limit | too_many


def deferral_base(invoice: Invoice, today: date) -> date:
    return max(invoice.due_date, today)


def deferral_window(invoice: Invoice, today: date) -> tuple[date, date]:
    """The dates a customer may ask for: within the rules up to `deferral_limit`, beyond it as a request."""
    base = deferral_base(invoice, today)
    return base + timedelta(days=1), base + timedelta(days=DEFERRAL_REQUEST_MAX_DAYS)


def deferral_limit(invoice: Invoice, today: date) -> date:
    """The latest due date granted at once."""
    return deferral_base(invoice, today) + timedelta(days=invoice.creditor.deferral_max_days)


def deferral_terms(invoice: Invoice, new_date: date | None, today: date) -> DeferralTerms:
    """What asking for this due date means: granted at once with the creditor's fee, or a request."""
    _require(invoice, "deferral", today)
    base = deferral_base(invoice, today)
    if new_date is None or not base < new_date <= base + timedelta(days=DEFERRAL_REQUEST_MAX_DAYS):
        raise InvalidData({"date": "range"})
    creditor = invoice.creditor
    granted = db.session.scalar(
        select(db.func.count()).select_from(Resolution).where(
            Resolution.invoice_id == invoice.id, Resolution.kind == Kind.DEFERRAL,
            Resolution.status.in_((Status.ACTIVE, Status.KEPT, Status.BROKEN)),
        )
    )
    if granted >= creditor.deferral_max_count:
        return DeferralTerms(new_date, creditor.deferral_fee, False, "too_many")
    if new_date > deferral_limit(invoice, today):
        return DeferralTerms(new_date, creditor.deferral_fee, False, "beyond_limit")
    return DeferralTerms(new_date, creditor.deferral_fee, True)


def defer(invoice: Invoice, new_date: date | None, *, locale: str, submission_key: str,
          today: date) -> tuple[Resolution, bool]:
    """Within the rules: the due date moves at once and the fee (if any) is added to the bill.
    Beyond them: a request for an agent, which pauses reminders until it is decided."""
    existing = _existing(invoice, submission_key) if submission_key else None
    if existing is not None:
        return existing, False
    terms = deferral_terms(invoice, new_date, today)

    def build() -> Resolution:
        return Resolution(
            kind=Kind.DEFERRAL, status=Status.OPEN, old_date=invoice.due_date, new_date=terms.new_date,
            fee=terms.fee, reason=terms.why_not, locale=locale,
        )

    def after(deferral: Resolution) -> None:
        if terms.within_rules:
            _grant(deferral, actor=ACTOR)
            _to_customer(deferral, "deferral_granted")
        else:
            record_event(invoice, "deferral_requested", ACTOR, reference=deferral.reference,
                         date=terms.new_date.isoformat(), why=terms.why_not)
            _to_customer(deferral, "deferral_requested")
            _to_creditor(deferral, "deferral_request_notification")

    return _create(invoice, submission_key, build, after)


def _grant(deferral: Resolution, *, actor: str) -> None:
    invoice = deferral.invoice
    deferral.status = Status.ACTIVE
    deferral.old_date = invoice.due_date
    move_due_date(invoice, deferral.new_date, actor=actor, reason=f"deferral {deferral.reference}")
    if deferral.fee:
        with force_locale(deferral.locale):
            add_charge(invoice, "other_fee", _("Fee for a later due date"), deferral.fee, actor=actor,
                       reference=deferral.reference)
    record_event(invoice, "deferral_granted", actor, reference=deferral.reference, date=deferral.new_date.isoformat(),
                 fee=deferral.fee)


def decide_deferral(deferral: Resolution, grant: bool, answer: str | None, *, actor: str) -> Resolution:
    """An agent's decision on a request beyond the rules, told to the customer."""
    if deferral.kind != Kind.DEFERRAL or deferral.status != Status.OPEN:
        raise IllegalTransition(f"{deferral.reference} is not an open deferral request")
    invoice = deferral.invoice
    if not is_payable(invoice):
        raise IllegalTransition(f"invoice {invoice.number} is {invoice.status}; nothing to defer")
    deferral.answer, deferral.answered_by = (answer or "").strip() or None, actor
    if grant:
        _grant(deferral, actor=actor)
        _to_customer(deferral, "deferral_granted")
    else:
        deferral.status, deferral.closed_at = Status.DECLINED, utcnow()
        record_event(invoice, "deferral_declined", actor, reference=deferral.reference)
        _to_customer(deferral, "deferral_declined")
    db.session.flush()
    return deferral


# --- instalment plans --------------------------------------------------------------------------------


def choose_offer(invoice: Invoice, months: int | None, today: date) -> PlanOffer:
    _require(invoice, "plan", today)
    offer = next((o for o in plan_offers(invoice, today) if o.months == months), None)
    if offer is None:
        raise InvalidData({"months": "choose"})
    return offer


def accept_plan(invoice: Invoice, months: int | None, *, locale: str, submission_key: str,
                today: date) -> tuple[Resolution, bool]:
    """The plan the customer saw: its fee and interest join the bill as lines, each instalment is
    payable from the bill page, reminders pause while it runs."""
    existing = _existing(invoice, submission_key) if submission_key else None
    if existing is not None:
        return existing, False
    offer = choose_offer(invoice, months, today)

    def build() -> Resolution:
        plan = Resolution(
            kind=Kind.PLAN, status=Status.ACTIVE, amount=offer.total, fee=offer.fee, interest=offer.interest,
            paid_before=invoice.amount_paid, months=offer.months, locale=locale,
        )
        plan.instalments = [Instalment(seq=n, due_date=day, amount=amount)
                            for n, (day, amount) in enumerate(offer.schedule, start=1)]
        return plan

    def after(plan: Resolution) -> None:
        _plan_charges(invoice, offer, plan, ACTOR)
        record_event(invoice, "plan_accepted", ACTOR, reference=plan.reference, months=offer.months,
                     total=offer.total)
        _to_customer(plan, "plan_accepted")

    return _create(invoice, submission_key, build, after)


PLAN_REQUEST_MAX_MONTHS = 24


def check_plan_request(invoice: Invoice, months: int | None, message: str | None, today: date) -> str:
    """The customer's words, cleaned; InvalidData with every problem of the request at once."""
    _require(invoice, "plan_request", today)
    errors = {}
    if not isinstance(months, int) or isinstance(months, bool) or not 2 <= months <= PLAN_REQUEST_MAX_MONTHS:
        errors["months"] = "range"
    message = (message or "").strip()
    if not message:
        errors["message"] = "required"
    elif len(message) > MESSAGE_MAX:
        errors["message"] = "too_long"
    if errors:
        raise InvalidData(errors)
    return message


def request_plan(invoice: Invoice, months: int | None, message: str | None, *, locale: str, submission_key: str,
                 today: date) -> tuple[Resolution, bool]:
    """A plan the rules do not offer (more months, smaller instalments), asked of an agent with a
    few words of why. Reminders pause until it is decided; nothing on the bill changes before."""
    existing = _existing(invoice, submission_key) if submission_key else None
    if existing is not None:
        return existing, False
    message = check_plan_request(invoice, months, message, today)

    def after(request: Resolution) -> None:
        record_event(invoice, "plan_requested", ACTOR, reference=request.reference, months=months)
        _to_customer(request, "plan_requested")
        _to_creditor(request, "plan_request_notification")

    return _create(invoice, submission_key, lambda: Resolution(
        kind=Kind.PLAN, status=Status.OPEN, months=months, message=message, amount=invoice.balance, locale=locale,
    ), after)


def decide_plan(request: Resolution, grant: bool, answer: str | None, *, actor: str, today: date) -> Resolution:
    """An agent's decision on a plan asked for beyond the rules, told to the customer. Granted: the
    plan of the months asked for, with the creditor's fee and interest, runs from today like one
    the customer chose on the bill page."""
    if request.kind != Kind.PLAN or request.status != Status.OPEN:
        raise IllegalTransition(f"{request.reference} is not an open plan request")
    invoice = request.invoice
    if not is_payable(invoice):
        raise IllegalTransition(f"invoice {invoice.number} is {invoice.status}; nothing to split")
    request.answer, request.answered_by = (answer or "").strip() or None, actor
    if not grant:
        request.status, request.closed_at = Status.DECLINED, utcnow()
        record_event(invoice, "plan_declined", actor, reference=request.reference)
        _to_customer(request, "plan_declined")
        db.session.flush()
        return request
    offer = plan_offer(invoice, request.months, today)
    request.status, request.amount, request.fee, request.interest = Status.ACTIVE, offer.total, offer.fee, offer.interest
    request.paid_before = invoice.amount_paid
    request.instalments = [Instalment(seq=n, due_date=day, amount=amount)
                           for n, (day, amount) in enumerate(offer.schedule, start=1)]
    _plan_charges(invoice, offer, request, actor)
    record_event(invoice, "plan_granted", actor, reference=request.reference, months=offer.months, total=offer.total)
    _to_customer(request, "plan_accepted")
    db.session.flush()
    return request


def _plan_charges(invoice: Invoice, offer: PlanOffer, plan: Resolution, actor: str) -> None:
    """The plan's fee and interest join the bill as lines, in the customer's language."""
    with force_locale(plan.locale):
        if offer.fee:
            add_charge(invoice, "other_fee", _("Instalment plan fee"), offer.fee, actor=actor, reference=plan.reference)
        if offer.interest:
            add_charge(invoice, "interest", _("Interest for the instalment plan"), offer.interest, actor=actor,
                       reference=plan.reference)


# --- the daily run -----------------------------------------------------------------------------------


@dataclass
class RunReport:
    kept: int = 0
    broken: int = 0
    ended: int = 0
    reminded: int = 0
    resumed: int = 0

    def __str__(self) -> str:
        return (f"{self.kept} kept, {self.broken} broken, {self.ended} ended, "
                f"{self.reminded} day-before e-mails due (each is written once), {self.resumed} holds ended")


def run_due(today_for: Callable[[str], date], *, creditor_id: int | None = None) -> RunReport:
    """Close what has run its course, once a day (`flask resolutions run`; safe to run more often):

    - a promise or plan whose invoice is paid is kept; an invoice closed otherwise ends them;
    - the day before a promised date or an instalment, the customer gets a reminder e-mail;
    - a promise not paid by its date plus the grace days is broken, and so is a plan with an
      instalment unpaid past its date plus the grace days: the customer is told and the process
      resumes (`pause.dunning` no longer pauses);
    - a deferral whose new due date has passed ends (kept when paid);
    - an agent's hold of reminders until a day that has passed ends: reminders may go out again.

    `today_for(country)` gives the local date in the creditor's country."""
    report = RunReport()
    query = (
        select(Resolution).options(selectinload(Resolution.instalments))
        .where(Resolution.status == Status.ACTIVE).order_by(Resolution.id)
    )
    if creditor_id is not None:
        query = query.where(Resolution.creditor_id == creditor_id)
    for resolution in db.session.scalars(query).all():
        invoice = resolution.invoice
        today = today_for(invoice.creditor.country)
        if invoice.is_closed:
            _close(resolution, Status.CANCELLED, "invoice closed")
            report.ended += 1
        elif invoice.balance <= 0:
            _close(resolution, Status.KEPT, "paid")
            report.kept += 1
        elif resolution.kind == Kind.PROMISE:
            _run_promise(resolution, invoice, today, report)
        elif resolution.kind == Kind.PLAN:
            _run_plan(resolution, invoice, today, report)
        elif resolution.kind == Kind.DEFERRAL and today > resolution.new_date:
            _close(resolution, Status.BROKEN, "new due date passed")
            report.ended += 1
    held = select(Invoice).where(Invoice.status == S.ON_HOLD, Invoice.hold_until.is_not(None)).order_by(Invoice.id)
    if creditor_id is not None:
        held = held.where(Invoice.creditor_id == creditor_id)
    for invoice in db.session.scalars(held).all():
        if today_for(invoice.creditor.country) > invoice.hold_until:
            resume(invoice, actor="scheduler", reason="hold ended")
            report.resumed += 1
    db.session.flush()
    return report


def _close(resolution: Resolution, status: str, why: str) -> None:
    resolution.status, resolution.closed_at = status, utcnow()
    record_event(resolution.invoice, f"{resolution.kind}_{status}", "scheduler", reference=resolution.reference,
                 why=why)


def _run_promise(promise: Resolution, invoice: Invoice, today: date, report: RunReport) -> None:
    if today > promise.new_date + timedelta(days=invoice.creditor.grace_days):
        _close(promise, Status.BROKEN, "not paid by the promised date")
        _to_customer(promise, "promise_broken")
        report.broken += 1
    elif promise.new_date - timedelta(days=1) <= today <= promise.new_date:
        _to_customer(promise, "promise_due")
        report.reminded += 1


def _run_plan(plan: Resolution, invoice: Invoice, today: date, report: RunReport) -> None:
    missed = missed_instalment(plan, invoice, today)
    if missed is not None:
        _close(plan, Status.BROKEN, f"instalment {missed.instalment.seq} not paid")
        _to_customer(plan, "plan_broken")
        report.broken += 1
        return
    upcoming = next_instalment(plan, invoice, today)
    if upcoming is not None and upcoming.instalment.due_date - timedelta(days=1) <= today <= upcoming.instalment.due_date:
        _to_customer(plan, "instalment_due", key_suffix=f":{upcoming.instalment.seq}", seq=upcoming.instalment.seq,
                     left=upcoming.left)
        report.reminded += 1

