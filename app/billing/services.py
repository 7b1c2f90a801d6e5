"""Invoices: import (idempotent), the state machine, payments recorded, events.

Every status change goes through `transition()`, which checks the move is allowed and
records an event. Services add and flush; the caller commits.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from blinker import signal
from sqlalchemy import ColumnClause, func, literal_column, select
from sqlalchemy.exc import IntegrityError

from app.billing.models import (
    FEE_KINDS,
    REMINDER_CHANNELS,
    Customer,
    Invoice,
    InvoiceEvent,
    InvoiceLine,
    InvoiceStatus,
    Reminder,
)
from app.billing.schemas import LATER_CUSTOMER_FIELDS, LATER_INVOICE_FIELDS, CustomerIn, InvoiceIn, parse_invoice
from app.billing.texts import split as split_text
from app.core.bulk import in_ids, insert_rows, update_rows
from app.core.dates import local_today
from app.creditors.models import Creditor
from app.creditors.references import make_reference, reference_base
from app.errors import Conflict, IllegalTransition, InvalidData
from app.extensions import db
from app.models import utcnow

# Which status may follow which. Anything else raises IllegalTransition.
TRANSITIONS: dict[str, frozenset[str]] = {
    InvoiceStatus.OPEN: frozenset({
        InvoiceStatus.PARTIALLY_PAID, InvoiceStatus.PAID, InvoiceStatus.DISPUTED, InvoiceStatus.ON_HOLD,
        InvoiceStatus.IN_COLLECTION, InvoiceStatus.CANCELLED, InvoiceStatus.WRITTEN_OFF,
    }),
    InvoiceStatus.PARTIALLY_PAID: frozenset({
        InvoiceStatus.OPEN, InvoiceStatus.PAID, InvoiceStatus.DISPUTED, InvoiceStatus.ON_HOLD,
        InvoiceStatus.IN_COLLECTION, InvoiceStatus.WRITTEN_OFF,
    }),
    InvoiceStatus.DISPUTED: frozenset({
        InvoiceStatus.OPEN, InvoiceStatus.PARTIALLY_PAID, InvoiceStatus.PAID, InvoiceStatus.ON_HOLD,
        InvoiceStatus.CANCELLED, InvoiceStatus.WRITTEN_OFF,
    }),
    InvoiceStatus.ON_HOLD: frozenset({
        InvoiceStatus.OPEN, InvoiceStatus.PARTIALLY_PAID, InvoiceStatus.PAID, InvoiceStatus.DISPUTED,
        InvoiceStatus.CANCELLED, InvoiceStatus.WRITTEN_OFF,
    }),
    InvoiceStatus.IN_COLLECTION: frozenset({
        InvoiceStatus.OPEN, InvoiceStatus.PARTIALLY_PAID, InvoiceStatus.PAID, InvoiceStatus.WRITTEN_OFF,
    }),
    # A refund or a chargeback reopens a paid invoice.
    InvoiceStatus.PAID: frozenset({InvoiceStatus.OPEN, InvoiceStatus.PARTIALLY_PAID}),
    InvoiceStatus.CANCELLED: frozenset(),
    InvoiceStatus.WRITTEN_OFF: frozenset(),
}
# Statuses in which a payment does not change the status unless it clears the balance.
#: Sent (sender: the invoice; `actor`) after an invoice's total moved: a credit note, corrected
#: lines. Payments hears it and owes back what was paid beyond the new total.
total_changed = signal("invoice-total-changed")
#: Sent (sender: the invoice; `actor`) when an invoice is closed (cancelled, written off), in its
#: transaction. Payments hears it and stops the invoice's open payment attempts, at the provider too.
invoice_closed = signal("invoice-closed")
#: Sent (sender: the customer; `fields`, the names in CONTACT_FIELDS that changed) after a customer's name,
#: contact details or organisation number changed, in its transaction. Debt collection hears it and
#: tells the partner of an open case; events tells the creditor (`contact_details.changed`).
contact_changed = signal("customer-contact-changed")
#: Sent (sender: the new invoice; `payload`, the import's payload as given; `actor`) when an import
#: created an invoice, in its transaction. Dunning hears it and applies the payload's `dunning_plan`
#: and `dunning_excluded` (raising InvalidData, named by those fields, for a plan it does not know).
invoice_imported = signal("invoice-imported")
#: Sent (sender: the creditor; `currency`) before an import creates an invoice in a currency other than
#: the one of the creditor's bank account: a receiver answers True when the creditor can take payments in
#: it otherwise (payments: a configured provider offers a method for it). None answering True: refused.
currency_receivable = signal("invoice-currency-receivable")

#: Sent (sender: the new timeline entry, its invoice set) by `record_event`, in its transaction. Events
#: (app.events) hears it and records the creditor's event the entry is, if it is one.
event_recorded = signal("invoice-event-recorded")
#: What a collection partner needs to find and reach the customer: a change is news to it.
CONTACT_FIELDS = ("name", "email", "phone", "address_line1", "address_line2", "postcode", "city", "country",
                  "org_number")


def contact_of(customer: Customer) -> tuple:
    return tuple(getattr(customer, name) for name in CONTACT_FIELDS)


def changed_fields(before: tuple, after: tuple) -> list[str]:
    """The names of the CONTACT_FIELDS whose values differ between two `contact_of`."""
    return [name for name, old, new in zip(CONTACT_FIELDS, before, after, strict=True) if old != new]

PAUSED = (InvoiceStatus.DISPUTED, InvoiceStatus.ON_HOLD, InvoiceStatus.IN_COLLECTION)
#: A bill the customer still owes (its page is open to them): neither paid nor closed.
OWING = (InvoiceStatus.OPEN, InvoiceStatus.PARTIALLY_PAID, *PAUSED)
#: The same as SQL literals, for the precompiled reads (`app.readpath`: they take no bound lists).
OWING_SQL: tuple[ColumnClause[Any], ...] = tuple(literal_column(f"'{status}'") for status in OWING)


def record_event(invoice: Invoice, kind: str, actor: str, **data) -> InvoiceEvent:
    event = InvoiceEvent(invoice=invoice, kind=kind, actor=actor, data=data, created_at=utcnow())
    db.session.add(event)
    event_recorded.send(event)
    return event


def can_transition(current: str, new: str) -> bool:
    return new in TRANSITIONS.get(current, frozenset())


def transition(invoice: Invoice, new: str, *, actor: str, reason: str | None = None) -> InvoiceEvent:
    """Move the invoice to `new`, or raise IllegalTransition. Records a status_changed event."""
    if new not in TRANSITIONS:
        raise IllegalTransition(f"unknown status {new!r}")
    old = invoice.status
    if not can_transition(old, new):
        raise IllegalTransition(f"invoice {invoice.number}: {old} -> {new} is not allowed")
    invoice.status = new
    event = record_event(invoice, "status_changed", actor, **{"from": old, "to": new, "reason": reason})
    db.session.flush()
    if new in InvoiceStatus.CLOSED:
        invoice_closed.send(invoice, actor=actor)
    return event


def payable_status(invoice: Invoice) -> str:
    """The status that the amounts alone give: open, partially paid or paid."""
    if invoice.balance <= 0:
        return InvoiceStatus.PAID
    return InvoiceStatus.PARTIALLY_PAID if invoice.amount_paid > 0 else InvoiceStatus.OPEN


def record_payment(
    invoice: Invoice, amount: int, *, actor: str, paid_on: date, method: str, reference: str | None = None
) -> InvoiceEvent:
    """Add a payment received to the invoice and move its status accordingly.

    Callers that may race (webhooks, imports) lock the invoice row first
    (`select(Invoice).with_for_update()`)."""
    if not isinstance(amount, int) or amount <= 0:
        raise InvalidData({"amount": "a positive amount in minor units"})
    if invoice.is_closed:
        raise IllegalTransition(f"invoice {invoice.number} is {invoice.status}; it takes no payments")
    invoice.amount_paid += amount
    event = record_event(
        invoice, "payment_recorded", actor,
        amount=amount, currency=invoice.currency, paid_on=paid_on.isoformat(), method=method, reference=reference,
    )
    target = payable_status(invoice)
    if invoice.status in PAUSED and target != InvoiceStatus.PAID:
        target = invoice.status
    if target != invoice.status:
        transition(invoice, target, actor=actor, reason="payment")
    db.session.flush()
    return event


def cancel_invoice(invoice: Invoice, *, actor: str, reason: str | None = None) -> InvoiceEvent:
    if invoice.amount_paid > 0:
        raise IllegalTransition(f"invoice {invoice.number} has payments; refund them before cancelling")
    return transition(invoice, InvoiceStatus.CANCELLED, actor=actor, reason=reason)


def release(invoice: Invoice, *, actor: str, reason: str | None = None) -> InvoiceEvent:
    """End a dispute, hold or collection: back to the status the amounts give."""
    return transition(invoice, payable_status(invoice), actor=actor, reason=reason)


HOLDABLE = (InvoiceStatus.OPEN, InvoiceStatus.PARTIALLY_PAID)


def hold(invoice: Invoice, *, until: date | None, actor: str, reason: str) -> InvoiceEvent:
    """An agent pauses reminders (and the hand-off): status on_hold, until a day or until resumed.
    Only a bill that is simply owed can be held; a disputed one or one in collection is paused already."""
    if invoice.status not in HOLDABLE:
        raise IllegalTransition(f"invoice {invoice.number} is {invoice.status}; only an open bill can be held")
    if until is not None and until < invoice.issue_date:
        raise InvalidData({"until": "before the issue date"})
    transition(invoice, InvoiceStatus.ON_HOLD, actor=actor, reason=reason)
    invoice.hold_until = until
    event = record_event(invoice, "reminders_paused", actor, until=until.isoformat() if until else None,
                         reason=reason)
    db.session.flush()
    return event


def resume(invoice: Invoice, *, actor: str, reason: str) -> InvoiceEvent:
    """End an agent's hold: back to the status the amounts give, reminders may go out again."""
    if invoice.status != InvoiceStatus.ON_HOLD:
        raise IllegalTransition(f"invoice {invoice.number} is {invoice.status}, not on hold")
    invoice.hold_until = None
    release(invoice, actor=actor, reason=reason)
    event = record_event(invoice, "reminders_resumed", actor, reason=reason)
    db.session.flush()
    return event


