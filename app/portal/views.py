"""Customer pages: /l/<token> -> /b/<public id>, the step-up, the bill, its PDF and QR code."""

from __future__ import annotations

import logging
import time

from flask import Blueprint, Response, abort, current_app, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from sqlalchemy import select, text
from sqlalchemy.orm import undefer

from app.billing.corrections import credit_notes
from app.billing.models import Invoice, InvoiceStatus
from app.billing.services import payments_received
from app.billing.transfer import epc_payload, epc_qr_svg, transfer_details
from app.creditors.models import Creditor
from app.debt_collection.services import active_case
from app.errors import InvalidData
from app.extensions import db, limiter
from app.i18n import LOCALE_NAMES, SUPPORTED_LOCALES, normalise_locale, select_locale
from app.links.models import AccessLink
from app.links.services import get_signer, record_open, record_step_up_failure, resolve_token
from app.models import utcnow
from app.payments.gateways.base import GatewayError, PaymentStatus
from app.payments.models import PaymentAttempt
from app.payments.providers import PayOption, gateways_for, pay_options, payment_gateway
from app.payments.receipts import find_receipt, receipt_ref_for_attempt, receipt_refs
from app.payments.services import apply_status, payment_amount, start_payment
from app.portal import grants
from app.portal.forms import PayForm, StepUpForm
from app.portal.page_cache import cached_page
from app.portal.services import BillAccess, bill_access, check_step_up, due_state, load_bill, local_today, visible_lines
from app.resolutions.services import self_service
from app.security import ensure_csrf_secret
from app.support.services import threads_for

bp = Blueprint("portal", __name__)
log = logging.getLogger(__name__)


@bp.before_request
def language_switch():
    """?lang=xx is the explicit switch; it wins over every other source for this browser."""
    g.no_store = True
    lang = normalise_locale(request.args.get("lang")) if request.query_string else None
    if lang:
        session["locale"] = lang


@bp.app_context_processor
def _locales():
    return {"supported_locales": SUPPORTED_LOCALES, "locale_names": LOCALE_NAMES}


def unavailable(creditor: Creditor | None = None):
    """The one neutral answer for forged, expired, revoked, unknown and closed links."""
    if creditor is not None:
        g.creditor_locale = creditor.default_locale
    version = (creditor.id, creditor.updated_at) if creditor is not None else None
    html = cached_page(
        ("unavailable", select_locale(), version),
        lambda: render_template("portal/unavailable.html", creditor=creditor),
    )
    return html, 404


def _link_limit() -> str:
    return current_app.config["LINK_RATE_LIMIT"]


def _step_up_limit() -> str:
    return current_app.config["STEP_UP_RATE_LIMIT"]


@bp.get("/l/<token>")
@limiter.limit(_link_limit)
def open_link(token: str):
    """Check the signed link, note that it was opened, and send the browser to the bill."""
    resolution = resolve_token(token, signer=get_signer())
    if not resolution.ok:
        return unavailable(resolution.creditor)
    if record_open(resolution, interval_minutes=current_app.config["LINK_OPEN_EVENT_INTERVAL_MINUTES"]):
        db.session.commit()
    grants.add(session, resolution.public_id, resolution.link_id, int(time.time()))
    ensure_csrf_secret()  # this response writes the cookie anyway; the bill's pay form needs it
    # A bare 303: browsers follow Location and never show redirect()'s HTML body.
    return Response(status=303, headers={"Location": _bill_path(resolution.public_id)})


def _bill_path(public_id: str) -> str:
    """`url_for("portal.bill", public_id=...)` for the link's redirect, without url_for's generic
    work (a tenth of the request); public ids are URL-safe base64. A test pins the two together."""
    return f"{request.script_root}/b/{public_id}"


def granted(public_id: str) -> tuple[BillAccess | None, Response | None]:
    """Access to the bill if this browser holds a live grant for it; else the answer to send."""
    grant = grants.find(session, public_id, int(time.time()), current_app.config["GRANT_MAX_AGE_HOURS"])
    if grant is None:
        return None, unavailable()
    access = bill_access(public_id)
    if access is None:
        return None, unavailable()
    if access.is_closed:
        return None, unavailable(db.session.get(Creditor, access.creditor_id))
    g.customer_locale = access.customer_locale
    g.creditor_locale = access.creditor_locale
    if access.step_up_mode != "none" and not grant.get("v"):
        return None, redirect(url_for("portal.verify", public_id=public_id), code=303)
    return access, None


