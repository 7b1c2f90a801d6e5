"""Answering customers: a conversation and its reply (with saved answers in the customer's
language), closing or reopening it; a dispute, a request for more time or for an instalment plan,
and the decision, with the bill made right in the same step (credits, corrected lines)."""

from __future__ import annotations

from functools import partial

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import login_required

from app.backoffice import case, services
from app.backoffice import inbox as items
from app.backoffice.calls import CALL_OUTCOMES, calls_of, outcome_label
from app.backoffice.calls import log_call as log_a_call
from app.backoffice.forms import DECISIONS, CallForm, DecisionForm, ReplyForm, line_changes
from app.backoffice.standing import answer_by, standing
from app.backoffice.views import bp, by_reference, me, record, scope
from app.backoffice.words import problems
from app.billing.corrections import creditable
from app.billing.models import InvoiceStatus
from app.core.dates import local_today
from app.errors import IllegalTransition, InvalidData
from app.extensions import db
from app.models import utcnow
from app.payments.services import lock_invoice
from app.resolutions.deferrals import decide_deferral
from app.resolutions.disputes import answer_dispute, cancels_the_bill
from app.resolutions.instalments import plan_offer
from app.resolutions.models import Kind, Resolution
from app.resolutions.plans import decide_plan
from app.support.emails import request_window
from app.support.models import RequestStatus, SupportRequest
from app.support.services import close_request, reopen_request
from app.support.services import reply as reply_to_customer


def _request_page(found: SupportRequest, form: ReplyForm, problem: str | None = None, status: int = 200,
                  call_form: CallForm | None = None, call_problem: str | None = None):
    visible = scope()
    invoice = found.invoice
    creditor = invoice.creditor
    waits_since = max((m.created_at for m in found.messages if m.author == "customer"), default=found.created_at)
    saved = services.templates_for(visible, found.creditor_id)
    chosen = request.args.get("template", "")
    if chosen.isdigit() and not form.message.data:
        template = next((t for t in saved if t.id == int(chosen)), None)
        if template is not None:
            form.message.data = services.fill_template(template, found.invoice, reference=found.reference)
    return render_template(
        "backoffice/request.html", request_=found, form=form, invoice=invoice, problem=problem,
        templates=sorted(saved, key=lambda t: (t.locale != found.locale, t.locale, t.title)),
        mark=items.mark_of("request", found.id),
        standing=standing(invoice, local_today(creditor.country, utcnow())),
        time_left=(answer_by(waits_since, creditor.answer_within_days, creditor.country) - utcnow())
        if found.status == RequestStatus.OPEN else None,
        calls=calls_of(found), call_form=call_form or CallForm(), call_problem=call_problem,
        outcomes=CALL_OUTCOMES, outcome_label=outcome_label, request_window=request_window,
        actor_name=partial(case.actor_label, agents=case.agent_names(found.creditor_id)),
    ), status


@bp.get("/requests/<reference>")
@login_required
def support_request(reference: str):
    """A customer's conversation about a bill, and the form to answer it."""
    found = by_reference(SupportRequest, reference)
    record("request_viewed", creditor_id=found.creditor_id, record_type="support_request", record_id=found.reference)
    db.session.commit()
    return _request_page(found, ReplyForm())


@bp.post("/requests/<reference>/reply")
@login_required
def reply(reference: str):
    """Answer the customer: in the thread on the bill page and by e-mail, in the customer's language."""
    found = by_reference(SupportRequest, reference)
    form = ReplyForm()
    problem = None
    if form.validate_on_submit():
        agent = me()
        try:
            reply_to_customer(found, form.message.data, agent_name=agent.name, actor=f"agent:{agent.id}")
        except (InvalidData, IllegalTransition):
            db.session.rollback()
            problem = _("The answer could not be sent: it is empty, or the conversation is closed.")
        else:
            record("request_replied", creditor_id=found.creditor_id, record_type="support_request",
                   record_id=found.reference)
            db.session.commit()
            flash(_("Your answer is sent."), "done")
            return redirect(url_for(".support_request", reference=reference), code=303)
    else:
        problem = _("Please write your answer.")
    return _request_page(found, form, problem, 422)


@bp.post("/requests/<reference>/call")
@login_required
def log_call(reference: str):
    """Log a call made for the customer's call-back request: reached, no answer or wrong number, a note."""
    found = by_reference(SupportRequest, reference)
    form = CallForm()
    try:
        if not form.validate_on_submit():
            raise InvalidData({"outcome": "choose"})
        log_a_call(found, form.outcome.data, form.note.data, actor=f"agent:{me().id}")
    except InvalidData as exc:
        db.session.rollback()
        return _request_page(found, ReplyForm(formdata=None), status=422, call_form=form,
                             call_problem=" ".join(problems(exc.errors)))
    except IllegalTransition:
        db.session.rollback()
        return _request_page(found, ReplyForm(formdata=None), status=409, call_form=form,
                             call_problem=_("No call is asked for, or the conversation is closed."))
    record("call_logged", creditor_id=found.creditor_id, record_type="support_request", record_id=found.reference,
           outcome=form.outcome.data)
    db.session.commit()
    flash(_("The call is logged."), "done")
    return redirect(url_for(".support_request", reference=reference), code=303)


@bp.post("/requests/<reference>/status")
@login_required
def request_status(reference: str):
    """Close a conversation (resolved) or open it again."""
    found = by_reference(SupportRequest, reference)
    closing = request.form.get("status") == "closed"
    actor = f"agent:{me().id}"
    try:
        close_request(found, actor=actor) if closing else reopen_request(found, actor=actor)
    except IllegalTransition:
        db.session.rollback()
        flash(_("The conversation has changed meanwhile; here it is as it is now."), "problem")
        return redirect(url_for(".support_request", reference=reference), code=303)
    record("request_closed" if closing else "request_reopened", creditor_id=found.creditor_id,
           record_type="support_request", record_id=found.reference)
    db.session.commit()
    flash(_("The conversation is closed.") if closing else _("The conversation is open again."), "done")
    return redirect(url_for(".support_request", reference=reference), code=303)


