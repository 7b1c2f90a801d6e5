"""A customer's case (their bills and one timeline), internal notes, and one bill's page with what an
agent does to it: pause or resume reminders, send a new link, record a payment, credit it, preview it.

Each action calls the service the customer side uses, records an audit entry, commits once and
redirects back (a letter's link is the one exception: it is shown once, on the page it makes)."""

from __future__ import annotations

from collections.abc import Callable

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import force_locale, get_locale
from flask_babel import gettext as _
from flask_login import login_required
from markupsafe import Markup
from sqlalchemy import select

from app.backoffice import case, services
from app.backoffice import inbox as items
from app.backoffice.applicable import applicable
from app.backoffice.dunning import panel as dunning_panel
from app.backoffice.forms import (
    CreditForm,
    HoldForm,
    LinkForm,
    NoteForm,
    PaymentForm,
    PostponeStepForm,
    ResumeForm,
    SkipStepForm,
    line_changes,
)
from app.backoffice.views import SUPERVISING, bp, may, me, need, record, scope, scoped
from app.backoffice.words import problems
from app.bill_page import bill_page_context
from app.billing.corrections import credit_notes, creditable, issue_credit_note
from app.billing.credit_note_pdf import credit_note_pdf_response
from app.billing.models import Customer, Invoice
from app.billing.services import hold as hold_reminders
from app.billing.services import reminders_of
from app.billing.services import resume as resume_reminders
from app.billing.transfer import can_make_epc_qr, epc_payload, epc_qr_svg, transfer_details
from app.core.dates import local_today, parse_date
from app.core.validation import mask_email, mask_phone
from app.debt_collection.models import Case
from app.debt_collection.partners import policy_of
from app.debt_collection.services import NotEligible, active_case, hand_off, mark_handled, recall, reports_of
from app.debt_collection.services import check as hand_off_check
from app.dunning import services as dunning_services
from app.dunning.letters.batch import letters_of
from app.dunning.models import Jurisdiction, MessageStatus, NoticeStatus, StepKind
from app.errors import Conflict, IllegalTransition, InvalidData
from app.extensions import db
from app.i18n import normalise_locale
from app.links import services as links
from app.links.models import AccessLink
from app.models import utcnow
from app.money import parse_amount
from app.payments.models import Payment
from app.payments.refunds import refunds_of
from app.payments.services import MANUAL_METHODS, lock_invoice, record_manual_payment
from app.resolutions.models import Resolution
from app.resolutions.services import dunning_for, resolutions_for
from app.support.models import SupportRequest
from app.support.services import threads_for
from app.templating import date_filter


@bp.get("/customers/<int:customer_id>")
@login_required
def customer(customer_id: int):
    """The customer's whole story with this creditor: details, every bill, one timeline, notes."""
    found = scoped(Customer, customer_id)
    invoices = case.customer_invoices(found)
    entries = case.timeline(found, invoices)
    record("customer_viewed", creditor_id=found.creditor_id, record_type="customer", record_id=found.external_ref)
    db.session.commit()
    return render_template("backoffice/customer.html", customer=found, invoices=invoices, entries=entries,
                           form=NoteForm(), letters=letters_of(found), may_download_letters=may(found.creditor_id,
                                                                                                  SUPERVISING),
                           may_handle_privacy=may(found.creditor_id, SUPERVISING))


@bp.post("/customers/<int:customer_id>/notes")
@login_required
def add_note(customer_id: int):
    """An internal note on the customer (or one of their bills); never shown to the customer."""
    found = scoped(Customer, customer_id)
    form = NoteForm()
    invoice = None
    if form.invoice_id.data:
        invoice = scoped(Invoice, form.invoice_id.data)
    try:
        if not form.validate_on_submit():
            raise InvalidData({"body": "required"})
        note = services.add_note(me(), found, form.body.data, invoice=invoice)
    except InvalidData as exc:
        db.session.rollback()
        for words in problems(exc.errors):
            flash(words, "problem")
        return redirect(_after_note(found, invoice), code=303)
    record("note_added", creditor_id=found.creditor_id, record_type="customer", record_id=found.external_ref,
           note=note.id)
    db.session.commit()
    flash(_("The note is saved."), "done")
    return redirect(_after_note(found, invoice), code=303)