def granted_bill(public_id: str) -> tuple[Invoice | None, Response | None]:
    """The whole invoice (creditor, customer, lines) if this browser may see it; else the answer."""
    access, answer = granted(public_id)
    if answer is not None:
        return None, answer
    invoice = load_bill_or_404(public_id)
    return invoice, None


def load_bill_or_404(public_id: str) -> Invoice:
    """The whole invoice, after `granted` let the browser in (gone since: the neutral 404)."""
    invoice = load_bill(public_id)
    if invoice is None:
        abort(404)
    return invoice


def _bill_context(invoice: Invoice, today, due_now: int | None = None) -> dict:
    """What the page and the PDF show: the same facts in the same words. `due_now`: what the
    customer pays now when it is not the balance (an instalment, the undisputed part)."""
    creditor = invoice.creditor
    return {
        "invoice": invoice,
        "creditor": creditor,
        "customer": invoice.customer,
        "lines": invoice.lines,
        "hidden_lines": 0,
        "fees": [line for line in invoice.lines if line.is_fee],
        "payments": payments_received(invoice.id) if invoice.amount_paid else [],
        "credit_notes": credit_notes(invoice.id) if invoice.credited else [],
        "state": due_state(invoice, today),
        "transfer": transfer_details(creditor, invoice, due_now),
    }


@bp.get("/b/<public_id>")
def bill(public_id: str):
    """The bill page (rendered once per version, language and day; see portal.page_cache)."""
    access, answer = granted(public_id)
    if answer is not None:
        return answer
    today = local_today(access.country, utcnow())

    def render() -> str:
        invoice = load_bill_or_404(public_id)
        context = bill_page_context(invoice, today, has_resolutions=access.has_resolutions,
                                    has_threads=access.has_threads)
        origins = tuple(dict.fromkeys(origin for option in context["pay_options"]
                                      for origin in option.redirect_origins))
        if origins:  # the pay form leads (a 303 after the POST) to a provider's hosted page
            g.csp_extra = {"form-action": origins}
        return render_template("portal/bill.html", **context)

    return cached_page(("bill", public_id, select_locale(), today, access.version), render)


def _self_service(invoice: Invoice, today, resolutions=None):
    """The bill's self-service state, and its collection case when it is in collection."""
    case = active_case(invoice.id) if invoice.status == InvoiceStatus.IN_COLLECTION else None
    return self_service(invoice, today, resolutions, collection_payable=bool(case and case.keep_payments)), case


def bill_page_context(invoice: Invoice, today, *, has_resolutions: bool = True, has_threads: bool = True) -> dict:
    """Everything the bill page shows (also for the back office's preview of it)."""
    found, case = _self_service(invoice, today, None if has_resolutions else [])
    context = _bill_context(invoice, today, found.payable_now)
    context["lines"], context["hidden_lines"] = visible_lines(invoice.lines)
    context["found"], context["threads"] = found, threads_for(invoice.id) if has_threads else []
    context["pay_amount"], context["pay_reason"] = found.payable_now, found.pay_reason
    context["pay_options"] = _pay_options(invoice) if found.payable_now else []
    context["receipts"] = receipt_refs(invoice.id) if invoice.amount_paid else {}
    context["collection"] = case
    return context


@bp.get("/b/<public_id>/lines")
def all_lines(public_id: str):
    """Every line of a long bill (the bill page shows the first ones and every fee)."""
    access, answer = granted(public_id)
    if answer is not None:
        return answer

    def render() -> str:
        invoice = load_bill_or_404(public_id)
        return render_template("portal/lines.html", invoice=invoice, creditor=invoice.creditor, lines=invoice.lines)

    return cached_page(("lines", public_id, select_locale(), access.version), render)


def _pay_limit() -> str:
    return current_app.config["PAY_RATE_LIMIT"]


