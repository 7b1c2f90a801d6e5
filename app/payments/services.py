"""Payments: the amount to take, one live attempt per invoice, settlement exactly once, notifications once.

Services add and flush; the caller commits. Settling locks the invoice row (PostgreSQL
`FOR UPDATE`; SQLite serialises writers) while its balance changes, and a unique key on
(provider, provider payment id) makes a second settlement of the same payment a no-op,
whichever comes first: the webhook, the return page, a retry or a bank file.
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Callable, Iterable
from datetime import date, datetime, time, timedelta, timezone

from blinker import signal
from sqlalchemy import bindparam, or_, select
from sqlalchemy.exc import IntegrityError

from app.billing.models import Invoice, InvoiceStatus as S
from app.billing.services import record_event, record_payment
from app.errors import InvalidData
from app.extensions import db
from app.models import utcnow
from app.payments.gateways.base import (
    CheckoutRequest,
    Gateway,
    GatewayError,
    GatewayEvent,
    GatewayStatus,
    Party,
    PaymentStatus,
)
from app.payments.models import Payment, PaymentAttempt, Refund, WebhookEvent
from app.payments.receipts import enqueue_receipt

#: Sent, in its transaction, with every payment recorded for a bill that was in debt collection
#: (the Payment is the sender), by `settle()` and by the bank import's batch path alike: debt
#: collection reports it to the partner. Connected in create_app.
paid_during_collection = signal("paid-during-collection")


def payment_amount(invoice: Invoice, requested: int | None, *, due_now: int | None = None) -> int:
    """The amount to take: the balance, or a part of it where the creditor allows it (at least its minimum).

    `due_now` is what the customer owes now when it is less than the balance (an instalment of a
    plan, the undisputed part of a disputed bill): the default, and allowed even where the
    creditor takes no part payments."""
    balance = invoice.balance
    if balance <= 0:
        raise InvalidData({"amount": "nothing is owed on this invoice"})
    if requested is None:
        return due_now if due_now is not None and 0 < due_now <= balance else balance
    if requested == balance or (due_now is not None and requested == due_now and 0 < due_now <= balance):
        return requested
    creditor = invoice.creditor
    if not isinstance(requested, int) or isinstance(requested, bool) or requested <= 0:
        raise InvalidData({"amount": "a positive amount in minor units"})
    if requested > balance:
        raise InvalidData({"amount": "more than the balance"})
    if not creditor.allow_partial_payments:
        raise InvalidData({"amount": "this creditor takes the whole balance only"})
    if requested < creditor.min_partial_payment:
        raise InvalidData({"amount": "less than the smallest part payment"})
    return requested


def lock_invoice(invoice_id: int) -> Invoice:
    """The invoice, locked for this transaction and re-read from the database."""
    return db.session.scalar(
        select(Invoice).where(Invoice.id == invoice_id).with_for_update().execution_options(populate_existing=True)
    )


def live_attempt(invoice_id: int, provider: str, amount: int) -> PaymentAttempt | None:
    """A payable attempt for this invoice, provider and amount: double taps and two tabs reuse it."""
    candidates = db.session.scalars(
        select(PaymentAttempt)
        .where(
            PaymentAttempt.invoice_id == invoice_id,
            PaymentAttempt.provider == provider,
            PaymentAttempt.amount == amount,
            PaymentAttempt.status.in_((PaymentStatus.PENDING, PaymentStatus.REQUIRES_ACTION)),
        )
        .order_by(PaymentAttempt.id.desc())
    )
    return next((attempt for attempt in candidates if attempt.is_live and attempt.provider_ref), None)


def new_attempt(invoice: Invoice, provider: str, amount: int) -> PaymentAttempt:
    """A new attempt row (flushed, so its public ref can go to the provider as reference and idempotency key)."""
    attempt = PaymentAttempt(
        public_ref=secrets.token_urlsafe(16), invoice_id=invoice.id, provider=provider, amount=amount,
        currency=invoice.currency, status=PaymentStatus.PENDING,
    )
    db.session.add(attempt)
    db.session.flush()
    return attempt


ATTEMPT_LIFETIME = timedelta(hours=1)


def start_payment(
    invoice: Invoice, gateway: Gateway, *, amount: int, locale: str, return_url: Callable[[str], str], cancel_url: str,
    methods: tuple[str, ...],
) -> PaymentAttempt:
    """The attempt to pay `amount` of the invoice at this gateway: the live one if there is one
    (double taps and two tabs make one provider call), else a new one created at the provider.

    The amount, currency and payer come from the database; `return_url(attempt_ref)` builds our
    return page's URL. Raises GatewayError when the provider refuses or cannot be reached."""
    lock_invoice(invoice.id)
    attempt = live_attempt(invoice.id, gateway.name, amount)
    if attempt is not None:
        return attempt
    attempt = new_attempt(invoice, gateway.name, amount)
    creditor, customer = invoice.creditor, invoice.customer
    checkout = gateway.create_checkout(CheckoutRequest(
        attempt_ref=attempt.public_ref, amount=amount, currency=invoice.currency, invoice_number=invoice.number,
        payment_reference=invoice.payment_reference,
        description=f"{invoice.number} · {creditor.name}",
        payer=Party(name=customer.name, email=customer.email, phone=customer.phone, country=customer.country,
                    postcode=customer.postcode, city=customer.city, address_line1=customer.address_line1),
        methods=methods, locale=locale, return_url=return_url(attempt.public_ref),
        cancel_url=cancel_url, idempotency_key=f"attempt-{attempt.public_ref}",
        metadata={"invoice_number": invoice.number, "payment_reference": invoice.payment_reference},
    ))
    attempt.provider_ref = checkout.provider_ref
    attempt.redirect_url = checkout.redirect_url
    if checkout.client_secret or checkout.client_config:  # an embedded flow: our checkout page needs these
        attempt.client_config = {**checkout.client_config, "client_secret": checkout.client_secret}
    attempt.status = checkout.status
    attempt.expires_at = checkout.expires_at or utcnow() + ATTEMPT_LIFETIME
    record_event(invoice, "payment_started", "customer", provider=gateway.name, amount=amount,
                 attempt=attempt.public_ref)
    db.session.flush()
    return attempt