def _after_note(customer: Customer, invoice: Invoice | None) -> str:
    if invoice is not None and request.form.get("from") == "invoice":
        return url_for(".invoice", invoice_id=invoice.id)
    return url_for(".customer", customer_id=customer.id)


# --- one bill ------------------------------------------------------------------------------------------


def _invoice_page(invoice: Invoice, status: int = 200, **forms):
    today = local_today(invoice.creditor.country, utcnow())
    payments = list(db.session.scalars(select(Payment).where(Payment.invoice_id == invoice.id).order_by(Payment.id)))
    customer = invoice.customer
    policy = policy_of(invoice.creditor_id)
    lines_creditable = creditable(invoice)
    context = {
        "invoice": invoice, "creditor": invoice.creditor, "customer": customer, "today": today, "now": utcnow(),
        "dunning": dunning_for(invoice, today), "notes_form": NoteForm(),
        "credit_notes": credit_notes(invoice.id) if invoice.credited else [],
        "creditable": lines_creditable, "payments": payments, "refunds": refunds_of(p.id for p in payments),
        "links": list(db.session.scalars(select(AccessLink).where(AccessLink.invoice_id == invoice.id)
                                         .order_by(AccessLink.id.desc()).limit(20))),
        "resolutions": resolutions_for(invoice.id), "threads": threads_for(invoice.id),
        "reminders": reminders_of(invoice.id), "cases": _cases(invoice), "partner_reports": reports_of(invoice.id),
        "collection_policy": policy, "hand_off": hand_off_check(invoice, policy, today),
        "hand_off_now": hand_off_check(invoice, policy, today, manual=True),
        "applies": applicable(invoice, lines_creditable),
        "reminders_panel": dunning_panel(invoice, today), "jurisdiction_label": Jurisdiction.label_of,
        "step_label": StepKind.label_of, "notice_status_label": NoticeStatus.label_of,
        "message_status_label": MessageStatus.label_of,
        "skip_form": forms.get("skip_form") or SkipStepForm(),
        "postpone_form": forms.get("postpone_form") or PostponeStepForm(),
        "supervising": may(invoice.creditor_id, SUPERVISING), "methods": MANUAL_METHODS,
        "hold_form": forms.get("hold_form") or HoldForm(), "resume_form": ResumeForm(),
        "link_form": forms.get("link_form") or LinkForm(data={"to": customer.email, "channel": "email"}).fresh(),
        "payment_form": forms.get("payment_form") or PaymentForm(data={"received_on": today.isoformat()}).fresh(),
        "credit_form": forms.get("credit_form") or CreditForm(),
        "problems": forms.get("problems") or [], "problem_for": forms.get("problem_for"),
    }
    return render_template("backoffice/invoice.html", **context), status


def _cases(invoice: Invoice) -> list[Case]:
    return list(db.session.scalars(select(Case).where(Case.invoice_id == invoice.id).order_by(Case.id.desc())))


@bp.get("/invoices/<int:invoice_id>")
@login_required
def invoice(invoice_id: int):
    """One bill as the back office sees it: amounts, lines, credits, payments, links, and the actions."""
    found = scoped(Invoice, invoice_id)
    record("invoice_viewed", creditor_id=found.creditor_id, record_type="invoice", record_id=found.number)
    db.session.commit()
    return _invoice_page(found)


@bp.get("/invoices/<int:invoice_id>/credit-notes/<int:note_id>.pdf")
@login_required
def credit_note_pdf(invoice_id: int, note_id: int):
    """A credit note of the bill as the customer gets it: the PDF in the customer's language."""
    found = scoped(Invoice, invoice_id)
    note = next((n for n in credit_notes(found.id) if n.id == note_id), None)
    if note is None:
        abort(404)
    record("credit_note_downloaded", creditor_id=found.creditor_id, record_type="invoice", record_id=found.number,
           credit_note=note.number)
    db.session.commit()
    with force_locale(normalise_locale(found.customer.preferred_locale) or found.creditor.default_locale):
        return credit_note_pdf_response(note, found)