def add_charge(invoice: Invoice, kind: str, description: str, amount: int, *, actor: str,
               text_key: str | None = None, **data) -> InvoiceLine:
    """Add a fee or interest line the customer agreed to (a deferral fee, an instalment plan's fee
    or interest): VAT-free, one unit, appended after the last line; the totals grow with it. `text_key`:
    the portal's words for it (`billing.texts.PORTAL_LINE_TEXTS`), shown in the reader's language."""
    if kind not in FEE_KINDS:
        raise InvalidData({"kind": f"one of {', '.join(FEE_KINDS)}"})
    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        raise InvalidData({"amount": "a positive amount in minor units"})
    if invoice.is_closed:
        raise IllegalTransition(f"invoice {invoice.number} is {invoice.status}; it takes no charges")
    position = max((line.position for line in invoice.lines), default=0) + 1
    line = InvoiceLine(
        position=position, kind=kind, description=description[:300], quantity=Decimal(1), unit_price=amount,
        vat_rate=0, net=amount, vat=0, gross=amount, text_key=text_key,
    )
    invoice.lines.append(line)
    invoice.subtotal += amount
    invoice.total += amount
    # A paid invoice cannot get a charge from self-service (nothing is owed), but keep the rule whole.
    if invoice.status == InvoiceStatus.PAID:
        transition(invoice, payable_status(invoice), actor=actor, reason="charge")
    record_event(invoice, "charge_added", actor, line_kind=kind, amount=amount, currency=invoice.currency, **data)
    db.session.flush()
    return line