def settle(
    invoice_id: int, *, provider: str, payment_id: str, amount: int, currency: str, method: str | None,
    received_at: datetime, actor: str, attempt: PaymentAttempt | None = None,
) -> Payment | None:
    """Record money received, exactly once per (provider, payment id). None if it was already recorded.

    An overpayment, a payment of a paid invoice or of a closed one is still recorded: the
    part beyond the balance is `refund_due`, an event says so, and agents see it."""
    invoice = lock_invoice(invoice_id)
    if db.session.scalar(
        select(Payment.id).where(Payment.provider == provider, Payment.provider_payment_id == payment_id)
    ):
        return None
    in_collection = invoice.status == S.IN_COLLECTION
    if currency != invoice.currency:
        raise InvalidData({"currency": f"the invoice is in {invoice.currency}"})
    owed = 0 if invoice.is_closed else max(invoice.balance, 0)
    payment = Payment(
        invoice_id=invoice.id, attempt_id=attempt.id if attempt else None, provider=provider,
        provider_payment_id=payment_id, amount=amount, currency=currency, method=method,
        refund_due=max(amount - owed, 0), received_at=received_at,
    )
    try:
        with db.session.begin_nested():
            db.session.add(payment)
            db.session.flush()
    except IntegrityError:  # recorded by a concurrent transaction that committed first
        return None
    if invoice.is_closed:
        record_event(invoice, "payment_to_refund", actor, amount=amount, currency=currency, payment_id=payment_id,
                     reason=f"invoice is {invoice.status}")
    else:
        record_payment(invoice, amount, actor=actor, paid_on=received_at.date(), method=method or provider,
                       reference=payment_id)
        if payment.refund_due:
            record_event(invoice, "refund_due", actor, amount=payment.refund_due, currency=currency,
                         payment_id=payment_id)
    if invoice.status == S.PAID:
        cancel_open_attempts(invoice.id, keep=attempt)
    enqueue_receipt(payment, invoice)  # the receipt e-mail commits with the payment, or neither does
    if in_collection:
        paid_during_collection.send(payment)
    db.session.flush()
    return payment


