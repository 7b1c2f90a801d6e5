"""Signing in to the back office: e-mail and password, then the six-digit code of a second factor
(enrolled at the first sign-in, with a QR code or the key; after a reset, only with a one-time
enrolment code sent to the agent); signing out, here or everywhere.

Every sign-in and refusal is recorded in the audit log. Wrong passwords slow the client down, per
address typed and per client address, the same way for every address, known or not; wrong codes
(reached only with the right password) lock the account. A session is known to the server
(`AgentSession`): signing out ends it there, so a copy of the cookie is worthless after."""

from __future__ import annotations

import math
import time

from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user, login_required, login_user, logout_user

from app.audit import audit
from app.backoffice import recovery, services
from app.backoffice.forms import CodeForm, EnrolmentCodeForm, SignInForm
from app.backoffice.models import Agent
from app.backoffice.views import bp, client_ip
from app.extensions import db, limiter, login_manager
from app.models import utcnow

PENDING = "bo_pending"  # {a: agent id, v: session version, t: time, c: the enrolment code was right}
SESSION_KEY = "bo_session"  # the key of the server's AgentSession row
PENDING_SECONDS = 300


def _session_hours() -> int:
    return current_app.config["BACKOFFICE_SESSION_HOURS"]


@login_manager.user_loader
def _load_agent(user_id: str) -> Agent | None:
    """The session's agent, in one statement: the session open on the server, the agent enabled and
    not signed out everywhere since (the version)."""
    agent_id, _sep, version = (user_id or "").partition(":")
    key = session.get(SESSION_KEY)
    if not agent_id.isdigit() or not version.isdigit() or not isinstance(key, str):
        return None
    return services.session_agent(int(agent_id), int(version), key, utcnow(), max_hours=_session_hours())


@login_manager.unauthorized_handler
def _unauthorized():
    return redirect(url_for("backoffice.sign_in"))


def end_session() -> None:
    """This browser's session ends, on the server too (the caller commits)."""
    key = session.pop(SESSION_KEY, None)
    if isinstance(key, str):
        services.end_session(key, utcnow())
    logout_user()
    for name in ("bo_since", "bo_seen", PENDING):
        session.pop(name, None)


def _limit() -> str:
    return current_app.config["BACKOFFICE_SIGN_IN_RATE_LIMIT"]


def _pending_agent() -> Agent | None:
    pending = session.get(PENDING) or {}
    if int(time.time()) - pending.get("t", 0) > PENDING_SECONDS:
        return None
    agent = db.session.get(Agent, pending.get("a") or 0)
    if agent is None or agent.session_version != pending.get("v") or not agent.is_active:
        return None
    return agent


def _next_step(agent: Agent) -> str:
    if agent.has_second_factor:
        return ".code"
    if agent.enrolment_code_required and not (session.get(PENDING) or {}).get("c"):
        return ".enrolment_code"
    return ".enrol"


@bp.route("/sign-in", methods=["GET", "POST"])
@limiter.limit(_limit, methods=["POST"])
def sign_in():
    """E-mail and password; then the second factor."""
    if current_user.is_authenticated:
        return redirect(url_for(".home"))
    form = SignInForm()
    problem, status, headers = None, 200, {}
    if form.validate_on_submit():
        email, ip, now = form.email.data, client_ip(), utcnow()
        wait = services.sign_in_wait(email, ip)
        try:
            if wait:  # the same path for every address, known or not: no hash verified, nothing counted
                raise services.SignInRefused("throttled", services.find_agent(email))
            agent = services.check_credentials(email, form.password.data, now)
        except services.SignInRefused as refused:
            if refused.reason in ("unknown", "password", "disabled"):
                services.sign_in_failed(email, ip)
            audit(refused.agent, "sign_in_refused", ip=ip, reason=refused.reason)
            db.session.commit()
            status = 422
            if refused.reason == "throttled":
                minutes = math.ceil(wait / 60)
                problem = ngettext("Too many failed attempts. Please try again in %(num)d minute.",
                                   "Too many failed attempts. Please try again in %(num)d minutes.", minutes)
                status, headers = 429, {"Retry-After": str(wait)}
            elif refused.reason == "locked":
                problem = _("Too many failed attempts. Please try again in %(minutes)d minutes.",
                            minutes=services.LOCK_MINUTES)
            else:
                problem = _("That e-mail address and password do not match.")
        else:
            services.sign_in_succeeded(email, ip)
            db.session.commit()
            session[PENDING] = {"a": agent.id, "v": agent.session_version, "t": int(time.time())}
            return redirect(url_for(_next_step(agent)), code=303)
    elif request.method == "POST":
        problem, status = _("Please enter your e-mail address and password."), 422
    expired = request.args.get("expired") == "1"
    return render_template("backoffice/sign_in.html", form=form, problem=problem, expired=expired), status, headers


