"""Disputes: of the whole bill or some lines, with a reason, a message and proof, also of a bill
already paid; the creditor's answer (rejected, upheld with a credit note, or partly with credits and
corrected lines, which are credit notes too: an issued invoice is never changed)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from flask_babel import force_locale
from flask_babel import gettext as _

from app.billing.corrections import LineCorrection, LineCredit, correct_lines, creditable, issue_credit_note
from app.billing.models import Invoice, InvoiceStatus
from app.billing.services import cancel_invoice, record_event, release, transition
from app.errors import IllegalTransition, InvalidData
from app.extensions import db
from app.models import utcnow
from app.resolutions.models import DISPUTE_REASONS, Kind, Resolution, Status
from app.resolutions.services import (
    ACTOR,
    MESSAGE_MAX,
    create_once,
    live_resolutions,
    require,
    submitted_before,
    to_creditor,
    to_customer,
)
from app.support.attachments import Upload, store_attachment


def dispute_amount(invoice: Invoice, line_ids: Sequence[int] | None) -> int:
    """What a dispute is about: on a bill still owed, what it holds back (the chosen lines' gross, at
    most the balance, or the balance); on a paid bill, what could be credited (the chosen lines' gross
    still open to a credit, or the bill's total)."""
    if invoice.status == InvoiceStatus.PAID:
        if not line_ids:
            return invoice.total
        left = creditable(invoice)
        return sum(left.get(line_id, 0) for line_id in set(line_ids))
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
    existing = submitted_before(invoice, submission_key) if submission_key else None
    if existing is not None:
        return existing, False
    require(invoice, "dispute", today)
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
        # A paid bill stays paid: nothing is owed to hold back, and an upheld answer owes money back.
        if invoice.status not in (InvoiceStatus.DISPUTED, InvoiceStatus.PAID):
            transition(invoice, InvoiceStatus.DISPUTED, actor=ACTOR, reason="dispute")
        record_event(invoice, "dispute_opened", ACTOR, reference=dispute.reference, reason=reason,
                     amount=dispute.amount, lines=dispute.line_ids)
        to_customer(dispute, "dispute_received")
        to_creditor(dispute, "dispute_notification")

    return create_once(invoice, submission_key, build, after)


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
    others = _other_disputes(dispute)
    if outcome == Status.UPHELD and not (credits or corrections):
        if cancels_the_bill(dispute, outcome, credits, corrections, others=others):
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
    if invoice.status == InvoiceStatus.DISPUTED and not others:
        release(invoice, actor=actor, reason=f"dispute {outcome}")
    return _dispute_answered(dispute, outcome, actor)


def _other_disputes(dispute: Resolution) -> list[Resolution]:
    return [r for r in live_resolutions(dispute.invoice_id) if r.kind == Kind.DISPUTE and r.id != dispute.id]


def cancels_the_bill(dispute: Resolution, outcome: str, credits: Sequence[LineCredit] = (),
                     corrections: Sequence[LineCorrection] = (), *, others: list[Resolution] | None = None) -> bool:
    """Whether this decision cancels the bill (upheld, the whole bill disputed, nothing paid, no other
    dispute open, no credits or corrections given), which also stops its payments at their providers:
    the back office's preview tells it rather than trying it."""
    if others is None:
        others = _other_disputes(dispute)
    return (outcome == Status.UPHELD and not (credits or corrections) and not dispute.line_ids
            and dispute.invoice.amount_paid == 0 and not others)


def _credits_for(dispute: Resolution) -> list[LineCredit]:
    """What upholding a dispute takes off: the disputed lines' gross still open to a credit, or,
    for the whole bill, every line's (so that the customer owes nothing and gets back what they paid)."""
    open_to_credit = creditable(dispute.invoice)
    chosen = dispute.line_ids or list(open_to_credit)
    return [LineCredit(line_id, open_to_credit[line_id]) for line_id in chosen if open_to_credit.get(line_id, 0) > 0]


def _dispute_answered(dispute: Resolution, outcome: str, actor: str) -> Resolution:
    record_event(dispute.invoice, "dispute_answered", actor, reference=dispute.reference, outcome=outcome)
    to_customer(dispute, "dispute_answered")
    db.session.flush()
    return dispute