def cancel_open_attempts(invoice_id: int, *, keep: PaymentAttempt | None = None) -> int:
    """When an invoice is paid, its other attempts stop being payable."""
    count = 0
    for other in db.session.scalars(
        select(PaymentAttempt).where(
            PaymentAttempt.invoice_id == invoice_id, PaymentAttempt.status.not_in(PaymentStatus.FINAL)
        )
    ):
        if keep is None or other.id != keep.id:
            other.status = PaymentStatus.CANCELLED
            other.failure_reason = "invoice paid"
            count += 1
    return count


def apply_status(attempt: PaymentAttempt, update: GatewayStatus | GatewayEvent, *, actor: str) -> bool:
    """Move the attempt forward with what the provider says (never backwards); settle on success.

    The payment's key is the attempt's provider ref, the same from the webhook and from the
    return page, so the two can never make two payments. Returns True if the attempt changed."""
    new = update.status
    if new is None or not PaymentStatus.moves_forward(attempt.status, new):
        return False
    # Decide on the committed status, not on what the caller read: the invoice first, then the
    # attempt, both locked. Every writer takes them in this order (settle locks the invoice, then
    # cancels its other attempts), so two payments of one invoice cannot deadlock, and a return
    # page that read the attempt before a webhook's success committed cannot write over it.
    lock_invoice(attempt.invoice_id)
    db.session.refresh(attempt, with_for_update=True)
    if not PaymentStatus.moves_forward(attempt.status, new):
        return False
    attempt.status = new
    attempt.method = update.method or attempt.method
    if new == PaymentStatus.FAILED:
        attempt.failure_reason = (getattr(update, "failure_reason", None) or "declined")[:200]
    if new == PaymentStatus.SUCCEEDED:
        amount = getattr(update, "amount_received", None) or getattr(update, "amount", None) or attempt.amount
        settle(
            attempt.invoice_id, provider=attempt.provider, payment_id=attempt.provider_ref, amount=amount,
            currency=getattr(update, "currency", None) or attempt.currency, method=attempt.method,
            received_at=getattr(update, "occurred_at", None) or utcnow(), actor=actor, attempt=attempt,
        )
    db.session.flush()
    return True


def ingest_events(provider: str, creditor_id: int, events: Iterable[GatewayEvent], *, apply: bool = True) -> list[str]:
    """Store each verified event once and, with `apply`, apply it at most once. One outcome per
    event: duplicate, received (stored, to be applied by `apply_received_events`), stored (a type
    we do not act on), unknown_payment, applied or unchanged.

    `creditor_id` is the creditor whose key verified the events: they may only touch its invoices.

    A duplicate costs one read and no write. Providers re-send until they get a 2xx, so most
    duplicates are of events stored long ago: their ids are looked up first and nothing is
    inserted for them. An INSERT that fails on the unique key would still write (a dead row, a
    sequence value, WAL) and make the commit wait for the disk. The unique key stays the
    arbiter between two first deliveries of one event racing each other: the second INSERT
    waits for the first to commit, then does nothing (ON CONFLICT DO NOTHING)."""
    events = list(events)
    connection = db.session.connection()  # Core on the session's connection: no ORM work per statement
    insert_event, known_events = _webhook_statements(connection.dialect.name)
    seen = set(connection.scalars(
        known_events, {"provider": provider, "ids": list({event.event_id for event in events})}
    )) if events else set()
    outcomes = []
    for event in events:
        if event.event_id in seen:  # stored before, or earlier in this batch
            outcomes.append("duplicate")
            continue
        seen.add(event.event_id)
        outcome = "received" if event.status else "stored"
        record_id = connection.scalar(insert_event, {
            "provider": provider, "event_id": event.event_id, "event_type": event.event_type,
            "creditor_id": creditor_id, "provider_ref": event.provider_ref, "outcome": outcome,
            "payload": dict(event.payload), "event": _event_record(event), "received_at": utcnow(),
        })
        if record_id is None:  # a first delivery racing ours committed the same event first
            outcomes.append("duplicate")
            continue
        if apply and event.status is not None:
            record = db.session.get(WebhookEvent, record_id)
            _apply(record, event)
            outcome = record.outcome
        outcomes.append(outcome)
    db.session.flush()
    return outcomes


