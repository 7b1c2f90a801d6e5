"""The link, the step-up, the bill page and what hangs off it: its lines, PDF, QR code and receipts."""

from __future__ import annotations

import time

from flask import Response, abort, current_app, g, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import undefer

from app.access import grants
from app.access.guard import (
    bill_required,
    load_bill_or_404,
    no_grant,
    renewal_invoice_id,
    unavailable,
    unavailable_within,
)
from app.access.services import BillAccess, check_step_up, load_bill, other_grants
from app.bill_page import bill_page_context, receipt_content
from app.billing.credit_note_pdf import credit_note_for, credit_note_pdf_response
from app.billing.models import Invoice
from app.billing.pdf import invoice_pdf_response
from app.billing.transfer import epc_payload, epc_qr_svg
from app.core.dates import local_today
from app.creditors.models import Creditor
from app.dunning.outlook import default_notice_date
from app.dunning.renewal import send_new_link
from app.extensions import db, limiter
from app.i18n import select_locale
from app.links.models import AccessLink
from app.links.services import Resolution, get_signer, record_open, record_step_up_failure, resolve_token
from app.models import utcnow
from app.page_cache import cached_page
from app.payments.models import PaymentAttempt
from app.payments.receipts import find_receipt
from app.payments.receipts import receipt_pdf as receipt_pdf_bytes
from app.portal.bill_gate import bill_page_key
from app.portal.forms import StepUpForm
from app.portal.gate import verified_key
from app.portal.views import bp
from app.resolutions.services import self_service
from app.security import ensure_csrf_secret


def _link_limit() -> str:
    return current_app.config["LINK_RATE_LIMIT"]


def _step_up_limit() -> str:
    return current_app.config["STEP_UP_RATE_LIMIT"]


def _pdf_limit() -> str:
    return current_app.config["PDF_RATE_LIMIT"]


def _new_link_limit() -> str:
    return current_app.config["NEW_LINK_RATE_LIMIT"]


@bp.get("/l/<token>")
@limiter.limit(_link_limit)
def open_link(token: str):
    """Check the signed link, note that it was opened, and send the browser to the bill."""
    return admit(resolve_token(token, signer=get_signer(), verified_key=verified_key(request.environ, token)))


def admit(resolution: Resolution) -> ResponseReturnValue:
    """A link or a letter's code resolved: the neutral page (with "send me a new link" where the bill
    is known), or the opening noted, the grants given and the browser sent to the bill."""
    if not resolution.ok:
        return unavailable(resolution.creditor, renew_invoice_id=resolution.named_invoice_id)
    assert resolution.public_id and resolution.link_id and resolution.expires_at  # set when ok
    if record_open(resolution, interval_minutes=current_app.config["LINK_OPEN_EVENT_INTERVAL_MINUTES"]):
        db.session.commit()
    # The customer's other bills owed to the creditor open with it (a reminder about several carries one link).
    others = other_grants(resolution.customer_id, resolution.invoice_id, grants.MAX_OTHERS) \
        if resolution.other_bills else []
    grants.add(session, resolution.public_id, resolution.link_id, int(time.time()),
               link_revocations=resolution.link_revocations, expires_ts=int(resolution.expires_at.timestamp()),
               others=others, source=(resolution.invoice_id, resolution.link_revocations), channel=resolution.channel)
    ensure_csrf_secret()  # this response writes the cookie anyway; the bill's pay form needs it
    # A bare 303: browsers follow Location and never show redirect()'s HTML body. The app's own
    # response class (Flask converts any other with `force_type`), its content type given (werkzeug
    # would look for one in the headers first).
    response = current_app.response_class(status=303, content_type="text/html; charset=utf-8")
    response.headers.add("Location", _bill_path(resolution.public_id))
    return response


def _bill_path(public_id: str) -> str:
    """`url_for("portal.bill", public_id=...)` for the link's redirect, without url_for's generic
    work (a tenth of the request); public ids are URL-safe base64. A test pins the two together."""
    return f"{request.script_root}/b/{public_id}"


@bp.post("/new-link")
@limiter.limit(_new_link_limit)
def new_link():
    """"Send me a new link", from the neutral page of an expired or revoked link: a new one goes to the
    contact points on file (`dunning.renewal`), and the answer is the same whatever happened (sent,
    nothing to send, the bill closed or unknown, the bill's daily allowance used up)."""
    invoice_id = renewal_invoice_id()
    invoice = db.session.get(Invoice, invoice_id) if invoice_id is not None else None
    creditor = invoice.creditor if invoice is not None else None
    if invoice is not None:
        config = current_app.config
        send_new_link(invoice, now=utcnow(), per_day=config["NEW_LINK_PER_BILL_PER_DAY"],
                      ttl_days=config["LINK_DEFAULT_TTL_DAYS"], signer=get_signer(),
                      base_url=config["PORTAL_BASE_URL"])
        db.session.commit()
        g.creditor_locale = creditor.default_locale
    return render_template("portal/new_link.html", creditor=creditor)