@bp.post("/b/<public_id>/pay")
@limiter.limit(_pay_limit)
def pay(public_id: str):
    """Start paying with the chosen provider and send the customer to it (POST-redirect-GET)."""
    access, answer = granted(public_id)
    if answer is not None:
        return answer
    invoice = load_bill_or_404(public_id)
    form = PayForm()
    option = next((o for o in _pay_options(invoice) if o.provider == form.provider.data), None)
    if not form.validate_on_submit() or option is None:
        return _payment_problem(invoice, "invalid", 422)
    gateway = option.gateway
    due_now = _self_service(invoice, local_today(access.country, utcnow()))[0].payable_now
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
    db.session.commit()
    if attempt.redirect_url:  # a hosted page: the simulator, an Adyen payment link
        return redirect(attempt.redirect_url, code=303)
    return redirect(url_for("portal.checkout", public_id=public_id, attempt_ref=attempt.public_ref), code=303)


def _pay_options(invoice: Invoice) -> list[PayOption]:
    customer = invoice.customer
    return pay_options(invoice.creditor, invoice.currency, customer.country or invoice.creditor.country)


def _granted_attempt(public_id: str, attempt_ref: str) -> tuple[PaymentAttempt | None, Response | None]:
    """The bill's payment attempt with this ref, for a session holding the bill's grant; else the
    answer to give (the step-up, or the neutral page for another bill's attempt)."""
    access, answer = granted(public_id)
    if answer is not None:
        return None, answer
    attempt = db.session.scalar(
        select(PaymentAttempt).where(PaymentAttempt.public_ref == attempt_ref, PaymentAttempt.invoice_id == access.invoice_id)
    )
    return (attempt, None) if attempt is not None else (None, unavailable())


@bp.get("/b/<public_id>/checkout/<attempt_ref>")
def checkout(public_id: str, attempt_ref: str):
    """Our own pay step for embedded flows: the provider's fields (Stripe's Payment Element, Adyen's
    Drop-in) in their frames on our page, so no card number ever reaches our server. The CSP lets in
    exactly this provider's origins; nothing is stored (the page holds the payment's client secret)."""
    attempt, answer = _granted_attempt(public_id, attempt_ref)
    if answer is not None:
        return answer
    invoice = attempt.invoice
    gateway = gateways_for(invoice.creditor).get(attempt.provider)  # the creditor's flow: the page it chose
    if gateway is None or not attempt.client_config or not attempt.is_live:
        return redirect(url_for("portal.paid", public_id=public_id, attempt_ref=attempt_ref), code=303)
    g.csp_extra, g.no_store = gateway.content_security(), True
    return render_template(
        f"payments/checkout_{attempt.provider}.html", invoice=invoice, creditor=invoice.creditor, attempt=attempt,
        client=attempt.client_config,
        return_url=_absolute(invoice, url_for("portal.paid", public_id=public_id, attempt_ref=attempt_ref)),
    )


@bp.get("/b/<public_id>/paid/<attempt_ref>")
def paid(public_id: str, attempt_ref: str):
    """Back from the provider: ask it what happened (the query string is never trusted) and say so."""
    attempt, answer = _granted_attempt(public_id, attempt_ref)
    if answer is not None:
        return answer
    invoice = attempt.invoice
    found = payment_gateway(invoice.creditor.slug, attempt.provider)  # also a provider no longer offered
    if found is not None and attempt.provider_ref and attempt.status not in PaymentStatus.FINAL:
        try:
            apply_status(attempt, found[1].status_on_return(attempt.provider_ref, request.args), actor="customer")
            db.session.commit()
        except GatewayError:
            db.session.rollback()
            log.warning("status of attempt %s unavailable", attempt.id, exc_info=True)
    receipt_ref = receipt_ref_for_attempt(attempt.id) if attempt.status == PaymentStatus.SUCCEEDED else None
    return render_template("payments/return.html", invoice=invoice, creditor=invoice.creditor, attempt=attempt,
                           receipt_ref=receipt_ref)


def _payment_problem(invoice: Invoice, kind: str, status: int):
    return render_template("payments/return.html", invoice=invoice, creditor=invoice.creditor, attempt=None,
                           problem=kind), status


def _absolute(invoice: Invoice, path: str) -> str:
    """A URL on the creditor's portal domain or PORTAL_BASE_URL, never from the Host header."""
    return f"{(invoice.creditor.portal_base_url or current_app.config['PORTAL_BASE_URL']).rstrip('/')}{path}"


