"""The back office: sign-in (password, then a second factor, enrolled at the first sign-in),
sessions (idle and absolute timeouts, sign-out everywhere), the start page of what waits, a
customer's conversation and its answer, disputes and deferral requests and their decisions, the
preview of a customer's bill, and the audit log for supervisors.

Everything here is no-store, rate-limited where a password or code is typed, and recorded in the
audit log: every sign-in and refusal, and every page that shows a customer's data."""

from __future__ import annotations

import time

from flask import Blueprint, abort, current_app, g, redirect, render_template, request, session, url_for
from flask_babel import force_locale, gettext as _
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy import select

from app.backoffice import services
from app.backoffice.forms import DECISIONS, CodeForm, DecisionForm, ReplyForm, SignInForm
from app.backoffice.models import Agent
from app.billing.models import Invoice
from app.errors import IllegalTransition, InvalidData
from app.extensions import db, limiter, login_manager
from app.i18n import normalise_locale
from app.models import utcnow
from app.portal.services import local_today
from app.portal.views import bill_page_context
from app.resolutions.models import Kind, Resolution, Status
from app.resolutions.services import answer_dispute, decide_deferral
from app.support.models import RequestStatus, SupportRequest
from app.support.services import reply as reply_to_customer

bp = Blueprint("backoffice", __name__)
PENDING = "bo_pending"  # {a: agent id, v: session version, t: time}: the password was right
ENROL = "bo_enrol"  # the secret being enrolled (the agent's own, shown to them on the page)
PENDING_SECONDS = 300


@login_manager.user_loader
def _load_agent(user_id: str) -> Agent | None:
    """The session's agent, unless it was signed out everywhere (the version moved) or disabled."""
    agent_id, _sep, version = (user_id or "").partition(":")
    if not agent_id.isdigit() or not version.isdigit():
        return None
    agent = db.session.get(Agent, int(agent_id))
    if agent is None or agent.session_version != int(version) or not agent.is_active:
        return None
    return agent


@login_manager.unauthorized_handler
def _unauthorized():
    return redirect(url_for("backoffice.sign_in"))


@bp.before_request
def _session_limits():
    """No caching anywhere; an agent's session ends after BACKOFFICE_IDLE_MINUTES without a request
    and BACKOFFICE_SESSION_HOURS after signing in, whatever happens in between."""
    g.no_store = True
    g.creditor_locale = "en"
    if not current_user.is_authenticated:
        return None
    now, config = int(time.time()), current_app.config
    since, seen = session.get("bo_since", 0), session.get("bo_seen", 0)
    if now - seen > config["BACKOFFICE_IDLE_MINUTES"] * 60 or now - since > config["BACKOFFICE_SESSION_HOURS"] * 3600:
        _end_session()
        return redirect(url_for("backoffice.sign_in", expired=1))
    session["bo_seen"] = now
    return None


def _end_session() -> None:
    logout_user()
    for key in ("bo_since", "bo_seen", PENDING, ENROL):
        session.pop(key, None)


def _limit() -> str:
    return current_app.config["BACKOFFICE_SIGN_IN_RATE_LIMIT"]


def _ip() -> str | None:
    return request.remote_addr


def _pending_agent() -> Agent | None:
    pending = session.get(PENDING) or {}
    if int(time.time()) - pending.get("t", 0) > PENDING_SECONDS:
        return None
    agent = db.session.get(Agent, pending.get("a") or 0)
    if agent is None or agent.session_version != pending.get("v") or not agent.is_active:
        return None
    return agent


@bp.route("/sign-in", methods=["GET", "POST"])
@limiter.limit(_limit, methods=["POST"])
def sign_in():
    """E-mail and password; then the second factor."""
    if current_user.is_authenticated:
        return redirect(url_for(".home"))
    form = SignInForm()
    problem = None
    if form.validate_on_submit():
        now = utcnow()
        try:
            agent = services.check_credentials(form.email.data, form.password.data, now)
        except services.SignInRefused as refused:
            services.audit(refused.agent, "sign_in_refused", ip=_ip(), reason=refused.reason)
            db.session.commit()
            problem = (_("Too many failed attempts. Please try again in %(minutes)d minutes.",
                         minutes=services.LOCK_MINUTES) if refused.reason == "locked"
                       else _("That e-mail address and password do not match."))
        else:
            db.session.commit()
            session[PENDING] = {"a": agent.id, "v": agent.session_version, "t": int(time.time())}
            target = ".code" if agent.totp_secret else ".enrol"
            return redirect(url_for(target), code=303)
    elif request.method == "POST":
        problem = _("Please enter your e-mail address and password.")
    expired = request.args.get("expired") == "1"
    return render_template("backoffice/sign_in.html", form=form, problem=problem, expired=expired), (
        422 if problem else 200)


