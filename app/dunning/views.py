"""The customer's side of the reminders: "Your contact details" on the bill (a new e-mail address or
mobile number confirmed by a code, the preferred channel, the consents) and the unsubscribe link of
reminder e-mails (a page with a button, and RFC 8058's one-click POST).

The contact pages need the bill's grant (`access.guard.bill_required`) and show the details masked;
their forms post with CSRF and are rate limited per client. The unsubscribe pages need only their
signed token (its own salt: it opens no bill); the one-click POST is the one view exempt from CSRF, as
mail providers post it without cookies, and is answered only for a genuine token."""

from __future__ import annotations

from flask import Blueprint, current_app, g, redirect, render_template, request, url_for
from flask_babel import gettext as _

from app.access.guard import bill_required, load_bill_or_404
from app.access.services import BillAccess
from app.billing.models import Invoice
from app.dunning import contact
from app.dunning.forms import CodeForm, EmailForm, PhoneForm, PreferencesForm, UnsubscribeForm
from app.dunning.models import ContactKind
from app.errors import InvalidData
from app.extensions import db, limiter
from app.i18n import language_switch, select_locale
from app.models import utcnow

bp = Blueprint("dunning", __name__)
bp.before_request(language_switch)  # ?lang=xx, and no-store, as on every customer page


def _limit() -> str:
    return current_app.config["SELF_SERVICE_RATE_LIMIT"]


def _secret() -> str:
    return str(current_app.config["SECRET_KEY"])


def problem_words(field: str, problem: str, creditor_name: str = "") -> str:
    """A service's problem code, in the customer's words."""
    words = {
        ("email", "invalid"): _("Please type an e-mail address, such as name@example.com."),
        ("email", "same"): _("This is the e-mail address we have already."),
        ("phone", "invalid"): _("Please type a mobile number with its country code, such as +47 912 34 567."),
        ("phone", "same"): _("This is the mobile number we have already."),
        ("code", "wrong"): _("That code is not right. Please check it and try again."),
        ("code", "expired"): _("This code has expired. Please ask for a new one."),
        ("code", "attempts"): _("Too many wrong codes. Please ask for a new one."),
        ("code", "unknown"): _("This code is no longer waiting to be confirmed. Please ask for a new one."),
        ("preferred_channel", "no_email"): _("Please add an e-mail address first."),
        ("preferred_channel", "no_phone"): _("Please add a mobile number first."),
        ("preferred_channel", "no_address"): _("%(creditor)s has no postal address for you. Please contact them.",
                                               creditor=creditor_name),
        ("preferred_channel", "not_allowed"): _("Please allow reminders by this channel, or choose another one."),
        ("preferred_channel", "invalid"): _("Please choose one of the options."),
    }
    if problem in ("wait", "too_many"):
        return _("We have just sent a code. Please wait a minute before asking for another.") if problem == "wait" \
            else _("Too many codes have been sent. Please try again in an hour.")
    return words.get((field, problem), _("Please check this field."))


