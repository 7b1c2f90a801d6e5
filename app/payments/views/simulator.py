"""The simulator's hosted page (test mode): the customer picks an outcome, the simulator notifies us."""

from __future__ import annotations

from flask import Blueprint, abort, g, redirect, render_template, request

from app.creditors.models import Creditor
from app.extensions import db, limiter
from app.payments.gateways.base import GatewayError
from app.payments.gateways.simulator import OUTCOMES
from app.payments.ingest import receive
from app.payments.models import PaymentAttempt
from app.payments.providers import simulator_for
from app.payments.services import attempt_with_bill

bp = Blueprint("simulator", __name__)


def _attempt_and_creditor(ref: str) -> tuple[PaymentAttempt, Creditor]:
    """The attempt and its bill's creditor, in one statement."""
    attempt = attempt_with_bill(PaymentAttempt.provider == "simulator", PaymentAttempt.provider_ref == ref)
    if attempt is None:
        abort(404)
    return attempt, attempt.invoice.creditor


@bp.get("/simulator/<ref>")
def page(ref: str):
    """The simulator's hosted payment page, clearly marked as test mode."""
    g.no_store = True
    _attempt, creditor = _attempt_and_creditor(ref)
    payment = simulator_for(creditor).store.get(ref)
    if payment is None:
        abort(404)
    g.creditor_locale = creditor.default_locale
    return render_template("payments/simulator.html", payment=payment, creditor=creditor, outcomes=OUTCOMES)


@bp.post("/simulator/<ref>")
@limiter.limit("60 per minute")
def choose(ref: str):
    """The customer's choice: the simulator records it, notifies us (signed), and sends the customer back."""
    _attempt, creditor = _attempt_and_creditor(ref)
    gateway, creditor_id = simulator_for(creditor), creditor.id  # the id before the commit expires it
    try:
        payment, body, headers = gateway.choose(ref, request.form.get("outcome", ""))
    except GatewayError:
        abort(404)
    db.session.commit()
    # The notification goes through the same verification as one from a real provider. It is
    # handed over in-process: an HTTP call to ourselves could wait forever on a single worker.
    receive("simulator", creditor_id, gateway, body, headers)
    db.session.commit()
    target = payment.cancel_url if payment.status == "cancelled" else payment.return_url
    return redirect(target, code=303)
