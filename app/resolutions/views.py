"""Self-service from the bill page: dispute, promise to pay, more time, instalments (and their status).

Each flow: GET the form; POST checks it and, where money or dates change, shows the terms to
confirm; the confirming POST calls the service, commits, and redirects to the resolution's page
(POST-redirect-GET). Errors are shown next to their field, in the page's language, with 422, and
change nothing. Every POST is rate-limited; CSRF is checked for every POST by app.security.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

from flask import Blueprint, Response, current_app, redirect, render_template, request, url_for
from flask_babel import force_locale
from flask_babel import gettext as _

from app.access.guard import bill_required, load_bill_or_404, unavailable
from app.access.services import BillAccess
from app.billing.models import Invoice
from app.core.dates import local_today
from app.errors import InvalidData
from app.extensions import db, limiter
from app.i18n import language_switch, select_locale
from app.models import utcnow
from app.money import format_percent_1
from app.resolutions import deferrals, disputes, instalments, offer_rules, plans, promises, services
from app.resolutions.emails import promise_ics, reason_label
from app.resolutions.forms import (
    DeferralForm,
    DisputeForm,
    PlanForm,
    PlanRequestForm,
    PromiseForm,
    SelfServiceForm,
    reason_choices,
    scope_choices,
)
from app.resolutions.models import Kind, Resolution
from app.security import SHOWING, accepts_uploads
from app.support.attachments import read_upload
from app.support.forms import attachment_problem
from app.templating import current_format_locale, date_filter, money

bp = Blueprint("resolutions", __name__)
bp.before_request(language_switch)  # ?lang=xx, and no-store, as on every customer page


@bp.app_context_processor
def _words():
    return {"reason_label": reason_label}


@bp.app_template_filter("apr")
def apr_filter(percent) -> str:
    """An APR (percent, one decimal place) in the page's language."""
    return format_percent_1(percent, current_format_locale())


def _limit() -> str:
    return current_app.config["SELF_SERVICE_RATE_LIMIT"]


def _bill(public_id: str, access: BillAccess) -> tuple[Invoice, date]:
    """The bill (its grant checked by `bill_required`) and the creditor's today."""
    return load_bill_or_404(public_id), local_today(access.country, utcnow())


def _fresh(form: SelfServiceForm) -> SelfServiceForm:
    if not form.submission.data:
        form.submission.data = secrets.token_urlsafe(16)
    return form


def _page(template: str, what: str, invoice: Invoice, form, today: date, status: int = 200, **context):
    """The flow's page; when the option is not open to this bill now (paid, a promise running...),
    the page says so instead of showing a form that could only fail."""
    can = services.self_service(invoice, today).can
    available = can.get(what, False)
    if not available and not context.get("page_problem"):
        context["page_problem"] = _unavailable_words(invoice, what, today)
    return render_template(
        f"resolutions/{template}", invoice=invoice, creditor=invoice.creditor, form=form, today=today,
        available=available, can=can, **context,
    ), status


def _unavailable_words(invoice: Invoice, what: str, today: date) -> str:
    if invoice.balance <= 0:
        return _("This bill is paid, so there is nothing to do here.")
    if what in ("plan", "plan_request") and services.is_payable(invoice) and not offer_rules.offered(invoice, "plan"):
        return _("An on-account payment or a prepayment cannot be split into instalments. If paying it now is hard, "
                 "you can choose a later date, or contact us.")
    if what in ("plan", "plan_request") and services.is_payable(invoice) and not offer_rules.plans_fit(invoice):
        return _("Bills under %(amount)s cannot be split into instalments. If paying it now is hard, you can choose "
                 "a later date, or contact us.", amount=money(
                     offer_rules.plan_min_balance(invoice.creditor, invoice.currency), invoice.currency))
    if what == "plan" and services.is_payable(invoice) and not instalments.plan_offers(invoice, today):
        return _("This bill cannot be split into instalments online. Please contact us, and we will find a "
                 "solution together.")
    if what == "plan_request" and services.self_service(invoice, today).plan_request is not None:
        return _("We are looking at your request for an instalment plan already. We will answer you by e-mail.")
    return _("This option is not available for this bill right now.")