@dataclass(frozen=True)
class Charge:
    """One fee or interest line for `add_charges`."""

    invoice_id: int
    kind: str
    description: str
    amount: int
    data: dict = field(default_factory=dict)
    text_key: str | None = None  # the portal's words for it, shown in the reader's language (billing.texts)


def add_charges(charges: Sequence[Charge], *, actor: str, now: datetime | None = None) -> int:
    """`add_charge` for many invoices at once, set-wise (a few statements for any number of lines),
    for a run that decides thousands of bills in a batch: the same lines (VAT-free, one unit, after
    the invoice's last line), the same totals and the same `charge_added` events. The caller holds the
    invoices' rows (locked) and charges only bills that are open or partly paid; a closed or paid one
    is refused (IllegalTransition) and nothing is written. Invoices loaded in the session are expired."""
    if not charges:
        return 0
    for charge in charges:
        if charge.kind not in FEE_KINDS:
            raise InvalidData({"kind": f"one of {', '.join(FEE_KINDS)}"})
        if not isinstance(charge.amount, int) or isinstance(charge.amount, bool) or charge.amount <= 0:
            raise InvalidData({"amount": "a positive amount in minor units"})
    now = now or utcnow()
    ids = sorted({charge.invoice_id for charge in charges})
    invoices = {row.id: row for row in db.session.execute(
        select(Invoice.id, Invoice.number, Invoice.status, Invoice.currency)
        .where(in_ids(db.session, Invoice.id, ids)))}
    for invoice_id in ids:
        row = invoices.get(invoice_id)
        if row is None or row.status not in (InvoiceStatus.OPEN, InvoiceStatus.PARTIALLY_PAID, InvoiceStatus.ON_HOLD,
                                              InvoiceStatus.DISPUTED):
            raise IllegalTransition(f"invoice {row.number if row else invoice_id} is "
                                    f"{row.status if row else 'gone'}; it takes no charges here")
    last = dict(db.session.execute(select(InvoiceLine.invoice_id, func.max(InvoiceLine.position))
                                   .where(in_ids(db.session, InvoiceLine.invoice_id, ids))
                                   .group_by(InvoiceLine.invoice_id)).all())
    lines: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    added: defaultdict[int, int] = defaultdict(int)
    for charge in charges:
        position = last.get(charge.invoice_id, 0) + 1
        last[charge.invoice_id] = position
        amount = charge.amount
        lines.append({"invoice_id": charge.invoice_id, "position": position, "kind": charge.kind,
                      "description": charge.description[:300], "note": None, "quantity": Decimal(1), "unit": None,
                      "unit_price": amount, "vat_rate": 0, "net": amount, "vat": 0, "gross": amount,
                      "period_start": None, "period_end": None, "text_key": charge.text_key})
        events.append({"invoice_id": charge.invoice_id, "kind": "charge_added", "actor": actor, "created_at": now,
                       "data": {"line_kind": charge.kind, "amount": amount,
                                "currency": invoices[charge.invoice_id].currency, **charge.data}})
        added[charge.invoice_id] += amount
    insert_rows(db.session, InvoiceLine.__table__, lines, returning=False)
    update_rows(db.session, Invoice.__table__, [{"id": invoice_id, "subtotal": amount, "total": amount}
                                                for invoice_id, amount in added.items()], add=("subtotal", "total"))
    insert_rows(db.session, InvoiceEvent.__table__, events, returning=False)
    for held in list(db.session.identity_map.values()):
        if isinstance(held, Invoice) and held.id in added:
            db.session.expire(held)
    return len(lines)