def _signed_in(agent: Agent, action: str):
    session.pop(PENDING, None)
    session.pop(ENROL, None)
    login_user(agent)
    now = int(time.time())
    session["bo_since"] = session["bo_seen"] = now
    services.audit(agent, action, ip=_ip())
    db.session.commit()
    return redirect(url_for(".home"), code=303)


@bp.route("/sign-in/code", methods=["GET", "POST"])
@limiter.limit(_limit, methods=["POST"])
def code():
    """The six-digit code from the agent's authenticator app."""
    agent = _pending_agent()
    if agent is None or not agent.totp_secret:
        return redirect(url_for(".sign_in"))
    form = CodeForm()
    problem = None
    if form.validate_on_submit():
        try:
            services.check_code(agent, form.code.data, utcnow())
        except services.SignInRefused as refused:
            services.audit(agent, "sign_in_refused", ip=_ip(), reason=refused.reason)
            db.session.commit()
            problem = _("That code is not right. Please try the current one.")
            if refused.reason == "locked" or services.is_locked(agent, utcnow()):
                session.pop(PENDING, None)
                return redirect(url_for(".sign_in"), code=303)
        else:
            return _signed_in(agent, "sign_in")
    return render_template("backoffice/code.html", form=form, problem=problem), 422 if problem else 200


@bp.route("/sign-in/enrol", methods=["GET", "POST"])
@limiter.limit(_limit, methods=["POST"])
def enrol():
    """First sign-in: add the account to an authenticator app (QR code or key), confirm with a code."""
    agent = _pending_agent()
    if agent is None:
        return redirect(url_for(".sign_in"))
    if agent.totp_secret:
        return redirect(url_for(".code"))
    secret = session.get(ENROL) or services.new_totp_secret()
    session[ENROL] = secret
    form = CodeForm()
    problem = None
    if form.validate_on_submit():
        try:
            services.check_code(agent, form.code.data, utcnow(), secret=secret)
        except services.SignInRefused:
            services.audit(agent, "mfa_enrolment_refused", ip=_ip())
            db.session.commit()
            problem = _("That code is not right. Please try the current one.")
        else:
            services.audit(agent, "mfa_enrolled", ip=_ip())
            return _signed_in(agent, "sign_in")
    uri = services.provisioning_uri(agent, secret)
    qr = services.provisioning_qr_svg(uri, _("QR code for your authenticator app"))
    return render_template("backoffice/enrol.html", form=form, problem=problem, qr=qr, secret=secret), (
        422 if problem else 200)


@bp.post("/sign-out")
@login_required
def sign_out():
    """End this session."""
    services.audit(current_user, "sign_out", ip=_ip())
    db.session.commit()
    _end_session()
    return redirect(url_for(".sign_in"), code=303)


@bp.post("/sign-out-everywhere")
@login_required
def sign_out_everywhere():
    """End every session of this agent, on every device."""
    agent = current_user._get_current_object()
    services.sign_out_everywhere(agent)
    services.audit(agent, "sign_out_everywhere", ip=_ip())
    db.session.commit()
    _end_session()
    return redirect(url_for(".sign_in"), code=303)


@bp.get("/")
@login_required
def home():
    """What waits for the agent's creditors: open contact requests, disputes and requests."""
    agent = current_user._get_current_object()
    scope = services.scope_of(agent)
    requests = db.session.scalars(
        scope.select(SupportRequest).where(SupportRequest.status == RequestStatus.OPEN)
        .order_by(SupportRequest.created_at).limit(200)
    ).all()
    waiting = db.session.scalars(
        scope.select(Resolution).where(Resolution.status == Status.OPEN).order_by(Resolution.created_at).limit(200)
    ).all()
    services.audit(agent, "inbox_viewed", ip=_ip(), requests=len(requests), resolutions=len(waiting))
    db.session.commit()
    creditors = {role.creditor_id: role for role in agent.roles}
    return render_template("backoffice/home.html", agent=agent, requests=requests, waiting=waiting,
                           creditors=creditors, now=utcnow())


def _scoped(model, reference: str):
    """The record of `model` with this reference among the agent's creditors', or 404."""
    scope = services.scope_of(current_user._get_current_object())
    found = db.session.scalar(scope.select(model).where(model.reference == reference))
    if found is None:
        abort(404)
    return found


