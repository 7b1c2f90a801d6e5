"""Changing what is owed after an invoice was issued: credit notes, and nothing else.

An issued invoice is never changed: its lines, totals, number and date stay as they were sent. A
dispute upheld (wholly or in part), a goodwill gesture and a correction of a line (a wrong meter
reading, a wrong price) each issue a **credit note**: its own number in its creditor's series
(`CreditNoteSeries`), the invoice it corrects, lines crediting (part of) invoice lines with their VAT,
and a PDF. `Invoice.subtotal`, `vat_total` and `total` are what the bill asks for after its credit
notes; `Invoice.credited` keeps their sum, so the issued invoice reads `total + credited`.

Each one records an invoice event, moves the status the amounts give (a bill credited down to what
was paid is paid), and sends `total_changed`: when the customer has now paid more than the bill
asks, payments marks the difference as owed back on the newest payments (`Payment.refund_due`), and
the inbox shows it until it is refunded. A correction upwards is not a credit note: the creditor
bills the difference on a new invoice.

Plain functions: they add and flush; the caller locks the invoice (`payments.services.lock_invoice`)
and commits. Amounts are integer minor units; VAT of a credit follows the line's rate.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import func, select

from app.billing.models import CreditNote, CreditNoteLine, CreditNoteSeries, Invoice, InvoiceLine, InvoiceStatus
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
        if credit.amount == line.gross - before.gross:  # the rest of the line: exactly its remaining net and VAT
            net, vat = line.net - before.net, line.vat - before.vat
        else:
            net = round_half_up(Decimal(credit.amount) * 10000 / (10000 + line.vat_rate))
            vat = credit.amount - net
        chosen.append((line, net, vat, credit.amount))
    if not chosen and not errors:
        errors["credits"] = "none"
    if errors:
        raise InvalidData(errors)
    return _issue(invoice, chosen, reason=reason, actor=actor, reference=reference)


def _issue(invoice: Invoice, chosen: Sequence[tuple[InvoiceLine, int, int, int]], *, reason: str, actor: str,
           reference: str | None) -> CreditNote:
    """The credit note of (line, net, vat, gross) credits, checked by the caller; the bill's amounts follow."""
    number = next_number(invoice.creditor_id) if invoice.livemode else test_number()
    note = CreditNote(
        creditor_id=invoice.creditor_id, invoice_id=invoice.id, number=number, livemode=invoice.livemode,
        reason=reason, reference=reference, actor=actor, created_at=utcnow(), subtotal=0, vat_total=0, total=0,
    )
    for line, net, vat, gross in chosen:
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


def credit_by_positions(invoice: Invoice, positions: Sequence[tuple[int, int]] | None, *, reason: str, actor: str,
                        external_ref: str | None = None) -> tuple[CreditNote, bool]:
    """A creditor's credit note through the API: (line position, gross amount) pairs, or everything
    still open to a credit when None. Made once per `external_ref`: asked again, the note made
    before and False. Problems are InvalidData keyed `lines.<index>.<field>`; nothing changes then."""
    if external_ref is not None:
        before = db.session.scalar(select(CreditNote).where(
            CreditNote.creditor_id == invoice.creditor_id, CreditNote.livemode == invoice.livemode,
            CreditNote.external_ref == external_ref))
        if before is not None:
            if before.invoice_id != invoice.id:
                raise InvalidData({"id": "used_for_another_invoice"})
            return before, False
    by_position = {line.position: line for line in invoice.lines}
    if positions is None:
        credits = [LineCredit(line_id, amount) for line_id, amount in creditable(invoice).items() if amount > 0]
        if not credits:
            raise InvalidData({"lines": "nothing_left_to_credit"})
    else:
        errors, credits, seen = {}, [], set()
        for index, (position, amount) in enumerate(positions):
            line = by_position.get(position)
            if line is None:
                errors[f"lines.{index}.position"] = "unknown_line"
            elif position in seen:
                errors[f"lines.{index}.position"] = "twice"
            else:
                seen.add(position)
                credits.append(LineCredit(line.id, amount))
        if errors:
            raise InvalidData(errors)
    try:
        note = issue_credit_note(invoice, credits, reason=reason, actor=actor)
    except InvalidData as exc:  # keyed by line id: say it by the index the creditor sent
        index_of = {credit.line_id: index for index, credit in enumerate(credits)}
        raise InvalidData({
            (f"lines.{index_of[int(key.removeprefix('credit-'))]}.amount"
             if key.startswith("credit-") and positions is not None else key): problem
            for key, problem in exc.errors.items()}) from exc
    note.external_ref = external_ref
    db.session.flush()
    return note, True


