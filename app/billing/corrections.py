"""Changing what an invoice asks for after it was issued: credit notes and line corrections.

Both are how an agent answers a dispute the creditor agrees with (wholly or in part), and a
credit note is also a goodwill gesture. Each one records an invoice event, moves the status the
amounts give (a bill credited down to what was paid is paid), and sends `total_changed`: when
the customer has now paid more than the bill asks, payments marks the difference as owed back
on the newest payments (`Payment.refund_due`), and the inbox shows it until it is refunded.

Plain functions: they add and flush; the caller locks the invoice (`payments.services.lock_invoice`)
and commits. Amounts are integer minor units; VAT of a credit follows the line's rate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import func, select

from app.billing.models import CreditNote, CreditNoteLine, Invoice, InvoiceLine, InvoiceStatus
from app.billing.schemas import line_amounts
from app.billing.services import PAUSED, payable_status, record_event, total_changed, transition
from app.errors import IllegalTransition, InvalidData
from app.extensions import db
from app.models import utcnow
from app.money import round_half_up

REASON_MAX = 300
MAX_QUANTITY = Decimal("1000000000")


@dataclass(frozen=True)
class LineCredit:
    """Take `amount` (gross, minor units) off one invoice line."""

    line_id: int
    amount: int


@dataclass(frozen=True)
class LineCorrection:
    """Replace a line's quantity and unit price (net, minor units): a wrong meter reading, a wrong price."""

    line_id: int
    quantity: Decimal
    unit_price: int


@dataclass(frozen=True)
class Credited:
    """What credit notes took off one line so far."""

    net: int = 0
    vat: int = 0
    gross: int = 0


def credited_by_line(invoice_id: int) -> dict[int, Credited]:
    """Per invoice line, the sums its credit note lines took off."""
    rows = db.session.execute(
        select(CreditNoteLine.invoice_line_id, func.sum(CreditNoteLine.net), func.sum(CreditNoteLine.vat),
               func.sum(CreditNoteLine.gross))
        .join(CreditNote, CreditNoteLine.credit_note_id == CreditNote.id)
        .where(CreditNote.invoice_id == invoice_id, CreditNoteLine.invoice_line_id.is_not(None))
        .group_by(CreditNoteLine.invoice_line_id)
    )
    return {line_id: Credited(int(net), int(vat), int(gross))
            for line_id, net, vat, gross in rows if line_id is not None}  # none is: see the WHERE


def credit_notes(invoice_id: int) -> list[CreditNote]:
    return list(db.session.scalars(
        select(CreditNote).where(CreditNote.invoice_id == invoice_id).order_by(CreditNote.id)))


def creditable(invoice: Invoice) -> dict[int, int]:
    """Per line, the gross still open to a credit."""
    taken = credited_by_line(invoice.id)
    return {line.id: line.gross - taken.get(line.id, Credited()).gross for line in invoice.lines}


def _check_open(invoice: Invoice) -> None:
    if invoice.is_closed:
        raise IllegalTransition(f"invoice {invoice.number} is {invoice.status}; its amounts cannot change")


def _check_reason(reason: str | None) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise InvalidData({"reason": "required"})
    if len(reason) > REASON_MAX:
        raise InvalidData({"reason": "too_long"})
    return reason


def issue_credit_note(invoice: Invoice, credits: Sequence[LineCredit], *, reason: str, actor: str,
                      reference: str | None = None) -> CreditNote:
    """A credit note of these line credits. Every problem at once, as InvalidData keyed
    `credit-<line id>`; nothing changes then."""
    _check_open(invoice)
    reason = _check_reason(reason)
    lines = {line.id: line for line in invoice.lines}
    taken = credited_by_line(invoice.id)
    errors, chosen = {}, []
    for credit in credits:
        line = lines.get(credit.line_id)
        if line is None:
            errors[f"credit-{credit.line_id}"] = "unknown_line"
            continue
        if not isinstance(credit.amount, int) or isinstance(credit.amount, bool) or credit.amount <= 0:
            errors[f"credit-{line.id}"] = "not_positive"
            continue
        before = taken.get(line.id, Credited())
        if credit.amount > line.gross - before.gross:
            errors[f"credit-{line.id}"] = "more_than_line"
            continue
        chosen.append((line, credit.amount, before))
    if not chosen and not errors:
        errors["credits"] = "none"
    if errors:
        raise InvalidData(errors)
    note = CreditNote(
        creditor_id=invoice.creditor_id, invoice_id=invoice.id, number=_next_number(invoice), reason=reason,
        reference=reference, actor=actor, created_at=utcnow(), subtotal=0, vat_total=0, total=0,
    )
    for line, gross, before in chosen:
        if gross == line.gross - before.gross:  # the rest of the line: exactly its remaining net and VAT
            net, vat = line.net - before.net, line.vat - before.vat
        else:
            net = round_half_up(Decimal(gross) * 10000 / (10000 + line.vat_rate))
            vat = gross - net
        note.lines.append(CreditNoteLine(invoice_line_id=line.id, description=line.description[:300],
                                         vat_rate=line.vat_rate, net=net, vat=vat, gross=gross))
        note.subtotal, note.vat_total, note.total = note.subtotal + net, note.vat_total + vat, note.total + gross
    db.session.add(note)
    invoice.subtotal -= note.subtotal
    invoice.vat_total -= note.vat_total
    invoice.total -= note.total
    invoice.credited += note.total
    db.session.flush()
    record_event(invoice, "credit_note_issued", actor, number=note.number, amount=note.total,
                 currency=invoice.currency, reference=reference, reason=reason)
    amounts_changed(invoice, actor=actor, reason="credit note")
    return note


