"""Paying a bill: start an attempt with the chosen provider, our own pay step for embedded flows,
and the return from the provider (whose answer is asked for, never read from the query string)."""

from __future__ import annotations

import logging

from flask import current_app, g, redirect, render_template, request, url_for

from app.access.guard import bill_required, load_bill_or_404, unavailable_within
from app.access.services import BillAccess
from app.bill_page import pay_options_for, self_service_now
from app.billing.models import Invoice
from app.billing.transfer import transfer_details
from app.core.dates import local_today
from app.errors import InvalidData
from app.extensions import db, limiter
from app.i18n import select_locale
from app.models import utcnow
from app.payments.declines import decline_words
from app.payments.gateways.base import GatewayError, PaymentStatus
from app.payments.models import PaymentAttempt
from app.payments.providers import gateway_for, payment_gateway
from app.payments.receipts import payment_for_attempt
from app.payments.services import (
    apply_status,
    attempt_in_progress,
    attempt_with_bill,
    payment_amount,
    start_payment,
)
from app.portal.forms import PayForm
from app.portal.views import bp

log = logging.getLogger(__name__)


def _pay_limit() -> str:
    return current_app.config["PAY_RATE_LIMIT"]


@bp.post("/b/<public_id>/pay")
@limiter.limit(_pay_limit)
@bill_required
def pay(public_id: str, access: BillAccess):
    """Start paying with the chosen provider and send the customer to it (POST-redirect-GET)."""
    invoice = load_bill_or_404(public_id)
    form = PayForm()
    option = next((o for o in pay_options_for(invoice) if o.provider == form.provider.data), None)
    if not form.validate_on_submit() or option is None:
        return _payment_problem(invoice, "invalid", 422)
    in_progress = attempt_in_progress(invoice.id)
    if in_progress is not None:  # the bill's page offered no payment: paying again could take it twice
        return render_template("payments/return.html", invoice=invoice, creditor=invoice.creditor, attempt=None,
                               problem="in_progress", in_progress=in_progress), 409
    gateway = option.gateway
    due_now = self_service_now(invoice, local_today(access.country, utcnow()))[0].payable_now
    if due_now is None:  # paused with nothing payable (a dispute of the whole bill, where the creditor holds it all)
        return _payment_problem(invoice, "amount", 422)
    try:
        amount = payment_amount(invoice, form.amount_minor(invoice.currency), due_now=due_now)
        attempt = start_payment(
            invoice, gateway, amount=amount, locale=select_locale(), methods=option.methods,
            return_url=lambda ref: _absolute(invoice, url_for("portal.paid", public_id=public_id, attempt_ref=ref)),
            cancel_url=_absolute(invoice, url_for("portal.bill", public_id=public_id)),
        )
    except InvalidData:
        db.session.rollback()
        return _payment_problem(invoice, "amount", 422)
    except GatewayError:
        db.session.rollback()
        log.warning("payment could not start for invoice %s at %s", invoice.id, gateway.name, exc_info=True)
        return _payment_problem(invoice, "unavailable", 503)
    # Read before the commit, which expires what the session holds: after it, reading them again would
    # cost a transaction of its own (BEGIN, SELECT, ROLLBACK) for what this request has just written.
    hosted_page, attempt_ref = attempt.redirect_url, attempt.public_ref
    db.session.commit()
    if hosted_page:  # a hosted page: the simulator, an Adyen payment link
        return redirect(hosted_page, code=303)
    return redirect(url_for("portal.checkout", public_id=public_id, attempt_ref=attempt_ref), code=303)


def _attempt_of(access: BillAccess, attempt_ref: str) -> PaymentAttempt | None:
    """The bill's payment attempt with this ref (another bill's: None), with its invoice and creditor."""
    return attempt_with_bill(PaymentAttempt.public_ref == attempt_ref, PaymentAttempt.invoice_id == access.invoice_id)


@bp.get("/b/<public_id>/checkout/<attempt_ref>")
@bill_required
def checkout(public_id: str, access: BillAccess, attempt_ref: str):
    """Our own pay step for embedded flows: the provider's fields (Stripe's Payment Element, Adyen's
    Drop-in) in their frames on our page, so no card number ever reaches our server. The CSP lets in
    exactly this provider's origins; nothing is stored (the page holds the payment's client secret)."""
    attempt = _attempt_of(access, attempt_ref)
    if attempt is None:
        return unavailable_within(access)
    invoice = attempt.invoice
    gateway = gateway_for(invoice.creditor, attempt.provider, livemode=invoice.livemode)  # the flow it chose
    if gateway is None or not attempt.client_config or not attempt.is_live:
        return redirect(url_for("portal.paid", public_id=public_id, attempt_ref=attempt_ref), code=303)
    g.csp_extra, g.no_store = gateway.content_security(), True
    return render_template(
        f"payments/checkout_{attempt.provider}.html", invoice=invoice, creditor=invoice.creditor, attempt=attempt,
        client=attempt.client_config,
        return_url=_absolute(invoice, url_for("portal.paid", public_id=public_id, attempt_ref=attempt_ref)),
    )