@functools.cache
def _webhook_statements(dialect: str):
    """The two statements of storing an event, built once per dialect (and then compiled once):
    `INSERT … ON CONFLICT DO NOTHING RETURNING id`, on PostgreSQL and SQLite alike (one round trip
    where a savepoint, an INSERT and a release took three; a lost race writes nothing), and the
    read of the ids already stored."""
    from sqlalchemy.dialects import postgresql, sqlite

    columns = ("provider", "event_id", "event_type", "creditor_id", "provider_ref", "outcome", "payload",
               "event", "received_at")
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(WebhookEvent)
    insert_event = (insert.values({name: bindparam(name) for name in columns})
                    .on_conflict_do_nothing(index_elements=["provider", "event_id"]).returning(WebhookEvent.id))
    known_events = select(WebhookEvent.event_id).where(
        WebhookEvent.provider == bindparam("provider"), WebhookEvent.event_id.in_(bindparam("ids", expanding=True)))
    return insert_event, known_events


def apply_received_events(limit: int = 100) -> dict[str, int]:
    """Apply stored events not applied yet, oldest first, each in its own transaction (this commits:
    it is the worker's loop, `flask payments apply-events`). Several workers can run side by side on
    PostgreSQL: each event is claimed with FOR UPDATE SKIP LOCKED. Returns outcomes counted."""
    counts: dict[str, int] = {}
    for _ in range(limit):
        record = db.session.scalar(
            select(WebhookEvent).where(WebhookEvent.outcome == "received").order_by(WebhookEvent.id)
            .limit(1).with_for_update(skip_locked=True)
        )
        if record is None:
            break
        _apply(record, _event_from_record(record))
        db.session.commit()
        counts[record.outcome] = counts.get(record.outcome, 0) + 1
    return counts


def _apply(record: WebhookEvent, event: GatewayEvent) -> None:
    attempt = _attempt_of(record.provider, record.creditor_id, event.provider_ref)
    if attempt is None:
        record.outcome = "unknown_payment"
    else:
        record.outcome = "applied" if apply_status(attempt, event, actor=record.provider) else "unchanged"
    record.applied_at = utcnow()


def _event_record(event: GatewayEvent) -> dict:
    """The event in our terms, as JSON: what applying it needs, without the provider's payload."""
    return {
        "status": event.status, "amount": event.amount, "currency": event.currency, "payment_id": event.payment_id,
        "method": event.method, "occurred_at": event.occurred_at.isoformat() if event.occurred_at else None,
    }


def _event_from_record(record: WebhookEvent) -> GatewayEvent:
    data = record.event or {}
    occurred = data.get("occurred_at")
    return GatewayEvent(
        provider=record.provider, event_id=record.event_id, event_type=record.event_type,
        provider_ref=record.provider_ref, status=data.get("status"), amount=data.get("amount"),
        currency=data.get("currency"), payment_id=data.get("payment_id"), method=data.get("method"),
        occurred_at=datetime.fromisoformat(occurred) if occurred else None,
    )


def _attempt_of(provider: str, creditor_id: int, provider_ref: str | None) -> PaymentAttempt | None:
    """The attempt an event names, by the provider's id or by our own attempt ref (Adyen signs the
    merchant reference, ours, and not its session id), among this creditor's invoices only.
    Read without a lock: `apply_status` locks the invoice, then the attempt, and decides again."""
    if not provider_ref:
        return None
    return db.session.scalar(
        select(PaymentAttempt)
        .join(Invoice, PaymentAttempt.invoice_id == Invoice.id)
        .where(
            PaymentAttempt.provider == provider,
            or_(PaymentAttempt.provider_ref == provider_ref, PaymentAttempt.public_ref == provider_ref),
            Invoice.creditor_id == creditor_id,
        )
    )


def refunds_due(creditor_id: int) -> list[Payment]:
    """Payments with money owed back to the customer, for the agents' inbox."""
    return list(
        db.session.scalars(
            select(Payment)
            .join(Invoice, Payment.invoice_id == Invoice.id)
            .where(Invoice.creditor_id == creditor_id, Payment.refund_due > 0)
            .order_by(Payment.id)
        )
    )


# --- by hand: payments an agent records, refunds, bank entries an agent decides -------------------------