def _failed(invoice: Invoice, exc: Exception, what: str, **forms):
    """The bill's page again with what went wrong next to the action, nothing changed."""
    db.session.rollback()
    if isinstance(exc, InvalidData):
        words, status = problems(exc.errors), 422
    else:
        words, status = [_("This cannot be done to the bill as it is now. Reload the page to see why.")], 409
    return _invoice_page(db.session.get(Invoice, invoice.id), status, problems=words, problem_for=what, **forms)


def _act(invoice: Invoice, what: str, do: Callable[[], tuple[str, str, dict]], **forms):
    """Run one action on the bill: `do()` validates, calls the service and returns (audit action,
    the words that confirm it, the audit entry's details). A problem shows the bill's page again
    with the words next to the action, and changes nothing."""
    try:
        action, words, detail = do()
    except (InvalidData, IllegalTransition) as exc:
        return _failed(invoice, exc, what, **forms)
    record(action, creditor_id=invoice.creditor_id, record_type="invoice", record_id=invoice.number, **detail)
    db.session.commit()
    flash(words, "done")
    return redirect(url_for(".invoice", invoice_id=invoice.id), code=303)


def _actor() -> str:
    return f"agent:{me().id}"


@bp.post("/invoices/<int:invoice_id>/hold")
@login_required
def hold(invoice_id: int):
    """Pause reminders (and the hand-off) until a day, or until resumed."""
    found = scoped(Invoice, invoice_id)
    form = HoldForm()

    def do():
        if not form.validate_on_submit():
            raise InvalidData({"reason": "required"})
        until = form.until_date()
        if form.until.data and until is None:
            raise InvalidData({"until": "range"})
        lock_invoice(found.id)
        hold_reminders(found, until=until, actor=_actor(), reason=form.reason.data.strip())
        return "reminders_paused", _("Reminders are paused."), {"until": form.until.data or None}

    return _act(found, "hold", do, hold_form=form)


@bp.post("/invoices/<int:invoice_id>/dunning/skip")
@login_required
def skip_step(invoice_id: int):
    """Skip the bill's next reminder step (supervisors and admins: a step may carry a fee or a legal
    warning), with a reason."""
    found = scoped(Invoice, invoice_id)
    need(found.creditor_id, SUPERVISING)
    form = SkipStepForm()

    def do():
        if not form.validate_on_submit():
            raise InvalidData({"reason": "required"})
        lock_invoice(found.id)
        today = local_today(found.creditor.country, utcnow())
        try:
            notice = dunning_services.skip_next_step(found, actor=_actor(), reason=form.reason.data, today=today)
        except Conflict:
            raise IllegalTransition("the step went out already") from None
        return ("dunning_step_skipped", _("Step %(position)s is skipped.", position=notice.position),
                {"step": notice.position, "kind": notice.kind, "reason": form.reason.data.strip()})

    return _act(found, "dunning", do, skip_form=form)


@bp.post("/invoices/<int:invoice_id>/dunning/postpone")
@login_required
def postpone_step(invoice_id: int):
    """Move the bill's next reminder step to a later day, with a reason."""
    found = scoped(Invoice, invoice_id)
    form = PostponeStepForm()

    def do():
        if not form.validate_on_submit():
            raise InvalidData({"reason": "required"} if form.until.data else {"until": "range"})
        until = form.until_date()
        lock_invoice(found.id)
        today = local_today(found.creditor.country, utcnow())
        dunning_services.postpone_next_step(found, until, actor=_actor(), reason=form.reason.data, today=today)
        return ("dunning_step_postponed", _("The next step waits until %(date)s.", date=date_filter(until)),
                {"until": until.isoformat() if until else None, "reason": form.reason.data.strip()})

    return _act(found, "dunning", do, postpone_form=form)


@bp.post("/invoices/<int:invoice_id>/resume")
@login_required
def resume(invoice_id: int):
    """Resume reminders paused by an agent."""
    found = scoped(Invoice, invoice_id)
    form = ResumeForm()

    def do():
        if not form.validate_on_submit():
            raise InvalidData({"reason": "too_long"})
        lock_invoice(found.id)
        resume_reminders(found, actor=_actor(), reason=(form.reason.data or "").strip() or "resumed")
        return "reminders_resumed", _("Reminders are resumed."), {}

    return _act(found, "hold", do)