def _signed_in(agent: Agent, action: str):
    session.pop(PENDING, None)
    key = services.start_session(agent, utcnow(), max_hours=_session_hours())
    login_user(agent)
    session[SESSION_KEY] = key
    now = int(time.time())
    session["bo_since"] = session["bo_seen"] = now
    audit(agent, action, ip=client_ip())
    db.session.commit()
    return redirect(url_for(".home"), code=303)


def _locked_out():
    session.pop(PENDING, None)
    return redirect(url_for(".sign_in"), code=303)


@bp.route("/sign-in/code", methods=["GET", "POST"])
@limiter.limit(_limit, methods=["POST"])
def code():
    """The six-digit code from the agent's authenticator app, or one of their recovery codes."""
    agent = _pending_agent()
    if agent is None or not agent.has_second_factor:
        return redirect(url_for(".sign_in"))
    form = CodeForm()
    problem = None
    if form.validate_on_submit():
        by_recovery = recovery.looks_like_one(form.code.data)
        try:
            if by_recovery:
                left = recovery.use_code(agent, form.code.data, utcnow())
            else:
                services.check_code(agent, form.code.data, utcnow())
        except services.SignInRefused as refused:
            audit(agent, "sign_in_refused", ip=client_ip(), reason=refused.reason)
            db.session.commit()
            problem = (_("That recovery code is not right, or it was used already.") if by_recovery
                       else _("That code is not right. Please try the current one."))
            if refused.reason == "locked" or services.is_locked(agent, utcnow()):
                return _locked_out()
        else:
            if by_recovery:
                audit(agent, "recovery_code_used", ip=client_ip(), left=left)
                flash(ngettext("You signed in with a recovery code. %(num)d code is left: make new ones when few "
                               "are left.", "You signed in with a recovery code. %(num)d codes are left: make new "
                               "ones when few are left.", left), "done" if left > 2 else "problem")
            return _signed_in(agent, "sign_in")
    return render_template("backoffice/code.html", form=form, problem=problem), 422 if problem else 200


@bp.route("/sign-in/enrolment-code", methods=["GET", "POST"])
@limiter.limit(_limit, methods=["POST"])
def enrolment_code():
    """After a reset of the second factor: the one-time code the agent received, before a new
    factor can be set up (the password alone is not enough)."""
    agent = _pending_agent()
    if agent is None:
        return redirect(url_for(".sign_in"))
    if _next_step(agent) != ".enrolment_code":
        return redirect(url_for(_next_step(agent)))
    form = EnrolmentCodeForm()
    problem = None
    if form.validate_on_submit():
        try:
            services.check_enrolment_code(agent, form.code.data, utcnow())
        except services.SignInRefused as refused:
            audit(agent, "enrolment_code_refused", ip=client_ip(), reason=refused.reason)
            db.session.commit()
            problem = _("That code is not right, or no longer valid. Ask your admin for a new one if it has "
                        "expired.")
            if refused.reason == "locked" or services.is_locked(agent, utcnow()):
                return _locked_out()
        else:
            audit(agent, "enrolment_code_accepted", ip=client_ip())
            db.session.commit()
            session[PENDING] = {**session[PENDING], "c": True}
            return redirect(url_for(".enrol"), code=303)
    return render_template("backoffice/enrolment_code.html", form=form, problem=problem), 422 if problem else 200