def move_due_date(invoice: Invoice, new_due: date, *, actor: str, reason: str) -> InvoiceEvent:
    """Give the invoice a new due date (a deferral), recording the old one."""
    if invoice.is_closed:
        raise IllegalTransition(f"invoice {invoice.number} is {invoice.status}")
    if new_due < invoice.issue_date:
        raise InvalidData({"due_date": "before the issue date"})
    old = invoice.due_date
    invoice.due_date = new_due
    event = record_event(invoice, "due_date_changed", actor, **{"from": old.isoformat(), "to": new_due.isoformat(),
                                                               "reason": reason})
    db.session.flush()
    return event


REMINDER_CLOCK_SKEW = timedelta(minutes=5)


def record_reminder(invoice: Invoice, *, channel: str, sent_at: datetime | None, final: bool, actor: str,
                    external_ref: str | None = None) -> tuple[Reminder, bool]:
    """A reminder the creditor sent (its own dunning system reports it): (reminder, created). The
    same `external_ref` again returns the first one. A reminder of a closed bill, one sent in the
    future, and a final one sent on or before the due date (where the creditor is) are refused."""
    errors = {}
    if channel not in REMINDER_CHANNELS:
        errors["channel"] = f"one of {', '.join(REMINDER_CHANNELS)}"
    now = utcnow()
    sent_at = sent_at or now
    if sent_at.tzinfo is None:
        errors["sent_at"] = "a time with its offset (UTC: ...Z)"
    elif sent_at > now + REMINDER_CLOCK_SKEW:
        errors["sent_at"] = "in the future"
    if invoice.is_closed:
        errors["invoice"] = f"the invoice is {invoice.status}"
    if final and "sent_at" not in errors and local_today(invoice.creditor.country, sent_at) <= invoice.due_date:
        errors["final"] = (f"a final reminder goes after the due date ({invoice.due_date.isoformat()}); "
                           "this one was sent on or before it")
    if errors:
        raise InvalidData(errors)
    if external_ref:
        existing = db.session.scalar(select(Reminder).where(Reminder.invoice_id == invoice.id,
                                                           Reminder.external_ref == external_ref))
        if existing is not None:
            return existing, False
    reminder = Reminder(invoice_id=invoice.id, channel=channel, sent_at=sent_at, final=bool(final),
                        external_ref=external_ref, created_at=now)
    try:
        with db.session.begin_nested():
            db.session.add(reminder)
            db.session.flush()
    except IntegrityError:  # the same report, in a request that committed in between
        winner = db.session.scalar(select(Reminder).where(Reminder.invoice_id == invoice.id,
                                                         Reminder.external_ref == external_ref))
        assert winner is not None
        return winner, False
    record_event(invoice, "reminder_sent", actor, channel=channel, final=bool(final), sent_at=sent_at.isoformat())
    db.session.flush()
    return reminder, True


