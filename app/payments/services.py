"""Payments: the amount to take, one live attempt per invoice, settlement exactly once, notifications once.

Services add and flush; the caller commits. Settling locks the invoice row (PostgreSQL
`FOR UPDATE`; SQLite serialises writers) while its balance changes, and a unique key on
(provider, provider payment id) makes a second settlement of the same payment a no-op,
whichever comes first: the webhook, the return page, a retry or a bank file.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from blinker import signal
from sqlalchemy import inspect, select
from sqlalchemy.orm import NO_VALUE
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from app.billing.models import Customer, Invoice, InvoiceStatus
from app.billing.services import record_event, record_payment
from app.core import metrics
from app.core.inserts import insert_new
from app.core.loading import linked
from app.creditors.models import Creditor
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
    valid_amount,
)
from app.payments.models import Payment, PaymentAttempt, PaymentMismatch
from app.payments.providers import payment_gateway
from app.payments.receipts import enqueue_receipt

#: Sent, in its transaction, with every payment recorded for a bill that was in debt collection
#: (the Payment is the sender), by `settle()` and by the bank import's batch path alike: debt
#: collection reports it to the partner. Connected in create_app.
paid_during_collection = signal("paid-during-collection")
#: Sent (sender: the attempt) when the provider reports an attempt failed, in its transaction. Events
#: (app.events) tells the creditor (`payment.failed`).
payment_failed = signal("payment-failed")
log = logging.getLogger(__name__)


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
    """The invoice, locked for this transaction and re-read from the database with its customer (what
    every bill's event says of it, `events.catalogue.invoice_data`) in the same statement; only the
    invoice's row is locked. Its creditor, where the session has it already, stays as it was: re-reading
    the row forgets its relationships, and reading it again would cost a statement for a row that did not
    change (an invoice never changes creditor; the creditor's row is not what this lock is for)."""
    held = db.session.identity_map.get(identity_key(Invoice, invoice_id))
    creditor = NO_VALUE if held is None else inspect(held).attrs.creditor.loaded_value
    invoice = linked(db.session.execute(
        select(Invoice, Customer).join(Customer, Customer.id == Invoice.customer_id)
        .where(Invoice.id == invoice_id).with_for_update(of=Invoice).execution_options(populate_existing=True)
    ).first(), "customer")
    assert invoice is not None  # callers pass the id of an invoice they hold
    if creditor is not NO_VALUE and creditor is not None \
            and inspect(creditor).identity == (invoice.creditor_id,):  # its key: no load, even if expired
        set_committed_value(invoice, "creditor", creditor)
    return invoice


def attempt_with_bill(*conditions: Any) -> PaymentAttempt | None:
    """The attempt matching `conditions`, with its invoice and the invoice's creditor read in the same
    statement and held by it (`core.loading.linked`): `attempt.invoice.creditor` needs no query. (Not as
    eager loads of the attempt: SQLAlchemy repeats those on every refresh, and `apply_status` refreshes
    the attempt FOR UPDATE, which PostgreSQL refuses across an outer join.)"""
    return linked(db.session.execute(
        select(PaymentAttempt, Invoice, Creditor)
        .join(Invoice, Invoice.id == PaymentAttempt.invoice_id).join(Creditor, Creditor.id == Invoice.creditor_id)
        .where(*conditions)
    ).first(), "invoice", "creditor")


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


#: An attempt the customer has finished on their side that the provider has not confirmed yet (their
#: bank's authentication, a delayed method): paying again could take the money twice.
IN_PROGRESS = (PaymentStatus.REQUIRES_ACTION, PaymentStatus.PROCESSING)


def attempt_in_progress(invoice_id: int) -> PaymentAttempt | None:
    """The bill's newest payment in progress that has not expired: while there is one, the bill page
    shows it and offers no other payment of the bill (one short indexed read)."""
    attempt = db.session.scalar(
        select(PaymentAttempt).where(PaymentAttempt.invoice_id == invoice_id, PaymentAttempt.status.in_(IN_PROGRESS))
        .order_by(PaymentAttempt.id.desc()).limit(1)
    )
    return attempt if attempt is not None and attempt.is_live else None


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
    received_at: datetime, actor: str, attempt: PaymentAttempt | None = None, mismatch: str | None = None,
    locked_invoice: Invoice | None = None,
) -> Payment | None:
    """Record money received, exactly once per (provider, payment id). None if it was already recorded.

    An overpayment, a payment of a paid invoice or of a closed one is still recorded: the
    part beyond the balance is `refund_due`, an event says so, and agents see it. A payment that is
    not what its attempt asked for (`mismatch`, a `PaymentMismatch`: another amount or currency) is
    recorded as received, not booked on the bill, and owed back in full.

    `locked_invoice`: the invoice, when the caller has locked it in this transaction already
    (`lock_invoice`), so that it is not locked and read again."""
    invoice = locked_invoice if locked_invoice is not None and locked_invoice.id == invoice_id \
        else lock_invoice(invoice_id)
    # The usual duplicate (a file imported again, a form sent twice): one read, whatever the repeat says,
    # and no write. An attempt's success is not one: `apply_status` settles it once, having moved the
    # attempt forward under this lock, and the unique key below answers for anything else.
    if attempt is None and db.session.scalar(
        select(Payment.id).where(Payment.provider == provider, Payment.provider_payment_id == payment_id)
    ):
        return None
    in_collection = invoice.status == InvoiceStatus.IN_COLLECTION and mismatch is None
    if currency != invoice.currency and mismatch is None:
        raise InvalidData({"currency": f"the invoice is in {invoice.currency}"})
    owed = 0 if invoice.is_closed or mismatch else max(invoice.balance, 0)
    payment = insert_new(db.session, Payment, {
        "invoice_id": invoice.id, "attempt_id": attempt.id if attempt else None, "provider": provider,
        "provider_payment_id": payment_id, "amount": amount, "currency": currency, "method": method,
        "refund_due": max(amount - owed, 0), "received_at": received_at, "mismatch": mismatch,
    }, unique=["provider", "provider_payment_id"])
    if payment is None:  # recorded by a concurrent transaction that committed first
        return None
    if mismatch:
        record_event(invoice, "payment_mismatch", actor, amount=amount, currency=currency, payment_id=payment_id,
                     mismatch=mismatch, expected_amount=attempt.amount if attempt else None,
                     expected_currency=attempt.currency if attempt else None)
    elif invoice.is_closed:
        record_event(invoice, "payment_to_refund", actor, amount=amount, currency=currency, payment_id=payment_id,
                     reason=f"invoice is {invoice.status}")
    else:
        record_payment(invoice, amount, actor=actor, paid_on=received_at.date(), method=method or provider,
                       reference=payment_id)
        if payment.refund_due:
            record_event(invoice, "refund_due", actor, amount=payment.refund_due, currency=currency,
                         payment_id=payment_id)
    if invoice.status == InvoiceStatus.PAID:
        cancel_open_attempts(invoice.id, keep=attempt)
    enqueue_receipt(payment, invoice)  # the receipt e-mail commits with the payment, or neither does
    if in_collection:
        paid_during_collection.send(payment)
    db.session.flush()
    _count(provider, PaymentStatus.SUCCEEDED)
    return payment


def stop_open_attempts(invoice: Invoice, *, actor: str, **_ignored) -> int:
    """An invoice closed (cancelled, written off): its open attempts are cancelled here, and at their
    providers, so that nobody can pay them any more. The provider is asked in this transaction, at
    most once per attempt; a provider that cannot be reached, or where the payment is already under
    way, is logged and left: a success it reports later is recorded and owed back in full (`settle`
    takes no payment on a closed invoice). Returns how many attempts were stopped."""
    attempts = list(db.session.scalars(
        select(PaymentAttempt).where(PaymentAttempt.invoice_id == invoice.id,
                                     PaymentAttempt.status.not_in(PaymentStatus.FINAL))
        .order_by(PaymentAttempt.id).with_for_update()
    ))
    for attempt in attempts:
        attempt.status, attempt.failure_reason = PaymentStatus.CANCELLED, f"invoice {invoice.status}"
        if attempt.provider_ref:
            _cancel_at_provider(invoice, attempt)
    if attempts:
        record_event(invoice, "payments_stopped", actor, count=len(attempts),
                     providers=sorted({a.provider for a in attempts}))
        db.session.flush()
    return len(attempts)


def _cancel_at_provider(invoice: Invoice, attempt: PaymentAttempt) -> None:
    found = payment_gateway(invoice.creditor.slug, attempt.provider, livemode=invoice.livemode)
    if found is None:
        log.warning("no %s keys on this instance: attempt %s stays payable at the provider until it expires",
                    attempt.provider, attempt.id)
        return
    if attempt.provider_ref is None:  # never reached the provider: nothing to end there
        return
    try:
        found[1].cancel(attempt.provider_ref)
    except GatewayError as exc:
        log.warning("%s could not cancel attempt %s (%s): a payment it takes is owed back", attempt.provider,
                    attempt.id, exc)


def _count(provider: str, outcome: str) -> None:
    """A payment's outcome for /metrics (`portal_payments_total`), counted if this transaction commits."""
    metrics.count_on_commit(db.session, metrics.payments().labels(provider, outcome))


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
            _count(other.provider, PaymentStatus.CANCELLED)
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
    invoice = lock_invoice(attempt.invoice_id)
    db.session.refresh(attempt, with_for_update=True)
    if not PaymentStatus.moves_forward(attempt.status, new):
        return False
    received = received_money(attempt, update) if new == PaymentStatus.SUCCEEDED else None
    if new == PaymentStatus.SUCCEEDED and received is None:
        log.warning("%s reported attempt %s succeeded with an amount that is not one: not applied",
                    attempt.provider, attempt.id)
        return False
    attempt.status = new
    attempt.method = _method_name(update.method) or attempt.method
    if new == PaymentStatus.FAILED:
        attempt.failure_reason = (getattr(update, "failure_reason", None) or "declined")[:200]
        payment_failed.send(attempt)
    if new in (PaymentStatus.FAILED, PaymentStatus.CANCELLED):
        _count(attempt.provider, new)  # a success is counted where it is recorded: settle()
    if received is not None:
        amount, currency = received
        mismatch = (PaymentMismatch.CURRENCY if currency != attempt.currency
                    else PaymentMismatch.AMOUNT if amount != attempt.amount else None)
        if mismatch:
            log.warning("%s reported attempt %s paid with %s %s, not %s %s: recorded, owed back", attempt.provider,
                        attempt.id, amount, currency, attempt.amount, attempt.currency)
        assert attempt.provider_ref is not None  # the provider has answered about this attempt
        settle(
            attempt.invoice_id, provider=attempt.provider, payment_id=attempt.provider_ref, amount=amount,
            currency=currency, method=attempt.method, received_at=getattr(update, "occurred_at", None) or utcnow(),
            actor=actor, attempt=attempt, mismatch=mismatch, locked_invoice=invoice,
        )
    db.session.flush()
    return True


def received_money(attempt: PaymentAttempt, update: GatewayStatus | GatewayEvent) -> tuple[int, str] | None:
    """What a provider says it received for the attempt: (amount, currency), each the attempt's where
    the provider names none (an answer that only says "succeeded" confirms the payment we created, for
    the amount we asked). None when the amount it names is not one (zero, negative, not an integer)."""
    amount = update.amount_received if isinstance(update, GatewayStatus) else update.amount
    currency = update.currency if isinstance(update.currency, str) and update.currency else attempt.currency
    if amount is None:
        return attempt.amount, currency.upper()
    return (amount, currency.upper()) if valid_amount(amount) and len(currency) == 3 else None


def _method_name(method: object) -> str | None:
    """A method name a provider reported, if it fits our column (our names, or a provider's short code)."""
    return method if isinstance(method, str) and 0 < len(method) <= 30 and method.isprintable() else None


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
                     method=method, received_at=datetime.combine(received_on, time(12), tzinfo=UTC),
                     actor=actor)
    if payment is None:  # this key recorded it already
        payment = db.session.scalar(select(Payment).where(Payment.provider == "manual",
                                                          Payment.provider_payment_id == payment_id))
        assert payment is not None
    if note:
        record_event(invoice, "payment_note", actor, payment_id=payment_id, note=note[:500])
    return payment