def _masked_destination(channel: str, to: str | None) -> str | None:
    """Where a new link went, for the audit log: the address or number masked (ka***@example.com,
    +47*****567); a printed letter goes nowhere but into the agent's hands."""
    if channel == "email" and to:
        return mask_email(to)
    if channel == "sms" and to:
        return mask_phone(to)
    return None


@bp.post("/invoices/<int:invoice_id>/link")
@login_required
def send_link(invoice_id: int):
    """Revoke the bill's links and send a new one by e-mail or SMS, or print it in a letter."""
    found = scoped(Invoice, invoice_id)
    form = LinkForm()
    config = current_app.config
    customer = found.customer
    locale = normalise_locale(customer.preferred_locale) or found.creditor.default_locale
    try:
        if not form.validate_on_submit():
            raise InvalidData({"channel": "choose"})
        issued = links.reissue(
            found, form.channel.data, to=form.to.data, locale=locale, key=form.submission.data,
            actor=_actor(), ttl_days=config["LINK_DEFAULT_TTL_DAYS"], signer=links.get_signer(),
            base_url=config["PORTAL_BASE_URL"],
        )
    except (InvalidData, IllegalTransition) as exc:
        return _failed(found, exc, "link", link_form=form)
    record("link_reissued", creditor_id=found.creditor_id, record_type="invoice", record_id=found.number,
           channel=form.channel.data, destination=_masked_destination(form.channel.data, form.to.data))
    db.session.commit()
    if issued is not None:  # a letter: the link is shown once, here, to be printed
        creditor = found.creditor
        context = {  # the token is in this page only: shown once (no-store), never stored
            "invoice": found, "creditor": creditor, "customer": found.customer, "url": issued.url,
            "typed": issued.typed, "qr": services.qr_svg(issued.url, found.number),
            "today": local_today(creditor.country, utcnow()),
            "expires": local_today(creditor.country, issued.link.expires_at),
            # A person without a smartphone pays from the letter: the bank details, and the EPC QR code for EUR.
            "transfer": transfer_details(creditor, found),
            "epc_qr": (epc_qr_svg(epc_payload(creditor, found), found.number)
                       if can_make_epc_qr(creditor, found) else None),
        }
        with force_locale(locale):  # the letter in the customer's language, the page around it in the agent's
            # S704: a template's output, autoescaped by Jinja
            letter = Markup(render_template("backoffice/_letter.html", letter_locale=locale, **context))  # noqa: S704
        return render_template("backoffice/letter.html", letter=letter, **context)
    flash(_("A new link is on its way by %(channel)s.", channel=case.channel_label(form.channel.data)), "done")
    return redirect(url_for(".invoice", invoice_id=found.id), code=303)


@bp.post("/invoices/<int:invoice_id>/payments")
@login_required
def record_payment(invoice_id: int):
    """Record a payment the creditor received elsewhere (supervisors and admins)."""
    found = scoped(Invoice, invoice_id)
    need(found.creditor_id, SUPERVISING)
    form = PaymentForm()

    def do():
        if not form.validate_on_submit():
            raise InvalidData({"amount": "required"})
        try:
            amount = parse_amount(form.amount.data, found.currency)
        except ValueError:
            raise InvalidData({"amount": "not_an_amount"}) from None
        received_on = parse_date(form.received_on.data or "")
        if received_on is None:
            raise InvalidData({"received_on": "range"})
        payment = record_manual_payment(found, amount or 0, received_on=received_on, method=form.method.data,
                                        key=form.submission.data, actor=_actor(), note=form.note.data)
        return ("payment_recorded", _("The payment is recorded; the customer gets a receipt."),
                {"amount": payment.amount, "method": payment.method})

    return _act(found, "payment", do, payment_form=form)


@bp.post("/invoices/<int:invoice_id>/credit-note")
@login_required
def credit_note(invoice_id: int):
    """A credit note outside a dispute (a goodwill gesture, a price error): supervisors and admins."""
    found = scoped(Invoice, invoice_id)
    need(found.creditor_id, SUPERVISING)
    form = CreditForm()

    def do():
        credits, _corrections, errors = line_changes(request.form, found, corrections=False)
        if errors:
            raise InvalidData(errors)
        if not form.validate_on_submit():
            raise InvalidData({"reason": "required"})
        lock_invoice(found.id)
        note = issue_credit_note(found, credits, reason=form.reason.data.strip(), actor=_actor())
        return ("credit_note_issued", _("Credit note %(number)s is issued.", number=note.number),
                {"number": note.number, "amount": note.total})

    return _act(found, "credit", do, credit_form=form)


