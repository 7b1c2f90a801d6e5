"""Instalment plans: the customer accepts an offer the rules allow, or asks an agent for another
(up to 24 months), who grants or declines it. The arithmetic is in `resolutions.instalments`."""

from __future__ import annotations

from datetime import date

from flask_babel import force_locale
from flask_babel import gettext as _

from app.billing.models import Invoice
from app.billing.services import add_charge, record_event
from app.errors import IllegalTransition, InvalidData
from app.extensions import db
from app.models import utcnow
from app.resolutions.instalments import PlanOffer, plan_offer, plan_offers
from app.resolutions.models import Instalment, Kind, Resolution, Status
from app.resolutions.services import (
    ACTOR,
    MESSAGE_MAX,
    create_once,
    is_payable,
    require,
    submitted_before,
    to_creditor,
    to_customer,
)


def choose_offer(invoice: Invoice, months: int | None, today: date) -> PlanOffer:
    require(invoice, "plan", today)
    offer = next((o for o in plan_offers(invoice, today) if o.months == months), None)
    if offer is None:
        raise InvalidData({"months": "choose"})
    return offer


def accept_plan(invoice: Invoice, months: int | None, *, locale: str, submission_key: str,
                today: date) -> tuple[Resolution, bool]:
    """The plan the customer saw: its fee and interest join the bill as lines, each instalment is
    payable from the bill page, reminders pause while it runs."""
    existing = submitted_before(invoice, submission_key) if submission_key else None
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
        to_customer(plan, "plan_accepted")

    return create_once(invoice, submission_key, build, after)


PLAN_REQUEST_MAX_MONTHS = 24


def check_plan_request(invoice: Invoice, months: int | None, message: str | None, today: date) -> str:
    """The customer's words, cleaned; InvalidData with every problem of the request at once."""
    require(invoice, "plan_request", today)
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
    existing = submitted_before(invoice, submission_key) if submission_key else None
    if existing is not None:
        return existing, False
    message = check_plan_request(invoice, months, message, today)

    def after(request: Resolution) -> None:
        record_event(invoice, "plan_requested", ACTOR, reference=request.reference, months=months)
        to_customer(request, "plan_requested")
        to_creditor(request, "plan_request_notification")

    return create_once(invoice, submission_key, lambda: Resolution(
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
        to_customer(request, "plan_declined")
        db.session.flush()
        return request
    offer = plan_offer(invoice, request.months, today)
    request.status = Status.ACTIVE
    request.amount, request.fee, request.interest = offer.total, offer.fee, offer.interest
    request.paid_before = invoice.amount_paid
    request.instalments = [Instalment(seq=n, due_date=day, amount=amount)
                           for n, (day, amount) in enumerate(offer.schedule, start=1)]
    _plan_charges(invoice, offer, request, actor)
    record_event(invoice, "plan_granted", actor, reference=request.reference, months=offer.months, total=offer.total)
    to_customer(request, "plan_accepted")
    db.session.flush()
    return request


def _plan_charges(invoice: Invoice, offer: PlanOffer, plan: Resolution, actor: str) -> None:
    """The plan's fee and interest join the bill as lines: their words in the customer's language as
    written, and in the reader's wherever they are shown (`text_key`, billing.texts)."""
    with force_locale(plan.locale):
        if offer.fee:
            add_charge(invoice, "other_fee", _("Instalment plan fee"), offer.fee, actor=actor, text_key="plan_fee",
                       reference=plan.reference)
        if offer.interest:
            add_charge(invoice, "interest", _("Interest for the instalment plan"), offer.interest, actor=actor,
                       text_key="plan_interest", reference=plan.reference)
