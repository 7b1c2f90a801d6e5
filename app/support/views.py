"""Contact support from the bill page: the form, the confirmation and thread, attachments."""

from __future__ import annotations

import secrets
from datetime import timedelta

from flask import Blueprint, Response, current_app, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from app.errors import IllegalTransition, InvalidData
from app.extensions import db, limiter
from app.security import accepts_uploads
from app.i18n import select_locale
from app.models import utcnow
from app.portal.services import local_today
from app.portal.views import granted, language_switch, load_bill_or_404, unavailable
from app.support import services
from app.support.attachments import attachment_path, read_upload
from app.support.emails import topic_label, window_label
from app.support.forms import ContactForm, MessageForm, attachment_problem
from app.support.models import CALLBACK_WINDOWS, TOPICS, Attachment

bp = Blueprint("support", __name__)
bp.before_request(language_switch)  # ?lang=xx, and no-store, as on every customer page


@bp.app_context_processor
def _words():
    return {"topic_label": topic_label, "window_label": window_label}


def _limit() -> str:
    return current_app.config["SELF_SERVICE_RATE_LIMIT"]


def _field_errors(form, errors: dict[str, str]) -> None:
    """Put each service error next to its field, in words."""
    words = {
        ("topic", "choose"): _("Please choose what it is about."),
        ("message", "required"): _("Please write your message."),
        ("message", "too_long"): _("Please keep it under %(max)d characters.", max=services.MESSAGE_MAX),
        ("contact_method", "choose"): _("Please choose how we should answer you."),
        ("email", "required"): _("Please enter your e-mail address."),
        ("email", "invalid"): _("Please enter a valid e-mail address, such as name@example.com."),
        ("phone", "required"): _("Please enter the number we should call."),
        ("phone", "invalid"): _("Please enter a valid phone number, such as +47 912 34 567."),
        ("callback_date", "range"): _("Please choose a day within the next %(days)d days.", days=services.CALLBACK_DAYS),
        ("callback_window", "choose"): _("Please choose a time for the call."),
    }
    for name, code in errors.items():
        field = getattr(form, name, None)
        if field is not None:
            problem = attachment_problem(code) if name == "attachment" else words.get((name, code))
            field.errors = [*field.errors, problem or _("Please check this field.")]


def _contact_page(invoice, form, today, status=200):
    form.topic.choices = [(topic, topic_label(topic)) for topic in TOPICS]
    form.contact_method.choices = [("email", _("By e-mail")), ("phone", _("Call me back"))]
    form.callback_window.choices = [(window, window_label(window)) for window in CALLBACK_WINDOWS]
    return render_template(
        "support/contact.html", invoice=invoice, creditor=invoice.creditor, form=form,
        first_day=today, last_day=today + timedelta(days=services.CALLBACK_DAYS),
    ), status


@bp.route("/b/<public_id>/contact", methods=["GET", "POST"])
@limiter.limit(_limit, methods=["POST"])
@accepts_uploads
def contact(public_id: str):
    """Write to the creditor about this bill: a topic, a message, how to answer, a file."""
    access, answer = granted(public_id)
    if answer is not None:
        return answer
    invoice = load_bill_or_404(public_id)
    today = local_today(access.country, utcnow())
    form = ContactForm()
    if request.method == "GET":
        form.submission.data = secrets.token_urlsafe(16)
        form.topic.data = request.args.get("topic") if request.args.get("topic") in TOPICS else None
        form.email.data, form.phone.data = invoice.customer.email, invoice.customer.phone
        return _contact_page(invoice, form, today)
    if form.validate_on_submit():
        try:
            upload = read_upload(form.attachment.data, current_app.config["ATTACHMENT_MAX_BYTES"])
            found, _created = services.open_request(
                invoice, topic=form.topic.data, message=form.message.data, contact_method=form.contact_method.data,
                contact_email=form.email.data, contact_phone=form.phone.data, callback_date=form.chosen_date(),
                callback_window=form.callback_window.data, upload=upload, locale=select_locale(),
                submission_key=form.submission.data, attachment_dir=current_app.config["ATTACHMENT_DIR"], today=today,
            )
        except InvalidData as exc:
            db.session.rollback()
            _field_errors(form, exc.errors)
        else:
            db.session.commit()
            return redirect(url_for(".thread", public_id=public_id, reference=found.reference), code=303)
    return _contact_page(invoice, form, today, 422)


def _thread_page(invoice, found, form, status=200, **context):
    return render_template("support/thread.html", invoice=invoice, creditor=invoice.creditor, request_=found,
                           form=form, **context), status


@bp.get("/b/<public_id>/contact/<reference>")
def thread(public_id: str, reference: str):
    """The confirmation (with the reference) and the whole conversation, with a form to write again."""
    access, answer = granted(public_id)
    if answer is not None:
        return answer
    invoice = load_bill_or_404(public_id)
    found = services.find_request(invoice.id, reference)
    if found is None:
        return unavailable()
    form = MessageForm()
    form.submission.data = secrets.token_urlsafe(16)
    return _thread_page(invoice, found, form, just_sent=request.args.get("sent") == "1")


@bp.post("/b/<public_id>/contact/<reference>/messages")
@limiter.limit(_limit)
@accepts_uploads
def write_again(public_id: str, reference: str):
    """The customer writes again in the conversation."""
    access, answer = granted(public_id)
    if answer is not None:
        return answer
    invoice = load_bill_or_404(public_id)
    found = services.find_request(invoice.id, reference)
    if found is None:
        return unavailable()
    form = MessageForm()
    if form.validate_on_submit():
        try:
            upload = read_upload(form.attachment.data, current_app.config["ATTACHMENT_MAX_BYTES"])
            services.add_customer_message(found, form.message.data, upload, submission_key=form.submission.data,
                                          attachment_dir=current_app.config["ATTACHMENT_DIR"])
        except InvalidData as exc:
            db.session.rollback()
            _field_errors(form, exc.errors)
        except IllegalTransition:
            db.session.rollback()
            return _thread_page(invoice, found, form, 409, closed=True)
        else:
            db.session.commit()
            return redirect(url_for(".thread", public_id=public_id, reference=reference, sent="1") + "#latest",
                            code=303)
    return _thread_page(invoice, found, form, 422)


@bp.get("/b/<public_id>/attachments/<ref>")
def attachment(public_id: str, ref: str):
    """A file the customer sent with this bill: always a download, never shown inline."""
    access, answer = granted(public_id)
    if answer is not None:
        return answer
    found = db.session.scalar(
        select(Attachment).where(Attachment.public_ref == ref, Attachment.invoice_id == access.invoice_id)
    ) if ref and len(ref) <= 24 else None
    if found is None:
        return unavailable()
    path = attachment_path(found, current_app.config["ATTACHMENT_DIR"])
    if not path.is_file():
        return unavailable()
    return Response(path.read_bytes(), mimetype="application/octet-stream", headers={
        "Content-Disposition": f'attachment; filename="{found.filename}"',
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
    })