def _next_number(invoice: Invoice) -> str:
    count = db.session.scalar(
        select(func.count()).select_from(CreditNote).where(CreditNote.invoice_id == invoice.id)) or 0
    return f"{invoice.number}-CN{count + 1}"


def correct_lines(invoice: Invoice, corrections: Sequence[LineCorrection], *, reason: str, actor: str,
                  reference: str | None = None) -> list[InvoiceLine]:
    """New quantities and unit prices for some lines; the invoice's totals follow. A line that a
    credit note already credited is not corrected (the two would contradict each other)."""
    _check_open(invoice)
    reason = _check_reason(reason)
    lines = {line.id: line for line in invoice.lines}
    taken = credited_by_line(invoice.id)
    errors, changes = {}, []
    for correction in corrections:
        line = lines.get(correction.line_id)
        key = f"line-{correction.line_id}"
        if line is None:
            errors[key] = "unknown_line"
        elif line.id in taken:
            errors[key] = "credited"
        elif not (isinstance(correction.quantity, Decimal) and 0 <= correction.quantity < MAX_QUANTITY
                  and correction.quantity == correction.quantity.quantize(Decimal("0.001"))):
            errors[key] = "quantity"
        elif not isinstance(correction.unit_price, int) or isinstance(correction.unit_price, bool) \
                or correction.unit_price < 0:
            errors[key] = "unit_price"
        elif (correction.quantity, correction.unit_price) != (line.quantity, line.unit_price):
            changes.append((line, correction))
    if not changes and not errors:
        errors["corrections"] = "none"
    if errors:
        raise InvalidData(errors)
    for line, correction in changes:
        net, vat, gross = line_amounts(correction.quantity, correction.unit_price, line.vat_rate)
        before = {"quantity": quantity_text(line.quantity), "unit_price": line.unit_price, "gross": line.gross}
        invoice.subtotal += net - line.net
        invoice.vat_total += vat - line.vat
        invoice.total += gross - line.gross
        line.quantity, line.unit_price, line.net, line.vat, line.gross = (
            correction.quantity, correction.unit_price, net, vat, gross)
        record_event(invoice, "line_corrected", actor, line_id=line.id, description=line.description,
                     before=before, after={"quantity": quantity_text(line.quantity), "unit_price": line.unit_price,
                                           "gross": gross}, currency=invoice.currency, reference=reference,
                     reason=reason)
    db.session.flush()
    amounts_changed(invoice, actor=actor, reason="lines corrected")
    return [line for line, _correction in changes]


def quantity_text(value: Decimal) -> str:
    """A quantity for the timeline, the same on both databases: '2', '2.5', '10'."""
    return format(Decimal(value).quantize(Decimal("0.001")).normalize(), "f")


def amounts_changed(invoice: Invoice, *, actor: str, reason: str) -> None:
    """After the invoice's total moved: the status the amounts give (a pause ends only when the
    bill is paid, as with a payment); payments hears `total_changed` and owes back what the
    customer paid beyond the new total."""
    target = payable_status(invoice)
    if invoice.status in PAUSED and target != InvoiceStatus.PAID:
        target = invoice.status
    if target != invoice.status:
        transition(invoice, target, actor=actor, reason=reason)
    db.session.flush()
    total_changed.send(invoice, actor=actor)
