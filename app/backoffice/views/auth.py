"""Signing in to the back office: e-mail and password, then the six-digit code of a second factor
(enrolled at the first sign-in, with a QR code or the key); signing out, here or everywhere.

Every sign-in and refusal is recorded in the audit log; the password and code steps are
rate-limited per client address, and five wrong answers in a row lock the account."""

from __future__ import annotations

import time

from flask import current_app, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user

from app.backoffice import services
from app.backoffice.forms import CodeForm, SignInForm
from app.backoffice.models import Agent
from app.backoffice.views import bp, client_ip
from app.extensions import db, limiter, login_manager
from app.models import utcnow

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


def end_session() -> None:
    logout_user()
    for key in ("bo_since", "bo_seen", PENDING, ENROL):
        session.pop(key, None)


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
            services.audit(refused.agent, "sign_in_refused", ip=client_ip(), reason=refused.reason)
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
    services.audit(agent, action, ip=client_ip())
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
            services.audit(agent, "sign_in_refused", ip=client_ip(), reason=refused.reason)
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
            services.audit(agent, "mfa_enrolment_refused", ip=client_ip())
            db.session.commit()
            problem = _("That code is not right. Please try the current one.")
        else:
            services.audit(agent, "mfa_enrolled", ip=client_ip())
            return _signed_in(agent, "sign_in")
    uri = services.provisioning_uri(agent, secret)
    qr = services.qr_svg(uri, _("QR code for your authenticator app"))
    return render_template("backoffice/enrol.html", form=form, problem=problem, qr=qr, secret=secret), (
        422 if problem else 200)


@bp.post("/sign-out")
@login_required
def sign_out():
    """End this session."""
    services.audit(current_user, "sign_out", ip=client_ip())
    db.session.commit()
    end_session()
    return redirect(url_for(".sign_in"), code=303)


@bp.post("/sign-out-everywhere")
@login_required
def sign_out_everywhere():
    """End every session of this agent, on every device."""
    agent = current_user._get_current_object()
    services.sign_out_everywhere(agent)
    services.audit(agent, "sign_out_everywhere", ip=client_ip())
    db.session.commit()
    end_session()
    return redirect(url_for(".sign_in"), code=303)
