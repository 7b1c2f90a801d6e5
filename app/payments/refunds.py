"""Money owed back to customers: what was paid beyond a bill's total, and refunds through the
provider or the creditor's bank. Adds and flushes; the caller commits."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select

from app.billing.models import Invoice
from app.billing.services import record_event
from app.errors import InvalidData
from app.extensions import db
from app.payments.gateways.base import Gateway, GatewayError
from app.payments.models import Payment, Refund
from app.payments.services import lock_invoice


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
        assert gateway is not None  # checked above
        result = gateway.refund(payment.provider_payment_id, amount, f"refund-{key}")
        refund.provider_refund_id, refund.status = result.refund_id, result.status
    if refund.status == "failed":
        raise GatewayError("the provider refused the refund", code="refund_failed")
    db.session.add(refund)
    payment.refund_due -= amount
    payment.refunded += amount
    if not invoice.is_closed and payment.mismatch is None:  # a payment to a closed invoice, or not what its
        # attempt asked for, was never counted in the invoice's amount paid
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


def owe_back_excess(invoice: Invoice, *, actor: str) -> int:
    """Make the payments' `refund_due` add up to what was paid beyond the total, newest payment
    first, each at most what it brought in and was not paid back. Returns what was added. Also
    the receiver of billing's `total_changed` (connected when the app is created)."""
    excess = invoice.amount_paid - invoice.total
    payments = list(db.session.scalars(
        select(Payment).where(Payment.invoice_id == invoice.id).order_by(Payment.received_at.desc(), Payment.id.desc())
    ))
    missing = excess - sum(p.refund_due for p in payments)
    added = 0
    for payment in payments:
        if missing <= 0:
            break
        room = payment.amount - payment.refunded - payment.refund_due
        share = min(room, missing)
        if share > 0:
            payment.refund_due += share
            missing -= share
            added += share
    if added:
        record_event(invoice, "refund_due", actor, amount=added, currency=invoice.currency, reason="credited")
    return added
