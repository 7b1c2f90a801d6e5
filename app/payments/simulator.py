"""The simulator's provider side: its records in our database, and its hosted page (test mode)."""

from __future__ import annotations

from dataclasses import replace

from flask import Blueprint, abort, g, redirect, render_template, request
from sqlalchemy import select

from app.creditors.models import Creditor
from app.extensions import db, limiter
from app.payments.gateways.base import GatewayError
from app.payments.gateways.simulator import OUTCOMES, SimulatedPayment
from app.payments.models import PaymentAttempt, SimulatorRecord

bp = Blueprint("simulator", __name__)


class DatabaseSimulatorStore:
    """`SimulatorStore` on the `simulator_payments` table (the session of the current request or job)."""

    def _record(self, **where) -> SimulatorRecord | None:
        column, value = next(iter(where.items()))
        return db.session.scalar(select(SimulatorRecord).where(getattr(SimulatorRecord, column) == value))

    @staticmethod
    def _payment(record: SimulatorRecord | None) -> SimulatedPayment | None:
        if record is None:
            return None
        return SimulatedPayment(
            ref=record.ref, idempotency_key=record.idempotency_key, amount=record.amount, currency=record.currency,
            description=record.description, return_url=record.return_url, cancel_url=record.cancel_url,
            status=record.status, method=record.method, refunded=record.refunded,
        )

    def by_idempotency_key(self, key: str) -> SimulatedPayment | None:
        return self._payment(self._record(idempotency_key=key))

    def get(self, ref: str) -> SimulatedPayment | None:
        return self._payment(self._record(ref=ref))

    def create(self, payment: SimulatedPayment) -> None:
        db.session.add(SimulatorRecord(**vars(replace(payment))))
        db.session.flush()

    def update(self, ref: str, *, status=None, method=None, refunded=None) -> None:
        record = self._record(ref=ref)
        for name, value in (("status", status), ("method", method), ("refunded", refunded)):
            if value is not None:
                setattr(record, name, value)
        db.session.flush()


def _attempt_and_creditor(ref: str) -> tuple[PaymentAttempt, Creditor]:
    attempt = db.session.scalar(
        select(PaymentAttempt).where(PaymentAttempt.provider == "simulator", PaymentAttempt.provider_ref == ref)
    )
    if attempt is None:
        abort(404)
    return attempt, attempt.invoice.creditor


@bp.get("/simulator/<ref>")
def page(ref: str):
    """The simulator's hosted payment page, clearly marked as test mode."""
    from app.payments.providers import simulator_for

    g.no_store = True
    attempt, creditor = _attempt_and_creditor(ref)
    payment = simulator_for(creditor).store.get(ref)
    if payment is None:
        abort(404)
    g.creditor_locale = creditor.default_locale
    return render_template("payments/simulator.html", payment=payment, creditor=creditor, outcomes=OUTCOMES)


@bp.post("/simulator/<ref>")
@limiter.limit("60 per minute")
def choose(ref: str):
    """The customer's choice: the simulator records it, notifies us (signed), and sends the customer back."""
    from app.payments.providers import simulator_for
    from app.payments.views import receive

    attempt, creditor = _attempt_and_creditor(ref)
    gateway = simulator_for(creditor)
    try:
        payment, body, headers = gateway.choose(ref, request.form.get("outcome", ""))
    except GatewayError:
        abort(404)
    db.session.commit()
    # The notification goes through the same verification as one from a real provider. It is
    # handed over in-process: an HTTP call to ourselves could wait forever on a single worker.
    receive("simulator", creditor.id, gateway, body, headers)
    target = payment.cancel_url if payment.status == "cancelled" else payment.return_url
    return redirect(target, code=303)