@bp.get("/b/<public_id>")
@bill_required
def bill(public_id: str, access: BillAccess):
    """The bill page (rendered once per version, language and day; see app.page_cache). A cached page
    is mostly served by `portal.bill_gate`, before Flask, with the same checks."""
    now = utcnow()
    today = local_today(access.country, now)
    # A payment the provider has not confirmed yet changes the page (and ends by expiring, which no
    # event records): its state is part of the cached page's key (`bill_page_key`).
    progress = access.payment_in_progress(now)
    channel = grants.channel(session, public_id)  # content blocks may target it: part of the key too

    def render() -> str:
        invoice = load_bill_or_404(public_id)
        in_progress = db.session.get(PaymentAttempt, progress[0]) if progress else None
        context = bill_page_context(invoice, today, has_resolutions=access.has_resolutions,
                                    has_threads=access.has_threads, other_bills=access.other_bills > 0,
                                    in_progress=in_progress, channel=channel)
        origins = tuple(dict.fromkeys(origin for option in context["pay_options"]
                                      for origin in option.redirect_origins))
        if origins:  # the pay form leads (a 303 after the POST) to a provider's hosted page
            g.csp_extra = {"form-action": origins}
        return render_template("portal/bill.html", **context)

    return cached_page(bill_page_key(public_id, select_locale(), access, now, channel), render)


@bp.get("/b/<public_id>/lines")
@bill_required
def all_lines(public_id: str, access: BillAccess):
    """Every line of a long bill (the bill page shows the first ones and every fee)."""

    def render() -> str:
        invoice = load_bill_or_404(public_id)
        return render_template("portal/lines.html", invoice=invoice, creditor=invoice.creditor, lines=invoice.lines)

    return cached_page(("lines", public_id, select_locale(), access.version), render)


@bp.route("/b/<public_id>/verify", methods=["GET", "POST"])
@limiter.limit(_step_up_limit, methods=["POST"])
def verify(public_id: str):
    """The light step-up some creditors ask for before the bill is shown."""
    grant = grants.find(session, public_id, int(time.time()), current_app.config["GRANT_MAX_AGE_HOURS"])
    invoice = load_bill(public_id) if grant else None
    source_id = grants.source_of(grant) if grant else None
    source = db.session.get(Invoice, source_id) if source_id is not None else None
    source_revocations = source.link_revocations if source is not None and invoice is not None \
        and source.customer_id == invoice.customer_id else None
    if grant is None:
        return no_grant(public_id)
    if invoice is None or invoice.is_closed or not grants.current(grant, invoice.link_revocations,
                                                                  source_revocations):
        return unavailable(invoice.creditor if invoice else None)
    creditor = invoice.creditor
    g.customer_locale = invoice.customer.preferred_locale
    g.creditor_locale = creditor.default_locale
    if creditor.step_up_mode == "none" or grant.get("v"):
        return redirect(url_for("portal.bill", public_id=public_id), code=303)
    link = db.session.get(AccessLink, grant["l"])
    if link is None or link.revoked_at is not None or link.invoice_id != (source_id or invoice.id):
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
@limiter.limit(_pdf_limit)
@bill_required
def invoice_pdf(public_id: str, access: BillAccess):
    """The invoice as a PDF, in the same brand and language as the page (rendered once per version)."""
    invoice = load_bill_or_404(public_id)
    today = local_today(access.country, utcnow())
    held = self_service(invoice, today).held if access.has_resolutions else 0
    return invoice_pdf_response(invoice, today, access.document_version,
                                default_notice=default_notice_date(invoice), held=held)


@bp.get("/b/<public_id>/credit-notes/<path:number>")
@limiter.limit(_pdf_limit)
@bill_required
def credit_note_pdf(public_id: str, number: str, access: BillAccess):
    """One of the bill's credit notes as a PDF, in the page's language (cached: a note never changes)."""
    invoice = load_bill_or_404(public_id)
    note = credit_note_for(invoice, number)
    if note is None:
        abort(404)
    return credit_note_pdf_response(note, invoice)


@bp.get("/b/<public_id>/epc-qr.svg")
@bill_required
def epc_qr(public_id: str, access: BillAccess):
    """The EPC QR code for a SEPA transfer of what is due now (EUR only)."""
    invoice = load_bill_or_404(public_id)
    due_now = self_service(invoice, local_today(invoice.creditor.country, utcnow())).payable_now
    try:
        payload = epc_payload(invoice.creditor, invoice, due_now)
    except ValueError:
        abort(404)
    svg = epc_qr_svg(payload, title=_("QR code for a bank transfer"))
    return Response(svg, mimetype="image/svg+xml")


@bp.get("/b/<public_id>/receipts/<payment_ref>")
@bill_required
def receipt(public_id: str, access: BillAccess, payment_ref: str):
    """A printable receipt for one payment of this bill (the same grant as the bill; another bill's: 404)."""
    found = find_receipt(access.invoice_id, payment_ref)
    if found is None:
        return unavailable_within(access)
    invoice = found.invoice
    content = receipt_content(invoice, local_today(access.country, utcnow()),
                              channel=grants.channel(session, public_id))
    return render_template(
        "portal/receipt.html", receipt=found, payment=found.payment, invoice=invoice, creditor=found.creditor,
        content=content,
    )


@bp.get("/b/<public_id>/receipts/<payment_ref>/receipt.pdf")
@limiter.limit(_pdf_limit)
@bill_required
def receipt_pdf(public_id: str, access: BillAccess, payment_ref: str):
    """The receipt as a PDF, in the page's language and the creditor's brand (rendered once, then cached)."""
    found = find_receipt(access.invoice_id, payment_ref)
    if found is None:
        return unavailable()
    filename = f"receipt-{found.number}.pdf"
    return Response(receipt_pdf_bytes(found), mimetype="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


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