def _page(invoice: Invoice, *, status: int = 200, email_form: EmailForm | None = None,
          phone_form: PhoneForm | None = None, code_forms: dict | None = None,
          preferences_form: PreferencesForm | None = None):
    customer = invoice.customer
    now = utcnow()
    details = contact.details_of(customer)
    pending = {kind: contact.pending_change(customer, kind, now) for kind in (ContactKind.EMAIL, ContactKind.SMS)}
    code_forms = code_forms or {}
    for kind, change in pending.items():
        if change is not None and kind not in code_forms:
            form = CodeForm(formdata=None)
            form.change.data = str(change.id)
            code_forms[kind] = form
    if preferences_form is None:
        preferences_form = PreferencesForm(formdata=None, data={
            "preferred_channel": details.preferred_channel or "", "email_allowed": details.email_allowed,
            "sms_allowed": details.sms_allowed, "electronic_notices_allowed": details.electronic_notices_allowed})
    return render_template(
        "dunning/contact.html", invoice=invoice, creditor=invoice.creditor, details=details,
        pending={kind: (change, contact.shown(kind, change.value)) for kind, change in pending.items()
                 if change is not None},
        email_form=email_form or EmailForm(formdata=None), phone_form=phone_form or PhoneForm(formdata=None),
        code_forms=code_forms, preferences_form=preferences_form, saved=request.args.get("saved"),
        minutes=int(contact.CODE_TTL.total_seconds() // 60), max_attempts=contact.MAX_ATTEMPTS,
    ), status


@bp.get("/b/<public_id>/contact-details")
@bill_required
def details(public_id: str, access: BillAccess):
    """Your contact details: what is on file (masked), a new address or number, how to hear from us."""
    return _page(load_bill_or_404(public_id))


def _back(public_id: str, **args) -> object:
    return redirect(url_for(".details", public_id=public_id, **args), code=303)


@bp.post("/b/<public_id>/contact-details/<any(email, sms):kind>")
@limiter.limit(_limit)
@bill_required
def new_contact(public_id: str, access: BillAccess, kind: str):
    """Send a code to a new e-mail address or mobile number (nothing changes until it is typed back)."""
    invoice = load_bill_or_404(public_id)
    form: EmailForm | PhoneForm = EmailForm() if kind == ContactKind.EMAIL else PhoneForm()
    field = form.email if isinstance(form, EmailForm) else form.phone
    if not form.validate_on_submit():
        field.errors = [problem_words(field.name, "invalid")]
        return _with(invoice, kind, form, 422)
    try:
        contact.request_change(invoice, kind, field.data, now=utcnow(), secret=_secret(), locale=select_locale())
    except InvalidData as exc:
        db.session.rollback()
        problem = next(iter(exc.errors.values()))
        field.errors = [problem_words(field.name, problem)]
        return _with(invoice, kind, form, 429 if problem in ("wait", "too_many") else 422)
    db.session.commit()
    return _back(public_id, _anchor=f"confirm-{kind}")


def _with(invoice: Invoice, kind: str, form, status: int):
    if kind == ContactKind.EMAIL:
        return _page(invoice, status=status, email_form=form)
    return _page(invoice, status=status, phone_form=form)


@bp.post("/b/<public_id>/contact-details/<any(email, sms):kind>/confirm")
@limiter.limit(_limit)
@bill_required
def confirm(public_id: str, access: BillAccess, kind: str):
    """Type back the code: the new address or number is used from now on."""
    invoice = load_bill_or_404(public_id)
    form = CodeForm()
    if not form.validate_on_submit():
        form.code.errors = [problem_words("code", "wrong")]
        return _page(invoice, status=422, code_forms={kind: form})
    try:
        contact.confirm_change(invoice, form.change.data, form.code.data, now=utcnow(), secret=_secret())
    except InvalidData as exc:
        problem = exc.errors.get("code", "wrong")
        if problem in ("wrong", "attempts"):
            db.session.commit()  # a wrong code counts (the attempt), and nothing else changed
        else:
            db.session.rollback()
        form.code.errors = [problem_words("code", problem)]
        form.code.data = ""
        return _page(invoice, status=422, code_forms={kind: form})
    db.session.commit()
    return _back(public_id, saved=kind)


@bp.post("/b/<public_id>/contact-details/preferences")
@limiter.limit(_limit)
@bill_required
def preferences(public_id: str, access: BillAccess):
    """The preferred channel and the consents, saved at once."""
    invoice = load_bill_or_404(public_id)
    form = PreferencesForm()
    if not form.validate_on_submit():
        form.preferred_channel.errors = [problem_words("preferred_channel", "invalid")]
        return _page(invoice, status=422, preferences_form=form)
    try:
        contact.save_preferences(
            invoice, preferred_channel=form.preferred_channel.data or None, email_allowed=bool(form.email_allowed.data),
            sms_allowed=bool(form.sms_allowed.data),
            electronic_notices_allowed=bool(form.electronic_notices_allowed.data), now=utcnow())
    except InvalidData as exc:
        db.session.rollback()
        form.preferred_channel.errors = [problem_words("preferred_channel", exc.errors.get("preferred_channel", ""),
                                                       invoice.creditor.name)]
        return _page(invoice, status=422, preferences_form=form)
    db.session.commit()
    return _back(public_id, saved="preferences")


# --- the unsubscribe link of reminder e-mails -----------------------------------------------------------------


def _not_valid():
    return render_template("dunning/unsubscribe_invalid.html", creditor=None), 404


def _found(token: str):
    found = contact.token_customer(token)
    if found is not None:
        g.customer_locale = found[0].preferred_locale
        g.creditor_locale = found[0].creditor.default_locale
    return found


@bp.route("/unsubscribe/<token>", methods=["GET", "POST"])
@limiter.limit(_limit, methods=["POST"])
def unsubscribe(token: str):
    """The page of a reminder e-mail's unsubscribe link: what it does, and a button (GET changes nothing:
    mail scanners open links)."""
    found = _found(token)
    if found is None:
        return _not_valid()
    customer, invoice = found
    form = UnsubscribeForm()
    if request.method == "POST":
        if not form.validate_on_submit():
            return _not_valid()
        contact.unsubscribe(customer, invoice, now=utcnow(), how="page")
        db.session.commit()
        return redirect(url_for(".unsubscribe", token=token), code=303)
    return render_template("dunning/unsubscribe.html", creditor=customer.creditor, form=form,
                           done=customer.email_unsubscribed_at is not None, email=contact.shown_email(customer.email))


@bp.route("/unsubscribe/<token>/one-click", methods=["GET", "POST"])
def one_click(token: str):
    """RFC 8058: a mail client's one-click unsubscribe, POSTed without cookies (so without CSRF's token):
    the signed token is the proof. A GET (a client that opens the address instead) shows the page."""
    found = _found(token)
    if found is None:
        return _not_valid()
    if request.method == "GET":
        return redirect(url_for(".unsubscribe", token=token), code=303)
    if request.form.get("List-Unsubscribe") != "One-Click":
        return render_template("dunning/unsubscribe_invalid.html", creditor=found[0].creditor), 400
    customer, invoice = found
    contact.unsubscribe(customer, invoice, now=utcnow(), how="one_click")
    db.session.commit()
    return render_template("dunning/unsubscribe.html", creditor=customer.creditor, form=None, done=True,
                           email=contact.shown_email(customer.email))
