"""The overview of each creditor (counts and a chart of the last 30 days), saved answers
(supervisors and admins), the agents of a creditor (admins), and the audit log (supervisors and
admins; reading it is recorded too, and nobody can change it)."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import login_required
from sqlalchemy import select

from app.backoffice import overview, services
from app.backoffice.export import csv_response
from app.backoffice.forms import AgentAdminForm, TemplateForm
from app.backoffice.models import Agent, ReplyTemplate, Role
from app.backoffice.views import ADMIN, SUPERVISING, bp, me, need, record, scope, scope_needing
from app.backoffice.words import problems
from app.core.dates import local_today
from app.creditors.models import Creditor
from app.errors import InvalidData
from app.extensions import db
from app.i18n import SUPPORTED_LOCALES, format_locale
from app.models import utcnow


def _creditors(ids) -> list[Creditor]:
    return list(db.session.scalars(select(Creditor).where(Creditor.id.in_(ids)).order_by(Creditor.name)))


WIDE_CHART = 900  # the desktop's drawing, in its own units (a phone's is 400)


@bp.get("/overview")
@login_required
def overview_page():
    """For each creditor: links opened, payments, disputes and the median days from link to payment."""
    labels = {"payments": _("Payments through the portal"), "links_opened": _("Links opened"),
              "disputes": _("Disputes"), "median_days": _("Median days from link to payment")}
    cards = []
    for creditor in _creditors(scope().creditor_ids):
        today = local_today(creditor.country, utcnow())
        figures = overview.creditor_overview(creditor.id, creditor.country, today)
        title = _("The last 30 days at %(creditor)s", creditor=creditor.name)
        locale = format_locale(str(get_locale()))
        # One drawing for a phone's width and one for a desktop's: CSS shows the one that fits.
        charts = (overview.chart_svg(figures, title=title, labels=labels, locale=locale),
                  overview.chart_svg(figures, title=title, labels=labels, locale=locale, width=WIDE_CHART,
                                     id_prefix=f"overview-wide-{creditor.id}"))
        cards.append((creditor, figures, charts, overview.creditor_book(creditor.id, creditor.country, today)))
    record("overview_viewed", creditor_ids=[card[0].id for card in cards], creditors=len(cards))
    db.session.commit()
    return render_template("backoffice/overview.html", cards=cards)


# --- saved answers -----------------------------------------------------------------------------------


@bp.get("/templates")
@login_required
def templates():
    """The saved answers of the creditors the agent supervises, and a form to add one."""
    visible = scope_needing(SUPERVISING)
    saved = list(db.session.scalars(visible.select(ReplyTemplate).order_by(
        ReplyTemplate.creditor_id, ReplyTemplate.locale, ReplyTemplate.title)))
    editing = None
    if request.args.get("edit", "").isdigit():
        editing = visible.get(ReplyTemplate, int(request.args["edit"]))
    return _templates_page(visible, saved, editing)


def _templates_page(visible, saved, editing, form: TemplateForm | None = None, problem_list=None, status=200):
    if form is None:
        form = TemplateForm(obj=editing) if editing else TemplateForm(data={"locale": "en"})
    return render_template("backoffice/templates.html", saved=saved, creditors=_creditors(visible.creditor_ids),
                           form=form, editing=editing, locales=SUPPORTED_LOCALES, problems=problem_list or [],
                           placeholders=services.PLACEHOLDERS), status


@bp.post("/templates")
@login_required
def save_template():
    """Add a saved answer, or change one (`id` in the form)."""
    visible = scope_needing(SUPERVISING)
    form = TemplateForm()
    editing = None
    if request.form.get("id", "").isdigit():
        editing = visible.get(ReplyTemplate, int(request.form["id"]))
        if editing is None:
            abort(404)
    try:
        if not form.validate_on_submit():
            raise InvalidData({"body": "required"})
        creditor_id = form.creditor_id.data
        if not visible.allows(creditor_id) or (editing is not None and editing.creditor_id != creditor_id):
            abort(404)
        template = services.save_template(me(), creditor_id, locale=form.locale.data, title=form.title.data,
                                          body=form.body.data, template=editing)
    except InvalidData as exc:
        db.session.rollback()
        saved = list(db.session.scalars(visible.select(ReplyTemplate)))
        return _templates_page(visible, saved, editing, form, problems(exc.errors), 422)
    record("template_saved", creditor_id=template.creditor_id, record_type="reply_template", record_id=template.id)
    db.session.commit()
    flash(_("The saved answer is stored."), "done")
    return redirect(url_for(".templates"), code=303)


@bp.post("/templates/<int:template_id>/delete")
@login_required
def delete_template(template_id: int):
    template = scope(SUPERVISING).get(ReplyTemplate, template_id)
    if template is None:
        abort(404)
    record("template_deleted", creditor_id=template.creditor_id, record_type="reply_template",
           record_id=template.id, title=template.title)
    db.session.delete(template)
    db.session.commit()
    flash(_("The saved answer is deleted."), "done")
    return redirect(url_for(".templates"), code=303)


# --- agents ------------------------------------------------------------------------------------------


@bp.get("/agents")
@login_required
def agents():
    """The agents of the creditors this agent is an admin of, with their roles."""
    visible = scope_needing(ADMIN)
    record("agents_viewed", creditor_ids=visible.creditor_ids)
    db.session.commit()
    creditors = {c.id: c for c in _creditors(visible.creditor_ids)}
    return render_template("backoffice/agents.html", rows=services.agents_of(visible), creditors=creditors,
                           roles=Role.values(), form=AgentAdminForm(), admin_of=visible)


#: What changes the agent everywhere (every creditor's back office): only an admin of every creditor the
#: agent works for, or an operator (`flask agents ...`).
GLOBAL_ACTIONS = ("disable", "enable", "reset_mfa")


@bp.post("/agents/<int:agent_id>")
@login_required
def change_agent(agent_id: int):
    """An admin changes another agent's role at one of the admin's creditors or removes it there
    (every session of theirs ends). Disabling or enabling the agent and resetting their second
    factor change them at every creditor, so they need an admin of every creditor the agent works
    for; otherwise an operator does it (`flask agents disable|enable|reset-second-factor`). A reset
    sends the agent a one-time enrolment code by e-mail; the new factor is set up only with it."""
    form = AgentAdminForm()
    if not form.validate_on_submit():
        abort(400)
    creditor_id = form.creditor_id.data
    admin_of = scope(ADMIN)
    if not admin_of.allows(creditor_id):
        abort(404)
    need(creditor_id, ADMIN)
    agent = db.session.get(Agent, agent_id)
    if agent is None or agent.role_for(creditor_id) is None:
        abort(404)
    if agent.id == me().id:
        flash(_("You cannot change your own access here; ask another admin."), "problem")
        return redirect(url_for(".agents"), code=303)
    action, _sep, role = form.action.data.partition(":")
    if action in GLOBAL_ACTIONS and not admin_of.covers(agent.creditor_ids()):
        record("agent_change_refused", creditor_ids=agent.creditor_ids(), record_type="agent", record_id=agent.id,
               change=action)
        db.session.commit()
        flash(_("%(name)s also works for creditors you are not an admin of, so this change is not yours to make. "
                "Ask an operator, or an admin of all of them.", name=agent.name), "problem")
        return redirect(url_for(".agents"), code=303)
    if action == "role" and role in Role.values():
        creditor = db.session.get(Creditor, creditor_id)
        services.grant_role(agent, creditor, role)
        services.sign_out_everywhere(agent)  # the new role applies from the next sign-in
    elif action == "remove":
        services.remove_role(agent, creditor_id)
    elif action in ("disable", "enable"):
        services.set_disabled(agent, action == "disable")
    elif action == "reset_mfa":
        services.reset_second_factor(agent)
        services.send_enrolment_code(agent, creditor_id=creditor_id, locale=str(get_locale() or "en"))
    else:
        abort(400)
    if action in GLOBAL_ACTIONS:  # the agent's business at every creditor they work for
        record(f"agent_{action}", creditor_ids=agent.creditor_ids(), record_type="agent", record_id=agent.id)
    else:
        record(f"agent_{action}", creditor_id=creditor_id, record_type="agent", record_id=agent.id, role=role or None)
    db.session.commit()
    if action == "reset_mfa":
        flash(_("The second factor of %(name)s is reset. A one-time code to set up a new one is on its way to "
                "%(email)s.", name=agent.name, email=agent.email), "done")
    else:
        flash(_("The change is saved for %(name)s.", name=agent.name), "done")
    return redirect(url_for(".agents"), code=303)


# --- the audit log -----------------------------------------------------------------------------------


def _audit_scope():
    return scope_needing(SUPERVISING, 404)  # a plain agent is not told the log exists


@bp.get("/audit")
@login_required
def audit_log():
    """The audit log, for supervisors and admins of a creditor (reading it is recorded too)."""
    visible = _audit_scope()
    before = request.args.get("before", "")
    entries = services.audit_entries(visible, before_id=int(before) if before.isdigit() else None)
    record("audit_viewed", creditor_ids=visible.creditor_ids, before=before or None)
    db.session.commit()
    names = {a.id: a.email for a in db.session.scalars(
        select(Agent).where(Agent.id.in_({e.agent_id for e in entries if e.agent_id})))}
    slugs = {c.id: c.slug for c in _creditors(visible.creditor_ids)}
    concerns = {entry_id: " ".join(slugs.get(one, str(one)) for one in ids)
                for entry_id, ids in services.entry_creditors(entries).items()}
    return render_template("backoffice/audit.html", entries=entries, names=names, concerns=concerns)


@bp.get("/audit.csv")
@login_required
def audit_export():
    """The audit log as CSV, newest first (up to 10,000 entries; recorded)."""
    visible = _audit_scope()
    entries = services.audit_entries(visible, limit=10_000)
    record("audit_exported", creditor_ids=visible.creditor_ids, rows=len(entries))
    db.session.commit()
    names = {a.id: a.email for a in db.session.scalars(
        select(Agent).where(Agent.id.in_({e.agent_id for e in entries if e.agent_id})))}
    slugs = {c.id: c.slug for c in _creditors(visible.creditor_ids)}
    concerns = services.entry_creditors(entries)
    return csv_response("audit.csv", ["at_utc", "agent", "action", "creditor", "record_type", "record_id", "ip",
                                      "detail"], (
        [e.at.isoformat(), names.get(e.agent_id, e.actor if e.agent_id is None else ""), e.action,
         " ".join(slugs.get(one, "") for one in concerns[e.id]), e.record_type or "", e.record_id or "", e.ip or "",
         ", ".join(f"{k}={v}" for k, v in sorted((e.detail or {}).items()))]
        for e in entries))