def reminders_of(invoice_id: int) -> list[Reminder]:
    return list(db.session.scalars(select(Reminder).where(Reminder.invoice_id == invoice_id)
                                   .order_by(Reminder.sent_at, Reminder.id)))


def payload_hash(data: InvoiceIn) -> str:
    """The invoice as given, canonical JSON hashed. Fields added after invoices were first hashed
    (the dunning preferences) count only when given, so the same request sent again before and after
    they existed is the same request."""
    body = data.model_dump(mode="json")
    for name in LATER_INVOICE_FIELDS:
        if body.get(name) is None:
            body.pop(name, None)
    for name in LATER_CUSTOMER_FIELDS:
        if body["customer"].get(name) is None:
            body["customer"].pop(name, None)
    for line in body.get("lines") or ():  # a line's product code (content blocks) counts only when given
        if line.get("product_code") is None:
            line.pop("product_code", None)
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def find_invoice(creditor: Creditor, number: str, *, livemode: bool = True) -> Invoice | None:
    """The creditor's invoice with this number, live (or, `livemode=False`, test: docs/api.md, "Test mode")."""
    return db.session.scalar(select(Invoice).where(Invoice.creditor_id == creditor.id,
                                                   Invoice.livemode == livemode, Invoice.number == number))


def upsert_customer(creditor: Creditor, data: CustomerIn, *, livemode: bool = True) -> Customer:
    """The creditor's customer with this reference in this mode (live or test), made or brought up to date."""
    customer = db.session.scalar(
        select(Customer).where(Customer.creditor_id == creditor.id, Customer.livemode == livemode,
                               Customer.external_ref == data.external_ref)
    )
    before = contact_of(customer) if customer is not None else None
    if customer is None:
        customer = Customer(creditor_id=creditor.id, external_ref=data.external_ref, livemode=livemode)
        db.session.add(customer)
    address = data.address
    customer.name = data.name
    customer.kind = data.kind
    customer.email = data.email
    customer.phone = data.phone
    customer.address_line1 = address.line1 if address else None
    customer.address_line2 = address.line2 if address else None
    customer.postcode = address.postcode if address else None
    customer.city = address.city if address else None
    customer.country = address.country if address else None
    customer.preferred_locale = data.preferred_locale
    customer.date_of_birth = data.date_of_birth
    if "org_number" in data.model_fields_set or customer.kind != "business":
        customer.org_number = data.org_number if customer.kind == "business" else None
    if "vat_id" in data.model_fields_set or customer.kind != "business":
        customer.vat_id = data.vat_id if customer.kind == "business" else None
    # The customer's preferences for reminders (app.dunning), changed only where given: what the
    # customer chose on the bill page (an unsubscribe, a preferred channel) is not undone by the next
    # invoice that leaves them out.
    if data.preferred_channel is not None:
        customer.preferred_channel = data.preferred_channel or None  # "" clears it
    if data.time_zone is not None:
        customer.time_zone = data.time_zone or None
    if data.consents is not None:
        for name, value in (("email_allowed", data.consents.email), ("sms_allowed", data.consents.sms),
                            ("electronic_notices_allowed", data.consents.electronic_notices)):
            if value is not None:
                setattr(customer, name, value)
    if before is not None and before != contact_of(customer):
        db.session.flush()
        contact_changed.send(customer, actor="api", fields=changed_fields(before, contact_of(customer)))
    return customer