@bp.get("/b/<public_id>/paid/<attempt_ref>")
@bill_required
def paid(public_id: str, access: BillAccess, attempt_ref: str):
    """Back from the provider: ask it what happened (the query string is never trusted) and say so.
    While the provider has not confirmed, the page asks again by itself (a meta refresh; with
    JavaScript, `payment_status` is polled) until the payment succeeds, fails or expires."""
    attempt = _attempt_of(access, attempt_ref)
    if attempt is None:
        return unavailable_within(access)
    invoice = attempt.invoice
    _ask_provider(attempt)
    payment = payment_for_attempt(attempt.id) if attempt.status == PaymentStatus.SUCCEEDED else None
    context = {"invoice": invoice, "creditor": invoice.creditor, "attempt": attempt, "payment": payment,
               "receipt_ref": payment.public_ref if payment else None, "waiting": _waiting(attempt)}
    if attempt.status in (PaymentStatus.FAILED, PaymentStatus.CANCELLED) or _expired(attempt):
        context.update(_other_ways(invoice, access))
        context["decline"] = decline_words(attempt.failure_reason) if attempt.status == PaymentStatus.FAILED else None
    return render_template("payments/return.html", refresh_seconds=REFRESH_SECONDS, poll_seconds=POLL_SECONDS,
                           **context)


#: How often the waiting page asks again by itself, without JavaScript (a meta refresh); with it, it polls
#: `payment_status` every POLL_SECONDS and moves on as soon as the payment is over.
REFRESH_SECONDS = 5
POLL_SECONDS = 2


@bp.get("/b/<public_id>/paid/<attempt_ref>/status")
@bill_required
def payment_status(public_id: str, access: BillAccess, attempt_ref: str):
    """Whether the payment is still waiting for the provider (the waiting page's script polls this)."""
    attempt = _attempt_of(access, attempt_ref)
    if attempt is None:
        return {"error": "not_found"}, 404
    _ask_provider(attempt)
    return {"waiting": _waiting(attempt)}


def _ask_provider(attempt: PaymentAttempt) -> None:
    """Bring the attempt up to date with what its provider says now (also a provider no longer offered)."""
    found = payment_gateway(attempt.invoice.creditor.slug, attempt.provider, livemode=attempt.invoice.livemode)
    if found is not None and attempt.provider_ref and attempt.status not in PaymentStatus.FINAL:
        try:
            apply_status(attempt, found[1].status_on_return(attempt.provider_ref, request.args), actor="customer")
            db.session.commit()
        except GatewayError:
            db.session.rollback()
            log.warning("status of attempt %s unavailable", attempt.id, exc_info=True)


def _expired(attempt: PaymentAttempt) -> bool:
    return attempt.status not in PaymentStatus.FINAL and not attempt.is_live


def _waiting(attempt: PaymentAttempt) -> bool:
    return attempt.status not in PaymentStatus.FINAL and attempt.is_live


def _other_ways(invoice: Invoice, access: BillAccess) -> dict:
    """After a failed payment: what "try again" pays (the amount due now) and the bank transfer details."""
    found = self_service_now(invoice, local_today(access.country, utcnow()))[0]
    due_now = found.payable_now
    options = pay_options_for(invoice) if due_now else []
    return {"retry_amount": due_now, "retry_options": options, "found": found,
            "transfer": transfer_details(invoice.creditor, invoice, due_now) if due_now else None}


def _payment_problem(invoice: Invoice, kind: str, status: int) -> tuple[str, int]:
    return render_template("payments/return.html", invoice=invoice, creditor=invoice.creditor, attempt=None,
                           problem=kind), status


def _absolute(invoice: Invoice, path: str) -> str:
    """A URL on the creditor's portal domain or PORTAL_BASE_URL, never from the Host header."""
    return f"{(invoice.creditor.portal_base_url or current_app.config['PORTAL_BASE_URL']).rstrip('/')}{path}"