# --- disputes and requests -------------------------------------------------------------------------


def _resolution_page(found: Resolution, form: DecisionForm, problem: list[str] | str | None = None,
                     status: int = 200, preview: dict | None = None):
    invoice = found.invoice
    today = local_today(invoice.creditor.country, utcnow())
    offer = plan_offer(invoice, found.months, today) if found.kind == Kind.PLAN and found.status == "open" \
        and found.months and invoice.balance > 0 else None
    return render_template(
        "backoffice/resolution.html", resolution=found, invoice=invoice, form=form,
        problems=[problem] if isinstance(problem, str) else (problem or []), offer=offer,
        creditable=creditable(invoice) if found.kind == Kind.DISPUTE else {},
        disputed=set(found.line_ids or [line.id for line in invoice.lines]),
        values=request.form if request.method == "POST" else {}, mark=items.mark_of(found.kind, found.id),
        preview=preview,
    ), status


def _dispute_changes(found: Resolution):
    credits, corrections, errors = line_changes(request.form, found.invoice)
    if errors:
        raise InvalidData(errors)
    return credits, corrections


def _preview(found: Resolution, form: DecisionForm):
    """What the bill would be after this decision, worked out by the decision itself and rolled back:
    the same rules as "Send the decision", nothing kept, nothing sent."""
    invoice = found.invoice
    before = {"total": invoice.total, "balance": max(invoice.balance, 0), "credited": invoice.credited,
              "status": invoice.status}
    if form.outcome.data not in DECISIONS[Kind.DISPUTE]:
        return _resolution_page(found, form, _("Please choose a decision to see what it does to the bill."), 422)
    try:
        lock_invoice(found.invoice_id)
        credits, corrections = _dispute_changes(found)
        if cancels_the_bill(found, form.outcome.data, credits, corrections):
            # Not tried: cancelling stops the bill's payments at their providers, outside any rollback.
            db.session.rollback()
            after = {**before, "balance": 0, "status": InvoiceStatus.CANCELLED, "refund": 0}
            return _resolution_page(db.session.get(Resolution, found.id), form,
                                    preview={"before": before, "after": after})
        # The customer's words are not needed to work the amounts out; the preview is rolled back.
        answer_dispute(found, form.outcome.data, form.message.data or "preview", actor=f"agent:{me().id}",
                       credits=credits, corrections=corrections)
        db.session.flush()
        after = {"total": invoice.total, "balance": max(invoice.balance, 0), "credited": invoice.credited,
                 "status": invoice.status, "refund": max(-invoice.balance, 0)}
    except InvalidData as exc:
        db.session.rollback()
        return _resolution_page(db.session.get(Resolution, found.id), form, problems(exc.errors), 422)
    except IllegalTransition:
        db.session.rollback()
        return _resolution_page(db.session.get(Resolution, found.id), form,
                                _("This has been decided already, or the bill has changed."), 409)
    db.session.rollback()
    return _resolution_page(db.session.get(Resolution, found.id), form, preview={"before": before, "after": after})


@bp.get("/resolutions/<reference>")
@login_required
def resolution(reference: str):
    """A dispute or a request for more time or a plan, with what the customer wrote and sent."""
    found = by_reference(Resolution, reference)
    record("resolution_viewed", creditor_id=found.creditor_id, record_type="resolution", record_id=found.reference)
    db.session.commit()
    return _resolution_page(found, DecisionForm())


@bp.post("/resolutions/<reference>/decide")
@login_required
def decide(reference: str):
    """Answer a dispute (rejected, upheld, or partly upheld with credits and corrections), a request
    for more time or for a plan (granted or declined), with words the customer reads on the bill
    page and by e-mail."""
    found = by_reference(Resolution, reference)
    form = DecisionForm()
    if found.kind == Kind.DISPUTE and request.form.get("preview") and found.status == "open":
        return _preview(found, form)  # CSRF is checked for every POST (CSRFProtect), before this view
    agent = me()
    actor = f"agent:{agent.id}"
    if not form.validate_on_submit() or form.outcome.data not in DECISIONS.get(found.kind, ()):
        return _resolution_page(found, form, _("Please choose a decision and write a few words for the customer."),
                                422)
    try:
        lock_invoice(found.invoice_id)
        if found.kind == Kind.DISPUTE:
            credits, corrections = _dispute_changes(found)
            answer_dispute(found, form.outcome.data, form.message.data, actor=actor, credits=credits,
                           corrections=corrections)
        elif found.kind == Kind.DEFERRAL:
            decide_deferral(found, form.outcome.data == "grant", form.message.data, actor=actor)
        else:
            today = local_today(found.invoice.creditor.country, utcnow())
            decide_plan(found, form.outcome.data == "grant", form.message.data, actor=actor, today=today)
    except InvalidData as exc:
        db.session.rollback()
        return _resolution_page(db.session.get(Resolution, found.id), form, problems(exc.errors), 422)
    except IllegalTransition:
        db.session.rollback()
        return _resolution_page(db.session.get(Resolution, found.id), form,
                                _("This has been decided already, or the bill has changed."), 409)
    record("resolution_decided", creditor_id=found.creditor_id, record_type="resolution", record_id=found.reference,
           outcome=form.outcome.data)
    db.session.commit()
    flash(_("The decision is sent to the customer."), "done")
    return redirect(url_for(".resolution", reference=reference), code=303)