#: A credit note's number: this prefix and its place in the creditor's series, six digits or more.
NUMBER_PREFIX = "CN-"


def next_number(creditor_id: int) -> str:
    """The next number of the creditor's credit note series: one upsert that takes it (and holds the
    series' row until the transaction ends, so two notes never share a number and a rolled-back note
    leaves no gap)."""
    from sqlalchemy.dialects import postgresql, sqlite

    connection = db.session.connection()
    insert = (postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert)(CreditNoteSeries)
    taken = connection.scalar(
        insert.values(creditor_id=creditor_id, last_number=1)
        .on_conflict_do_update(index_elements=["creditor_id"],
                               set_={"last_number": CreditNoteSeries.__table__.c.last_number + 1})
        .returning(CreditNoteSeries.__table__.c.last_number))
    return f"{NUMBER_PREFIX}{taken:06d}"


def test_number() -> str:
    """A test bill's credit note's number: random, outside the creditor's series (which test notes
    must not break), and saying what it is."""
    return f"{NUMBER_PREFIX}TEST-{secrets.token_hex(5).upper()}"


def correct_lines(invoice: Invoice, corrections: Sequence[LineCorrection], *, reason: str, actor: str,
                  reference: str | None = None) -> CreditNote:
    """Lines that should have been billed at a lower quantity or unit price: one credit note takes
    off, per line, the difference between what is left of it after earlier credits and what the
    corrected quantity and price come to (net and VAT exactly). The lines stay as issued; the
    timeline keeps each correction's before and after. A correction upwards is refused
    (`higher`): the difference is billed on a new invoice."""
    _check_open(invoice)
    reason = _check_reason(reason)
    lines = {line.id: line for line in invoice.lines}
    taken = credited_by_line(invoice.id)
    errors, chosen, changes = {}, [], []
    for correction in corrections:
        line = lines.get(correction.line_id)
        key = f"line-{correction.line_id}"
        if line is None:
            errors[key] = "unknown_line"
        elif not (isinstance(correction.quantity, Decimal) and 0 <= correction.quantity < MAX_QUANTITY
                  and correction.quantity == correction.quantity.quantize(Decimal("0.001"))):
            errors[key] = "quantity"
        elif not isinstance(correction.unit_price, int) or isinstance(correction.unit_price, bool) \
                or correction.unit_price < 0:
            errors[key] = "unit_price"
        elif (correction.quantity, correction.unit_price) != (line.quantity, line.unit_price):
            net, vat, gross = line_amounts(correction.quantity, correction.unit_price, line.vat_rate)
            before = taken.get(line.id, Credited())
            left = (line.net - before.net, line.vat - before.vat, line.gross - before.gross)
            if gross > left[2] or (gross == left[2] and (net, vat) != left[:2]):
                errors[key] = "higher"
            elif gross < left[2]:
                chosen.append((line, left[0] - net, left[1] - vat, left[2] - gross))
                changes.append((line, correction, gross))
    if not chosen and not errors:
        errors["corrections"] = "none"
    if errors:
        raise InvalidData(errors)
    for line, correction, gross in changes:
        record_event(invoice, "line_corrected", actor, line_id=line.id, description=line.description,
                     before={"quantity": quantity_text(line.quantity), "unit_price": line.unit_price,
                             "gross": line.gross},
                     after={"quantity": quantity_text(correction.quantity), "unit_price": correction.unit_price,
                            "gross": gross},
                     currency=invoice.currency, reference=reference, reason=reason)
    return _issue(invoice, chosen, reason=reason, actor=actor, reference=reference)


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