@bp.route("/b/<public_id>/verify", methods=["GET", "POST"])
@limiter.limit(_step_up_limit, methods=["POST"])
def verify(public_id: str):
    """The light step-up some creditors ask for before the bill is shown."""
    grant = grants.find(session, public_id, int(time.time()), current_app.config["GRANT_MAX_AGE_HOURS"])
    invoice = load_bill(public_id) if grant else None
    if invoice is None or invoice.is_closed:
        return unavailable(invoice.creditor if invoice else None)
    creditor = invoice.creditor
    g.customer_locale = invoice.customer.preferred_locale
    g.creditor_locale = creditor.default_locale
    if creditor.step_up_mode == "none" or grant.get("v"):
        return redirect(url_for("portal.bill", public_id=public_id), code=303)
    link = db.session.get(AccessLink, grant["l"])
    if link is None or link.revoked_at is not None or link.invoice_id != invoice.id:
        return unavailable(creditor)
    form = StepUpForm()
    max_attempts = current_app.config["STEP_UP_MAX_ATTEMPTS"]
    if form.validate_on_submit():
        if check_step_up(creditor.step_up_mode, invoice.customer, form.answer.data):
            grants.mark_verified(session, public_id)
            return redirect(url_for("portal.bill", public_id=public_id), code=303)
        locked = record_step_up_failure(link, max_attempts=max_attempts)
        db.session.commit()
        if locked:
            return unavailable(creditor)
        form.answer.errors.append(_("That does not match what %(creditor)s has on file.", creditor=creditor.name))
    status = 422 if request.method == "POST" else 200
    return render_template(
        "portal/verify.html", invoice=invoice, creditor=creditor, form=form, mode=creditor.step_up_mode,
        attempts_left=max_attempts - link.step_up_failures,
    ), status


@bp.get("/b/<public_id>/invoice.pdf")
def invoice_pdf(public_id: str):
    """The invoice as a PDF, in the same brand and language as the page."""
    invoice, answer = granted_bill(public_id)
    if answer is not None:
        return answer
    return invoice_pdf_response(invoice, local_today(invoice.creditor.country, utcnow()))


def invoice_pdf_response(invoice: Invoice, today) -> Response:
    """The invoice's PDF as a download, in the current locale (also for collection partners)."""
    from app.billing.pdf import render_invoice_pdf

    context = _bill_context(invoice, today)
    pdf = render_invoice_pdf(
        invoice, payments=context["payments"], state=context["state"], transfer=context["transfer"]
    )
    filename = f"invoice-{invoice.number}.pdf".replace("/", "-")
    return Response(
        pdf,
        mimetype="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@bp.get("/b/<public_id>/epc-qr.svg")
def epc_qr(public_id: str):
    """The EPC QR code for a SEPA transfer of what is due now (EUR only)."""
    invoice, answer = granted_bill(public_id)
    if answer is not None:
        return answer
    due_now = self_service(invoice, local_today(invoice.creditor.country, utcnow())).payable_now
    try:
        payload = epc_payload(invoice.creditor, invoice, due_now)
    except ValueError:
        abort(404)
    svg = epc_qr_svg(payload, title=_("QR code for a bank transfer"))
    return Response(svg, mimetype="image/svg+xml")


@bp.get("/brand/<slug>/logo")
def logo(slug: str):
    """A creditor's logo, from our own origin, cacheable for a year (the URL carries its version)."""
    creditor = db.session.scalar(select(Creditor).options(undefer(Creditor.logo)).where(Creditor.slug == slug))
    if creditor is None or not creditor.logo:
        abort(404)
    g.no_store = False
    response = Response(creditor.logo, mimetype=creditor.logo_mime)
    response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    response.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; sandbox"
    return response


@bp.get("/healthz")
def healthz():
    """Liveness and database check for the load balancer."""
    db.session.execute(text("SELECT 1"))
    return {"status": "ok"}


# --- receipts ----------------------------------------------------------------------------------


@bp.get("/b/<public_id>/receipts/<payment_ref>")
def receipt(public_id: str, payment_ref: str):
    """A printable receipt for one payment of this bill (the same grant as the bill; another bill's: 404)."""
    access, answer = granted(public_id)
    if answer is not None:
        return answer
    found = find_receipt(access.invoice_id, payment_ref)
    if found is None:
        return unavailable()
    return render_template(
        "portal/receipt.html", receipt=found, payment=found.payment, invoice=found.invoice, creditor=found.creditor,
    )