def _problem(form, errors: dict[str, str]) -> str | None:
    """Put each service error next to its field, in words; return the page-level problem, if any."""
    fmt = date_filter
    words = {
        ("date", "range"): None,  # filled by the caller, who knows the range
        ("reason", "choose"): _("Please choose a reason."),
        ("message", "required"): _("Please tell us in a few words what is wrong."),
        ("message", "too_long"): _("Please keep it under %(max)d characters.", max=services.MESSAGE_MAX),
        ("lines", "choose"): _("Please choose at least one line of the bill."),
        ("attachment", "proof"): _("Please attach proof of your payment, such as a receipt or a bank statement."),
        ("months", "choose"): _("Please choose one of the plans."),
        ("months", "range"): _("Please enter a number of months from 2 to %(max)d.",
                               max=plans.PLAN_REQUEST_MAX_MONTHS),
    }
    page = None
    for name, code in errors.items():
        if name == "invoice":
            page = (_("This bill is paid, so there is nothing to do here.") if code == "paid"
                    else _("This option is not available for this bill right now."))
            continue
        field = getattr(form, name, None)
        if field is None:
            page = _("Something in the form was not right. Please try again.")
            continue
        if (name, code) == ("date", "range"):
            first, last = form.range
            message = _("Please choose a date from %(first)s to %(last)s.", first=fmt(first), last=fmt(last))
        elif name == "attachment" and code != "proof":
            message = attachment_problem(code)
        else:
            message = words.get((name, code)) or _("Please check this field.")
        field.errors = [*field.errors, message] if isinstance(field.errors, list) else [message]
    return page


@dataclass
class Flow:
    """One self-service flow on its page: which option, its template and form, what the page shows."""

    what: str  # the key in SelfService.can: dispute, promise, deferral, plan
    template: str
    invoice: Invoice
    today: date
    form: SelfServiceForm
    context: dict = field(default_factory=dict)

    def page(self, status: int = 200, **more):
        return _page(self.template, self.what, self.invoice, self.form, self.today, status, **self.context, **more)


def _run(flow: Flow, record: Callable[[], tuple[Resolution, bool]],
         terms: Callable[[], dict] | None = None):
    """GET: the form. POST: with `terms`, check the choice and show what it means, to confirm (or
    change); the confirming POST (or the only one, without `terms`) records it, commits and goes to
    the resolution's page. A problem re-shows the form with each error next to its field (422)."""
    if request.method in SHOWING:
        return flow.page()
    page_problem = None
    if flow.form.validate_on_submit():
        try:
            changing = "change" in request.form
            if terms is not None and (changing or not flow.form.confirmed):
                shown = terms()
                return flow.page(step="form" if changing else "confirm", **shown)
            resolution, _created = record()
        except InvalidData as exc:
            db.session.rollback()
            page_problem = _problem(flow.form, exc.errors)
        else:
            db.session.commit()
            return redirect(url_for(".resolution", public_id=flow.invoice.public_id, reference=resolution.reference),
                            code=303)
    return flow.page(422, page_problem=page_problem)


@bp.route("/b/<public_id>/dispute", methods=["GET", "POST"])
@limiter.limit(_limit, methods=["POST"])
@accepts_uploads
@bill_required
def dispute(public_id: str, access: BillAccess):
    """Dispute the whole bill or some of its lines, with a reason, a message and proof."""
    invoice, today = _bill(public_id, access)
    form = _fresh(DisputeForm())
    form.scope.choices, form.reason.choices = scope_choices(), reason_choices()
    if request.method in SHOWING and request.args.get("line", "").isdigit():
        form.scope.data, form.lines.data = "lines", [int(request.args["line"])]

    def record():
        upload = read_upload(form.attachment.data, current_app.config["ATTACHMENT_MAX_BYTES"])
        return disputes.open_dispute(
            invoice, reason=form.reason.data, message=form.message.data,
            line_ids=form.lines.data if form.scope.data == "lines" else None, upload=upload,
            attachment_dir=current_app.config["ATTACHMENT_DIR"], locale=select_locale(),
            submission_key=form.submission.data, today=today,
        )

    return _run(Flow("dispute", "dispute.html", invoice, today, form), record)