def import_invoice(creditor: Creditor, payload, *, actor: str, livemode: bool = True) -> tuple[Invoice, bool]:
    """Create an invoice with its customer and lines from an API-shaped payload; `livemode=False`
    makes a test invoice (and test customer), apart from the live ones: a test key's.

    Idempotent on (creditor, mode, number): the same content returns the stored invoice and
    False; other content raises Conflict. Raises InvalidData listing every problem."""
    data = parse_invoice(payload, creditor.reference_scheme, creditor.country,
                         today=local_today(creditor.country, utcnow()))
    digest = payload_hash(data)
    existing = find_invoice(creditor, data.number, livemode=livemode)
    if existing is not None:
        return _same_or_conflict(existing, digest)
    if not can_receive(creditor, data.currency):
        raise InvalidData({"currency": f"{data.currency} cannot be paid to this creditor: no bank account in "
                                       f"it and no payment provider configured for it"})
    try:
        with db.session.begin_nested():
            invoice = _create(creditor, data, digest, actor, livemode)
    except IntegrityError:
        # Another request got there first: the same invoice number, the same payment reference,
        # or (for a new customer) the same external reference.
        existing = find_invoice(creditor, data.number, livemode=livemode)
        if existing is not None:
            return _same_or_conflict(existing, digest)
        if data.payment_reference and _reference_taken(creditor, data.payment_reference, livemode):
            raise InvalidData({"payment_reference": "already used by another invoice of this creditor"}) from None
        raise Conflict("a concurrent request changed the same customer; retry the request") from None
    invoice_imported.send(invoice, payload=payload, actor=actor)
    return invoice, True


def can_receive(creditor: Creditor, currency: str) -> bool:
    """Whether the creditor can be paid in `currency`: its bank account (kept in its currency), or a
    payment provider it configured (`currency_receivable`)."""
    if currency == creditor.currency and (creditor.iban or creditor.bank_account_no):
        return True
    return any(answer is True for _receiver, answer in currency_receivable.send(creditor, currency=currency))


def _new_reference(creditor: Creditor, invoice: Invoice) -> str:
    """The invoice's generated reference: from its number when that fits the scheme and no other invoice
    of the creditor has that reference yet (numbers that differ only in punctuation, `A-12` and `A1-2`,
    make the same RF reference; a reference a creditor sent may equal a KID made from another number);
    else from the invoice's id, which no other invoice has."""
    scheme = creditor.reference_scheme
    reference = make_reference(scheme, reference_base(invoice.number, invoice.id, scheme))
    width = 8
    while _reference_taken(creditor, reference, invoice.livemode):  # from the id: zero-padded wider until free
        reference = make_reference(scheme, str(invoice.id).zfill(width))
        width += 1
    return reference


def _reference_taken(creditor: Creditor, reference: str, livemode: bool) -> bool:
    return db.session.scalar(
        select(Invoice.id).where(Invoice.creditor_id == creditor.id, Invoice.livemode == livemode,
                                 Invoice.payment_reference == reference)
    ) is not None


def _same_or_conflict(existing: Invoice, digest: str) -> tuple[Invoice, bool]:
    if existing.payload_hash == digest:
        return existing, False
    raise Conflict(f"invoice {existing.number} exists with different content")