@bp.post("/invoices/<int:invoice_id>/hand-off")
@login_required
def hand_off_now(invoice_id: int):
    """Hand the bill to the creditor's collection partner now, without waiting for the policy's days
    (the pause rule still applies: a bill with an open dispute or a plan is not handed off)."""
    found = scoped(Invoice, invoice_id)

    def do():
        try:
            case = hand_off(found.id, actor=_actor(), manual=True,
                            today_for=lambda country: local_today(country, utcnow()))
        except NotEligible as exc:
            raise InvalidData({f"hand_off_{i}": f"hand_off:{reason}" for i, reason in enumerate(exc.reasons)}) from None
        return ("handed_off", _("The bill is handed to %(partner)s.", partner=case.partner.name),
                {"case": case.public_id, "partner": case.partner.slug})

    return _act(found, "collection", do)


@bp.post("/invoices/<int:invoice_id>/recall")
@login_required
def recall_case(invoice_id: int):
    """Take the bill back from the collection partner: the partner is told, the bill page is ours again."""
    found = scoped(Invoice, invoice_id)
    reason = (request.form.get("reason") or "").strip()[:300]

    def do():
        case = active_case(found.id)
        if case is None:
            raise IllegalTransition("no case to recall")
        if not reason:
            raise InvalidData({"reason": "required"})
        recall(case, actor=_actor(), reason=reason)
        return "hand_off_recalled", _("The bill is recalled; %(partner)s is told.", partner=case.partner.name), {
            "case": case.public_id}

    return _act(found, "collection", do)


@bp.post("/invoices/<int:invoice_id>/partner-reports/<int:event_id>/handled")
@login_required
def partner_report_handled(invoice_id: int, event_id: int):
    """What the collection partner reported (a case given back, contact details, a message) is dealt with."""
    found = scoped(Invoice, invoice_id)
    event = items.record_of(scope(), "partner", event_id)
    if event is None or event.invoice_id != found.id:
        abort(404)

    def do():
        mark_handled(event, actor=_actor())
        return "partner_report_handled", _("Marked as dealt with."), {"case": event.case.public_id,
                                                                      "report": event.kind}

    return _act(found, "collection", do)


@bp.get("/invoices/<int:invoice_id>/preview")
@login_required
def preview(invoice_id: int):
    """The customer's bill page, read-only, in the customer's language, as it looks today."""
    found = scoped(Invoice, invoice_id)
    record("bill_previewed", creditor_id=found.creditor_id, record_type="invoice", record_id=found.number)
    db.session.commit()
    back_url, back_label = _preview_back(found, request.args.get("back", ""))
    back_lang = str(get_locale())  # the agent's language; the page itself is in the customer's
    locale = normalise_locale(found.customer.preferred_locale) or found.creditor.default_locale
    with force_locale(locale):
        context = bill_page_context(found, local_today(found.creditor.country, utcnow()))
        return render_template("portal/bill.html", preview=True, back_url=back_url, back_label=back_label,
                               back_lang=back_lang, **context)


def _preview_back(invoice: Invoice, back: str) -> tuple[str, str]:
    """Where the preview's way back leads, in the agent's language (the preview itself is in the
    customer's): the conversation or decision the agent came from (`back=request:<ref>` or
    `resolution:<ref>`, only one of this bill's, among the agent's creditors'), else the bill."""
    kind, _sep, reference = back.partition(":")
    model = {"request": SupportRequest, "resolution": Resolution}.get(kind)
    if model is not None and reference and len(reference) <= 16:
        record_ = db.session.scalar(scope().select(model).where(
            model.reference == reference, model.invoice_id == invoice.id))
        if record_ is not None:
            endpoint = "backoffice.support_request" if kind == "request" else "backoffice.resolution"
            return url_for(endpoint, reference=reference), _("Back to %(reference)s", reference=reference)
    return url_for("backoffice.invoice", invoice_id=invoice.id), _("Back to bill %(number)s", number=invoice.number)

