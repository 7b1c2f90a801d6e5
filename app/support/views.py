"""Contact support from the bill page: the form, the confirmation and thread, attachments.

Every page needs the bill's grant (`access.guard.bill_required`: the step-up, and the neutral
page for closed bills); a reference or attachment of another bill gets the neutral page too. Forms
post with CSRF, are rate limited per client, and may carry a file larger than the app's
MAX_CONTENT_LENGTH (security.accepts_uploads), so that one just over ATTACHMENT_MAX_BYTES gets
its error next to the field."""

from __future__ import annotations

import secrets
from datetime import date, datetime

from flask import Blueprint, abort, current_app, redirect, render_template, request, send_file, url_for
from sqlalchemy import select

from app.access.guard import bill_required, load_bill_or_404, unavailable
from app.access.services import BillAccess
from app.billing.models import Invoice
from app.core.dates import local_today
from app.errors import IllegalTransition, InvalidData
from app.extensions import db, limiter
from app.i18n import language_switch, select_locale
from app.models import utcnow
from app.security import SHOWING, accepts_uploads
from app.support import services
from app.support.attachments import attachment_path, read_upload
from app.support.emails import callback_words, topic_label, window_label
from app.support.forms import ContactForm, MessageForm, show_problems
from app.support.models import TOPICS, Attachment, RequestStatus, SupportRequest

bp = Blueprint("support", __name__)
bp.before_request(language_switch)  # ?lang=xx, and no-store, as on every customer page
# The words of a thread, which the bill page and the back office show too.
bp.add_app_template_global(topic_label)
bp.add_app_template_global(window_label)
bp.add_app_template_global(callback_words)
bp.add_app_template_global(RequestStatus.label_of, "request_status_label")


@bp.app_template_global()
def local_day(moment, country: str) -> date:
    """The creditor's date of a moment stored in UTC (when a message was written)."""
    return local_today(country, moment)


def _limit() -> str:
    return current_app.config["SELF_SERVICE_RATE_LIMIT"]


def _upload_settings() -> tuple[int, str]:
    return current_app.config["ATTACHMENT_MAX_BYTES"], current_app.config["ATTACHMENT_DIR"]


def _contact_page(invoice: Invoice, form: ContactForm, now: datetime, status: int = 200):
    """The form, offering the call-back windows open now (the service checks the choice against the same)."""
    windows = services.callback_windows(invoice, now)
    return render_template(
        "support/contact.html", invoice=invoice, creditor=invoice.creditor, form=form.with_choices(windows),
        message_max=services.MESSAGE_MAX,
    ), status


@bp.route("/b/<public_id>/contact", methods=["GET", "POST"])
@limiter.limit(_limit, methods=["POST"])
@accepts_uploads
@bill_required
def contact(public_id: str, access: BillAccess):
    """Write to the creditor about this bill: a topic, a message, how to answer, a file."""
    invoice = load_bill_or_404(public_id)
    now = utcnow()
    today = local_today(access.country, now)
    form = ContactForm()
    if request.method in SHOWING:
        form.submission.data = secrets.token_urlsafe(16)
        form.topic.data = request.args.get("topic") if request.args.get("topic") in TOPICS else None
        form.email.data, form.phone.data = invoice.customer.email, invoice.customer.phone
        return _contact_page(invoice, form, now)
    if not form.validate_on_submit():
        abort(400)
    max_bytes, directory = _upload_settings()
    fields = form.request_fields()
    try:
        upload = read_upload(form.attachment.data, max_bytes)
        found, _created = services.open_request(
            invoice, **fields, upload=upload, locale=select_locale(), submission_key=form.submission.data,
            attachment_dir=directory, today=today, now=now,
        )
    except InvalidData as exc:  # every field's problem at once: the file's with the others'
        db.session.rollback()
        show_problems(form, exc.errors | services.request_problems(invoice, **fields, now=now))
        return _contact_page(invoice, form, now, 422)
    db.session.commit()
    return redirect(url_for(".request", public_id=public_id, reference=found.reference), code=303)


def _request_page(invoice: Invoice, found: SupportRequest, form: MessageForm, status: int = 200, **context):
    return render_template("support/request.html", invoice=invoice, creditor=invoice.creditor, req=found,
                           form=form, message_max=services.MESSAGE_MAX, **context), status


def _request_of(public_id: str, access: BillAccess, reference: str):
    """(invoice, request, None) for this bill's own conversation; else (None, None, the neutral page)."""
    found = services.find_request(access.invoice_id, reference)
    if found is None:
        return None, None, unavailable()
    return load_bill_or_404(public_id), found, None


@bp.get("/b/<public_id>/contact/<reference>", endpoint="request")
@bill_required
def conversation(public_id: str, access: BillAccess, reference: str):
    """The confirmation (with the reference) and the whole conversation, with a form to write again."""
    invoice, found, answer = _request_of(public_id, access, reference)
    if answer is not None:
        return answer
    form = MessageForm()
    form.submission.data = secrets.token_urlsafe(16)
    return _request_page(invoice, found, form, just_sent=request.args.get("sent") == "1")


@bp.post("/b/<public_id>/contact/<reference>/messages", endpoint="message")
@limiter.limit(_limit)
@accepts_uploads
@bill_required
def write_again(public_id: str, access: BillAccess, reference: str):
    """The customer writes again in the conversation."""
    invoice, found, answer = _request_of(public_id, access, reference)
    if answer is not None:
        return answer
    form = MessageForm()
    if not form.validate_on_submit():
        abort(400)
    max_bytes, directory = _upload_settings()
    try:
        upload = read_upload(form.attachment.data, max_bytes)
        services.add_customer_message(found, form.message.data, upload, form.submission.data, directory)
    except InvalidData as exc:
        db.session.rollback()
        show_problems(form, exc.errors | services.message_problems(form.message.data))
        return _request_page(invoice, found, form, 422)
    except IllegalTransition:  # closed by an agent since the page was shown
        db.session.rollback()
        return _request_page(invoice, found, form, 409)
    db.session.commit()
    return redirect(url_for(".request", public_id=public_id, reference=reference, sent="1", _anchor="latest"),
                    code=303)


@bp.get("/b/<public_id>/attachments/<public_ref>")
@bill_required
def attachment(public_id: str, access: BillAccess, public_ref: str):
    """A file sent with this bill: always a download, never shown inline."""
    found = db.session.scalar(
        select(Attachment).where(Attachment.public_ref == public_ref, Attachment.invoice_id == access.invoice_id)
    ) if len(public_ref) <= 24 else None
    path = attachment_path(found, current_app.config["ATTACHMENT_DIR"]) if found else None
    if path is None or not path.is_file():
        return unavailable()
    response = send_file(path, mimetype="application/octet-stream", as_attachment=True,
                         download_name=found.filename, conditional=False, etag=False, max_age=0)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response