@bp.route("/b/<public_id>/promise", methods=["GET", "POST"])
@limiter.limit(_limit, methods=["POST"])
@bill_required
def promise(public_id: str, access: BillAccess):
    """Promise to pay by a date within the creditor's limit; reminders wait until then."""
    invoice, today = _bill(public_id, access)
    form = _fresh(PromiseForm())
    form.range = promises.promise_window(invoice, today)

    def terms() -> dict:
        promises.check_promise(invoice, form.chosen_date(), today)
        return {"chosen": form.chosen_date()}

    return _run(Flow("promise", "promise.html", invoice, today, form), lambda: promises.make_promise(
        invoice, form.chosen_date(), locale=select_locale(), submission_key=form.submission.data, today=today,
    ), terms)


@bp.route("/b/<public_id>/more-time", methods=["GET", "POST"])
@limiter.limit(_limit, methods=["POST"])
@bill_required
def deferral(public_id: str, access: BillAccess):
    """A later due date: granted at once within the creditor's rules, else a request for an agent."""
    invoice, today = _bill(public_id, access)
    form = _fresh(DeferralForm())
    form.range = deferrals.deferral_window(invoice, today)
    flow = Flow("deferral", "deferral.html", invoice, today, form,
                {"limit": deferrals.deferral_limit(invoice, today)})
    return _run(flow, lambda: deferrals.defer(
        invoice, form.chosen_date(), locale=select_locale(), submission_key=form.submission.data, today=today,
    ), lambda: {"terms": deferrals.deferral_terms(invoice, form.chosen_date(), today)})


@bp.route("/b/<public_id>/instalments", methods=["GET", "POST"])
@limiter.limit(_limit, methods=["POST"])
@bill_required
def plan(public_id: str, access: BillAccess):
    """Split the bill into monthly instalments: the offers, then the chosen plan's schedule to accept."""
    invoice, today = _bill(public_id, access)
    form = _fresh(PlanForm())
    flow = Flow("plan", "plan.html", invoice, today, form, {"offers": instalments.plan_offers(invoice, today)})
    return _run(flow, lambda: plans.accept_plan(
        invoice, form.months.data, locale=select_locale(), submission_key=form.submission.data, today=today,
    ), lambda: {"offer": plans.choose_offer(invoice, form.months.data, today)})


@bp.route("/b/<public_id>/instalments/request", methods=["GET", "POST"])
@limiter.limit(_limit, methods=["POST"])
@bill_required
def plan_request(public_id: str, access: BillAccess):
    """Ask for a plan the bill page does not offer (more months, smaller instalments): an agent decides."""
    invoice, today = _bill(public_id, access)
    form = _fresh(PlanRequestForm())
    return _run(Flow("plan_request", "plan_request.html", invoice, today, form), lambda: plans.request_plan(
        invoice, form.months.data, form.message.data, locale=select_locale(), submission_key=form.submission.data,
        today=today,
    ))


# --- a resolution's page and calendar file ---------------------------------------------------------


@bp.get("/b/<public_id>/r/<reference>")
@bill_required
def resolution(public_id: str, access: BillAccess, reference: str):
    """What the customer chose, its status and the agent's answer (also the confirmation page)."""
    invoice, today = _bill(public_id, access)
    found = services.find_resolution(invoice.id, reference)
    if found is None:
        return unavailable()  # the neutral page, as for any unknown id
    progress = instalments.plan_progress(found, invoice, today) if found.kind == Kind.PLAN else []
    cost = instalments.plan_cost(found, invoice.creditor.country) if progress else None
    return render_template("resolutions/resolution.html", invoice=invoice, creditor=invoice.creditor,
                           resolution=found, progress=progress, today=today, cost=cost)


@bp.get("/b/<public_id>/r/<reference>/promise.ics")
@bill_required
def promise_calendar(public_id: str, access: BillAccess, reference: str):
    """The promised date as a calendar event to download."""
    invoice, _today = _bill(public_id, access)
    found = services.find_resolution(invoice.id, reference)
    if found is None or found.kind != Kind.PROMISE:
        return unavailable()
    with force_locale(select_locale()):
        body = promise_ics(found)
    return Response(body, mimetype="text/calendar", headers={
        "Content-Disposition": 'attachment; filename="promise-to-pay.ics"'})