@bp.route("/sign-in/enrol", methods=["GET", "POST"])
@limiter.limit(_limit, methods=["POST"])
def enrol():
    """First sign-in (or after a reset and its code): add the account to an authenticator app (QR
    code or key), confirm with a code. The secret waits on the agent's row, encrypted."""
    agent = _pending_agent()
    if agent is None:
        return redirect(url_for(".sign_in"))
    if _next_step(agent) != ".enrol":
        return redirect(url_for(_next_step(agent)))
    secret = services.pending_secret(agent)
    db.session.commit()
    form = CodeForm()
    problem = None
    if form.validate_on_submit():
        try:
            services.check_code(agent, form.code.data, utcnow(), enrolling=True)
        except services.SignInRefused as refused:
            audit(agent, "mfa_enrolment_refused", ip=client_ip())
            db.session.commit()
            problem = _("That code is not right. Please try the current one.")
            if refused.reason == "locked" or services.is_locked(agent, utcnow()):
                return _locked_out()
        else:
            audit(agent, "mfa_enrolled", ip=client_ip())
            codes = recovery.new_codes(agent, utcnow())
            audit(agent, "recovery_codes_made", ip=client_ip(), count=len(codes))
            _signed_in(agent, "sign_in")
            # Shown once, in this answer (never stored readable, never put in a cookie or a redirect).
            return render_template("backoffice/recovery_codes.html", codes=codes, enrolled=True)
    uri = services.provisioning_uri(agent, secret)
    qr = services.qr_svg(uri, _("QR code for your authenticator app"), fluid=True)
    return render_template("backoffice/enrol.html", form=form, problem=problem, qr=qr, secret=secret,
                           grouped_secret=recovery.grouped(secret)), (422 if problem else 200)


@bp.route("/account/recovery-codes", methods=["GET", "POST"])
@login_required
@limiter.limit(_limit, methods=["POST"])
def recovery_codes():
    """How many recovery codes are left; new ones (the old ones end) for a current code from the app."""
    agent = current_user._get_current_object()
    form = CodeForm()
    problem = None
    if form.validate_on_submit():
        try:
            services.check_code(agent, form.code.data, utcnow())
        except services.SignInRefused as refused:
            audit(agent, "recovery_codes_refused", ip=client_ip(), reason=refused.reason)
            db.session.commit()
            problem = _("That code is not right. Please try the current one.")
        else:
            codes = recovery.new_codes(agent, utcnow())
            audit(agent, "recovery_codes_made", ip=client_ip(), count=len(codes))
            db.session.commit()
            return render_template("backoffice/recovery_codes.html", codes=codes, enrolled=False)
    elif request.method == "POST":
        problem = _("Please enter the code from your authenticator app.")
    return render_template("backoffice/recovery.html", form=form, problem=problem, left=recovery.codes_left(agent)), (
        422 if problem else 200)


@bp.post("/sign-out")
@login_required
def sign_out():
    """End this session, on the server too."""
    audit(current_user, "sign_out", ip=client_ip())
    end_session()
    db.session.commit()
    return redirect(url_for(".sign_in"), code=303)


@bp.post("/sign-out-everywhere")
@login_required
def sign_out_everywhere():
    """End every session of this agent, on every device."""
    agent = current_user._get_current_object()
    services.sign_out_everywhere(agent)
    audit(agent, "sign_out_everywhere", ip=client_ip())
    end_session()
    db.session.commit()
    return redirect(url_for(".sign_in"), code=303)