MANUAL_METHODS = ("bank_transfer", "cash", "card_terminal", "cheque", "other")


def record_manual_payment(invoice: Invoice, amount: int, *, received_on: date, method: str, key: str,
                          actor: str, note: str | None = None) -> Payment:
    """A payment the creditor received outside the portal's providers and files (at the counter, a
    transfer to another account), recorded by an agent. Settled like any payment (receipt e-mail,
    refund due beyond the balance); `key` (the form's one-time key) makes a double submit one
    payment. Returns the payment, the first one for a repeated key."""
    errors = {}
    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        errors["amount"] = "not_positive"
    if method not in MANUAL_METHODS:
        errors["method"] = "choose"
    if received_on > utcnow().date() + timedelta(days=1):
        errors["received_on"] = "future"
    if not key or len(key) > 64:
        errors["key"] = "missing"
    if errors:
        raise InvalidData(errors)
    payment_id = f"manual:{key}"
    payment = settle(invoice.id, provider="manual", payment_id=payment_id, amount=amount, currency=invoice.currency,
                     method=method, received_at=datetime.combine(received_on, time(12), tzinfo=timezone.utc),
                     actor=actor)
    if payment is None:  # this key recorded it already
        return db.session.scalar(select(Payment).where(Payment.provider == "manual",
                                                       Payment.provider_payment_id == payment_id))
    if note:
        record_event(invoice, "payment_note", actor, payment_id=payment_id, note=note[:500])
    return payment


REFUND_CHANNELS = ("provider", "bank_transfer")


def refund_channels(payment: Payment) -> tuple[str, ...]:
    """How a payment can be paid back: through the provider that took it, or by the creditor's
    bank; money that came by bank (a file, an agent's record) only by bank."""
    return ("bank_transfer",) if payment.provider in ("manual", "bank_transfer") else REFUND_CHANNELS


def refund_payment(payment: Payment, amount: int, *, channel: str, key: str, actor: str,
                   gateway: Gateway | None = None, note: str | None = None) -> Refund:
    """Pay back what is owed on a payment (`refund_due`): through the provider that took it
    (`gateway`, idempotent on `key`), or record that the creditor's bank sent it. The invoice keeps
    only what it keeps: its amount paid goes down by the refund. Raises GatewayError when the
    provider refuses (nothing is recorded then; the same key is safe to try again)."""
    existing = db.session.scalar(select(Refund).where(Refund.idempotency_key == key)) if key else None
    if existing is not None:
        return existing
    invoice = lock_invoice(payment.invoice_id)
    db.session.refresh(payment, with_for_update=True)
    errors = {}
    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        errors["amount"] = "not_positive"
    elif amount > payment.refund_due:
        errors["amount"] = "more_than_due"
    if channel not in REFUND_CHANNELS:
        errors["channel"] = "choose"
    elif channel not in refund_channels(payment) or (channel == "provider" and gateway is None):
        errors["channel"] = "no_provider"
    if not key or len(key) > 100:
        errors["key"] = "missing"
    if errors:
        raise InvalidData(errors)
    refund = Refund(payment_id=payment.id, amount=amount, currency=payment.currency, channel=channel,
                    idempotency_key=key, actor=actor, note=(note or "").strip()[:500] or None, status="succeeded")
    if channel == "provider":
        result = gateway.refund(payment.provider_payment_id, amount, f"refund-{key}")
        refund.provider_refund_id, refund.status = result.refund_id, result.status
    if refund.status == "failed":
        raise GatewayError("the provider refused the refund", code="refund_failed")
    db.session.add(refund)
    payment.refund_due -= amount
    payment.refunded += amount
    if not invoice.is_closed:  # a payment to a closed invoice was never counted in its amount paid
        invoice.amount_paid -= amount
    record_event(invoice, "refund_sent", actor, amount=amount, currency=payment.currency, channel=channel,
                 payment_id=payment.provider_payment_id, refund_id=refund.provider_refund_id)
    db.session.flush()
    return refund


def refunds_of(payment_ids: Iterable[int]) -> list[Refund]:
    ids = list(payment_ids)
    if not ids:
        return []
    return list(db.session.scalars(select(Refund).where(Refund.payment_id.in_(ids)).order_by(Refund.id)))