@bp.get("/requests/<reference>")
@login_required
def support_request(reference: str):
    """A customer's conversation about a bill, and the form to answer it."""
    found = _scoped(SupportRequest, reference)
    services.audit(current_user, "request_viewed", creditor_id=found.creditor_id, record_type="support_request",
                   record_id=found.reference, ip=_ip())
    db.session.commit()
    return render_template("backoffice/request.html", request_=found, form=ReplyForm(), invoice=found.invoice)


@bp.post("/requests/<reference>/reply")
@login_required
def reply(reference: str):
    """Answer the customer: in the thread on the bill page and by e-mail, in the customer's language."""
    found = _scoped(SupportRequest, reference)
    form = ReplyForm()
    problem = None
    if form.validate_on_submit():
        agent = current_user._get_current_object()
        try:
            reply_to_customer(found, form.message.data, agent_name=agent.name, actor=f"agent:{agent.id}")
        except (InvalidData, IllegalTransition):
            db.session.rollback()
            problem = _("The answer could not be sent: it is empty, or the conversation is closed.")
        else:
            services.audit(agent, "request_replied", creditor_id=found.creditor_id, record_type="support_request",
                           record_id=found.reference, ip=_ip())
            db.session.commit()
            return redirect(url_for(".support_request", reference=reference), code=303)
    else:
        problem = _("Please write your answer.")
    return render_template("backoffice/request.html", request_=found, form=form, invoice=found.invoice,
                           problem=problem), 422


def _resolution_page(found: Resolution, form: DecisionForm, problem: str | None = None, status: int = 200):
    return render_template("backoffice/resolution.html", resolution=found, invoice=found.invoice, form=form,
                           problem=problem), status


@bp.get("/resolutions/<reference>")
@login_required
def resolution(reference: str):
    """A dispute or a request for more time, with what the customer wrote and sent."""
    found = _scoped(Resolution, reference)
    services.audit(current_user, "resolution_viewed", creditor_id=found.creditor_id, record_type="resolution",
                   record_id=found.reference, ip=_ip())
    db.session.commit()
    return _resolution_page(found, DecisionForm())


@bp.post("/resolutions/<reference>/decide")
@login_required
def decide(reference: str):
    """Answer a dispute (upheld or rejected) or a deferral request (granted or declined), with words
    the customer reads on the bill page and by e-mail."""
    found = _scoped(Resolution, reference)
    form = DecisionForm()
    agent = current_user._get_current_object()
    if not form.validate_on_submit() or form.outcome.data not in DECISIONS.get(found.kind, ()):
        return _resolution_page(found, form, _("Please choose a decision and write a few words for the customer."),
                                422)
    try:
        if found.kind == Kind.DISPUTE:
            answer_dispute(found, form.outcome.data, form.message.data, actor=f"agent:{agent.id}")
        else:
            decide_deferral(found, form.outcome.data == "grant", form.message.data, actor=f"agent:{agent.id}")
    except (InvalidData, IllegalTransition):
        db.session.rollback()
        return _resolution_page(found, form, _("This has been decided already, or the bill has changed."), 409)
    services.audit(agent, "resolution_decided", creditor_id=found.creditor_id, record_type="resolution",
                   record_id=found.reference, ip=_ip(), outcome=form.outcome.data)
    db.session.commit()
    return redirect(url_for(".resolution", reference=reference), code=303)


@bp.get("/audit")
@login_required
def audit_log():
    """The audit log, for supervisors and admins of a creditor (reading it is recorded too)."""
    agent = current_user._get_current_object()
    scope = services.scope_of(agent, services.SUPERVISING)
    if not scope.creditor_ids:
        abort(404)
    before = request.args.get("before", "")
    entries = services.audit_entries(scope, before_id=int(before) if before.isdigit() else None)
    services.audit(agent, "audit_viewed", ip=_ip(), before=before or None)
    db.session.commit()
    names = {a.id: a.email for a in db.session.scalars(
        select(Agent).where(Agent.id.in_({e.agent_id for e in entries if e.agent_id})))}
    return render_template("backoffice/audit.html", entries=entries, names=names)


@bp.get("/invoices/<int:invoice_id>/preview")
@login_required
def preview(invoice_id: int):
    """The customer's bill page, read-only, in the customer's language, as it looks today."""
    agent = current_user._get_current_object()
    invoice = services.scope_of(agent).get(Invoice, invoice_id)
    if invoice is None:
        abort(404)
    services.audit(agent, "bill_previewed", creditor_id=invoice.creditor_id, record_type="invoice",
                   record_id=invoice.number, ip=_ip())
    db.session.commit()
    locale = normalise_locale(invoice.customer.preferred_locale) or invoice.creditor.default_locale
    with force_locale(locale):
        context = bill_page_context(invoice, local_today(invoice.creditor.country, utcnow()))
        return render_template("portal/bill.html", preview=True, **context)
