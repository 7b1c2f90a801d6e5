"""More time: a new due date, granted at once within the creditor's rules (with its fee), else
asked of an agent, who grants or declines it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import select

from app.billing.models import Invoice
from app.billing.services import add_charge, move_due_date, record_event
from app.errors import IllegalTransition, InvalidData
from app.extensions import db
from app.models import utcnow
from app.resolutions.models import Kind, Resolution, Status
from app.resolutions.services import ACTOR, create_once, is_payable, require, submitted_before, to_creditor, to_customer

DEFERRAL_REQUEST_MAX_DAYS = 90  # beyond the rules a customer may ask an agent for up to three months


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
    require(invoice, "deferral", today)
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
    existing = submitted_before(invoice, submission_key) if submission_key else None
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
            to_customer(deferral, "deferral_granted")
        else:
            record_event(invoice, "deferral_requested", ACTOR, reference=deferral.reference,
                         date=terms.new_date.isoformat(), why=terms.why_not)
            to_customer(deferral, "deferral_requested")
            to_creditor(deferral, "deferral_request_notification")

    return create_once(invoice, submission_key, build, after)


def _grant(deferral: Resolution, *, actor: str) -> None:
    invoice = deferral.invoice
    deferral.status = Status.ACTIVE
    deferral.old_date = invoice.due_date
    move_due_date(invoice, deferral.new_date, actor=actor, reason=f"deferral {deferral.reference}")
    if deferral.fee:
        with force_locale(deferral.locale):
            add_charge(invoice, "other_fee", _("Fee for a later due date"), deferral.fee, actor=actor,
                       text_key="deferral_fee", reference=deferral.reference)
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
        to_customer(deferral, "deferral_granted")
    else:
        deferral.status, deferral.closed_at = Status.DECLINED, utcnow()
        record_event(invoice, "deferral_declined", actor, reference=deferral.reference)
        to_customer(deferral, "deferral_declined")
    db.session.flush()
    return deferral