def _create(creditor: Creditor, data: InvoiceIn, digest: str, actor: str, livemode: bool) -> Invoice:
    customer = upsert_customer(creditor, data.customer, livemode=livemode)
    amounts = [line.computed() for line in data.lines]
    base = creditor.default_locale  # a plain text's language (docs/texts.md)
    summary, summaries = split_text(data.summary, base)
    invoice = Invoice(
        public_id=secrets.token_urlsafe(16),
        creditor_id=creditor.id,
        customer=customer,
        number=data.number,
        livemode=livemode,
        issue_date=data.issue_date,
        due_date=data.due_date,
        period_start=data.period_start,
        period_end=data.period_end,
        currency=data.currency,
        summary=summary,
        texts={"summary": summaries} if summaries else None,
        kind=data.kind,
        status=InvoiceStatus.OPEN,
        subtotal=sum(a[0] for a in amounts),
        vat_total=sum(a[1] for a in amounts),
        total=sum(a[2] for a in amounts),
        amount_paid=0,
        payload_hash=digest,
        payment_reference=data.payment_reference or "",
    )
    for position, (line, (net, vat, gross)) in enumerate(zip(data.lines, amounts, strict=True), start=1):
        description, descriptions = split_text(line.description, base)
        note, notes = split_text(line.note, base)
        several = {name: given for name, given in (("description", descriptions), ("note", notes)) if given}
        invoice.lines.append(
            InvoiceLine(
                position=position, kind=line.kind, description=description, note=note, texts=several or None,
                quantity=line.quantity, unit=line.unit, unit_price=line.unit_price, vat_rate=line.vat_rate,
                net=net, vat=vat, gross=gross, period_start=line.period_start, period_end=line.period_end,
                product_code=line.product_code,
            )
        )
    db.session.add(invoice)
    if not invoice.payment_reference:
        # The reference may need the row id: flush once with a unique placeholder, then set it.
        invoice.payment_reference = "tmp-" + invoice.public_id[:30]
        db.session.flush()
        invoice.payment_reference = _new_reference(creditor, invoice)
    record_event(invoice, "created", actor, total=invoice.total, currency=invoice.currency)
    db.session.flush()
    return invoice


def other_bills_owed(invoice: Invoice, *, limit: int = 20) -> list[Invoice]:
    """The customer's other bills they still owe the creditor (customers are per creditor), the
    earliest due first: the bill page lists them, and a link to one bill opens them all."""
    return list(db.session.scalars(
        select(Invoice).where(Invoice.customer_id == invoice.customer_id, Invoice.creditor_id == invoice.creditor_id,
                              Invoice.id != invoice.id, Invoice.status.in_(OWING),
                              Invoice.total > Invoice.amount_paid)
        .order_by(Invoice.due_date, Invoice.id).limit(limit)))


def timeline(invoice: Invoice) -> list[InvoiceEvent]:
    return list(
        db.session.scalars(select(InvoiceEvent).where(InvoiceEvent.invoice_id == invoice.id).order_by(InvoiceEvent.id))
    )


def payments_received(invoice_id: int) -> list[InvoiceEvent]:
    return list(
        db.session.scalars(
            select(InvoiceEvent)
            .where(InvoiceEvent.invoice_id == invoice_id, InvoiceEvent.kind == "payment_recorded")
            .order_by(InvoiceEvent.id)
        )
    )


@dataclass(frozen=True)
class DueState:
    """What the status line says: kind is due, due_today, overdue, paid, disputed, on_hold or in_collection;
    the bill page's self-service state may say plan, plan_late or promised instead
    (`resolutions.services.shown_state`), with the date and amount it is about."""

    kind: str
    days: int = 0
    on: date | None = None
    amount: int | None = None


def due_state(invoice: Invoice, today: date) -> DueState:
    if invoice.status == InvoiceStatus.PAID or invoice.balance <= 0:
        return DueState("paid")
    if invoice.status in (InvoiceStatus.DISPUTED, InvoiceStatus.ON_HOLD, InvoiceStatus.IN_COLLECTION):
        return DueState(invoice.status)
    days = (invoice.due_date - today).days
    if days > 0:
        return DueState("due", days)
    if days == 0:
        return DueState("due_today")
    return DueState("overdue", -days)
