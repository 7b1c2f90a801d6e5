"""`settle()` for a whole bank file at once: the same rules, rows and guarantees, in a few
statements instead of ten per payment.

Why: `payments.services.settle()` locks, checks, inserts and flushes per payment, about ten
statements each; 100,000 credits took minutes. A bank file's payments are known together, so
this module applies settle()'s rules to all of them in memory, in file order, and writes the
rows with one executemany per table (`bulk.py`).

What it keeps of settle():

- the same rows: a Payment (refund_due for what is beyond the balance), the invoice's new
  amount paid and status, the events `payment_recorded`, `status_changed`, `refund_due` or
  `payment_to_refund` with the same data, open attempts of a paid invoice cancelled, and the
  receipt e-mail in the outbox (same kind, key, payload and language as `enqueue_receipt`);
- the same transitions: `billing.services.payable_status` and `can_transition`, with the same
  rule for disputed, held and collected invoices (`PAUSED`);
- exactly once: the invoices were loaded `FOR UPDATE` by the caller (`services.py`) and stay
  locked until the commit; a payment id is `account:bank reference`, which the caller has
  checked against the recorded bank entries (their unique key); the unique key on payments
  still stands behind both, so a concurrent import of the same entries fails as a whole (and
  can be run again) rather than settle twice.

`tests/unit/payments/test_bank_settlement.py` settles the same payments both ways and compares
every row written; a change to settle() that this module does not follow fails there.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from operator import itemgetter

from blinker import signal
from sqlalchemy import update

from app.billing.models import Invoice, InvoiceEvent, InvoiceStatus
from app.billing.services import PAUSED, can_transition, payable_status
from app.errors import IllegalTransition, InvalidData
from app.extensions import db
from app.i18n import DEFAULT_LOCALE, normalise_locale
from app.outbox.models import OutboxMessage, OutboxStatus
from app.payments.bank.bulk import ReservedIds, insert_rows, json_text, update_rows
from app.payments.bank.matching import InvoiceState
from app.payments.gateways.base import PaymentStatus
from app.payments.models import Payment, PaymentAttempt
from app.payments.receipts import KIND as RECEIPT_KIND
from app.payments.receipts import receipt_key
from app.payments.services import paid_during_collection

#: Sent (sender: None; `entries`, the (invoice id, data) of every payment booked; `bills`, those invoices'
#: states as now stored (`InvoiceState`, by id); `at`) after a batch of bank payments was written set-wise,
#: the invoices' amounts and statuses with them, in its transaction.
#: Events (app.events) tells the creditors (`payment.succeeded`), as billing's `record_event` tells it of
#: the payments booked one by one.
payments_booked = signal("bank-payments-booked")

IN_CHUNK = 500  # ids per IN (...) list: far below every database's limit on bound parameters
PAYMENT_COLUMNS = ("id", "invoice_id", "attempt_id", "provider", "provider_payment_id", "public_ref", "amount",
                   "currency", "method", "refund_due", "refunded", "received_at", "created_at")
EVENT_COLUMNS = ("invoice_id", "kind", "actor", "data", "created_at")
RECEIPT_COLUMNS = ("channel", "kind", "recipient", "payload", "idempotency_key", "creditor_id", "locale", "status",
                   "attempts", "next_attempt_at", "created_at")


@lru_cache(maxsize=256)
def receipt_locale(customer_locale: str | None, creditor_locale: str | None) -> str:
    """`payments.receipts.receipt_locale`, from the two values it reads."""
    return normalise_locale(customer_locale) or normalise_locale(creditor_locale) or DEFAULT_LOCALE


@dataclass
class BatchSettlement:
    """Payments to record, applied in order to the invoices' states; `write()` stores them.
    Before each run of `settle` calls, `expect(n)` reserves the ids of up to n new payments."""

    provider: str
    method: str
    actor: str
    now: datetime
    ids: ReservedIds = field(default_factory=lambda: ReservedIds(Payment.__table__))
    payment_ids: Iterator[int] = field(default_factory=lambda: iter(()))
    payments: list[tuple] = field(default_factory=list)
    events: list[tuple] = field(default_factory=list)
    receipts: list[tuple] = field(default_factory=list)
    changed: dict[int, InvoiceState] = field(default_factory=dict)
    paid: set[int] = field(default_factory=set)
    collected: list[int] = field(default_factory=list)  # payments of bills in collection, announced after write()

    def expect(self, count: int) -> None:
        """Reserve ids for up to `count` payments (those of a chunk of credits)."""
        self.payment_ids = iter(self.ids.take(count))

    def settle(self, invoice: InvoiceState, *, payment_id: str, amount: int, currency: str,
               received_at: datetime) -> int:
        """settle()'s effects on `invoice` (already locked), recorded for `write()`; the new payment's id."""
        if currency != invoice.currency:
            raise InvalidData({"currency": f"the invoice is in {invoice.currency}"})
        owed = 0 if invoice.is_closed else max(invoice.balance, 0)
        refund_due = max(amount - owed, 0)
        row_id, public_ref = next(self.payment_ids), secrets.token_urlsafe(16)
        if invoice.status == InvoiceStatus.IN_COLLECTION:
            self.collected.append(row_id)
        self.payments.append((row_id, invoice.id, None, self.provider, payment_id, public_ref, amount, currency,
                              self.method, refund_due, 0, received_at, self.now))
        if invoice.is_closed:
            self._event(invoice, "payment_to_refund", amount=amount, currency=currency, payment_id=payment_id,
                        reason=f"invoice is {invoice.status}")
        else:
            self._record_payment(invoice, amount, paid_on=received_at.date().isoformat(), reference=payment_id)
            if refund_due:
                self._event(invoice, "refund_due", amount=refund_due, currency=currency, payment_id=payment_id)
        if invoice.status == InvoiceStatus.PAID:
            self.paid.add(invoice.id)
        if invoice.customer_email:  # enqueue_receipt(): the key is the new payment's random public ref
            self.receipts.append((
                "email", RECEIPT_KIND, invoice.customer_email, json_text({"payment_id": row_id}),
                receipt_key(public_ref), invoice.creditor_id, invoice.locale, OutboxStatus.PENDING, 0,
                self.now, self.now,
            ))
        return row_id

    def _record_payment(self, invoice: InvoiceState, amount: int, *, paid_on: str, reference: str) -> None:
        """billing.services.record_payment: the amount, its event, and the status the amounts give."""
        if amount <= 0:
            raise InvalidData({"amount": "a positive amount in minor units"})
        invoice.amount_paid += amount
        self.changed[invoice.id] = invoice
        self._event(invoice, "payment_recorded", amount=amount, currency=invoice.currency, paid_on=paid_on,
                    method=self.method, reference=reference)
        target = payable_status(invoice)
        if invoice.status in PAUSED and target != InvoiceStatus.PAID:
            target = invoice.status
        if target != invoice.status:
            if not can_transition(invoice.status, target):
                raise IllegalTransition(f"invoice {invoice.number}: {invoice.status} -> {target} is not allowed")
            self.events.append((invoice.id, "status_changed", self.actor, _status_changed(invoice.status, target),
                                self.now))
            invoice.status = target

    def _event(self, invoice: InvoiceState, kind: str, **data) -> None:
        self.events.append((invoice.id, kind, self.actor, json_text(data), self.now))

    def write(self) -> None:
        """Store everything: payments, events, the invoices' amounts and statuses, cancelled
        attempts, receipts. Flushes the session first and expires the invoices and attempts it
        holds, which these statements change."""
        db.session.flush()
        insert_rows(Payment.__table__, PAYMENT_COLUMNS, self.payments)
        # In invoice order (each invoice's own events keep theirs): the index on (invoice_id, kind)
        # grows at fewer places, a quarter faster on SQLite.
        events = sorted(self.events, key=itemgetter(0))
        insert_rows(InvoiceEvent.__table__, EVENT_COLUMNS, events, serialized=("data",))
        self._update_invoices()
        self._cancel_attempts()
        insert_rows(OutboxMessage.__table__, RECEIPT_COLUMNS, self.receipts, serialized=("payload",))
        _expire(Invoice, set(self.changed) | self.paid)
        _expire(PaymentAttempt, None)
        for payment_id in self.collected:  # as settle() does: the partner hears of it
            paid_during_collection.send(db.session.get(Payment, payment_id))
        self.collected.clear()
        booked = [(invoice_id, data) for invoice_id, kind, _actor, data, _at in events if kind == "payment_recorded"]
        if booked:
            payments_booked.send(None, entries=booked, bills=self.changed, at=self.now)

    def _update_invoices(self) -> None:
        update_rows(Invoice.__table__, ("id", "amount_paid", "status", "updated_at"),
                    [(s.id, s.amount_paid, s.status, self.now) for s in self.changed.values()])

    def _cancel_attempts(self) -> None:
        """cancel_open_attempts() for every invoice now paid."""
        paid = sorted(self.paid)
        table = PaymentAttempt.__table__
        for start in range(0, len(paid), IN_CHUNK):
            db.session.execute(
                update(table)
                .where(table.c.invoice_id.in_(paid[start:start + IN_CHUNK]),
                       table.c.status.not_in(PaymentStatus.FINAL))
                .values(status=PaymentStatus.CANCELLED, failure_reason="invoice paid", updated_at=self.now)
            )


@lru_cache(maxsize=64)
def _status_changed(old: str, new: str) -> str:
    """The data of a "status_changed" event, as `transition()` records it: a few kinds in a whole file."""
    return json_text({"from": old, "to": new, "reason": "payment"})


def _expire(model: type, ids: set[int] | None) -> None:
    """Expire the session's objects of `model` (those with these ids), which Core statements changed."""
    for obj in list(db.session.identity_map.values()):
        if isinstance(obj, model) and (ids is None or obj.id in ids):
            db.session.expire(obj)
