"""The creditor console's reminder plans (issue 17) and the experiments on a step's text (issue 18):
the creditor's plans and versions (the default, the open bills following each), a version with its
steps, variants and their results and the rules of its jurisdiction, a new version from a form (checked
by the dunning services the command line uses; a version is never changed: saving makes the next one),
the default, the preview of every step in every language, and stopping a variant.

The creditor admin role at that creditor, as every console page (`console._creditor`); every change is
audited; bad input changes nothing and is named next to its field (422)."""

from __future__ import annotations

import re

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import login_required
from sqlalchemy import select

from app.analytics.reminder_variants import WINDOW_DAYS, step_results
from app.backoffice import plans
from app.backoffice.views import bp, console_creditor, me, record
from app.billing.models import Invoice
from app.core.dates import local_today
from app.creditors.models import Creditor
from app.dunning import services as dunning
from app.dunning import variants as text_variants
from app.dunning.models import Channel, Jurisdiction, Plan, StepKind, StepVariant
from app.dunning.settings import languages_of
from app.dunning.templates import Rendered
from app.errors import InvalidData
from app.extensions import db
from app.i18n import SUPPORTED_LOCALES
from app.models import utcnow


def _plan(creditor: Creditor, plan_id: int) -> Plan:
    found = plans.plan_of(creditor.id, plan_id)
    if found is None:
        abort(404)
    return found


def _words() -> dict:
    return {"language_names": plans.language_names(list(SUPPORTED_LOCALES)), "kinds": StepKind.words(),
            "anchors": plans.anchor_words(), "channels": Channel.words(),
            "jurisdictions": Jurisdiction.words()}


@bp.get("/console/<int:creditor_id>/plans")
@login_required
def console_plans(creditor_id: int):
    """The creditor's reminder plans, each version with its open bills."""
    creditor = console_creditor(creditor_id)
    found = dunning.plans_of(creditor.id)
    record("console_viewed", creditor_id=creditor.id, record_type="creditor", record_id=creditor.id, page="plans")
    db.session.commit()
    return render_template("backoffice/console/plans.html", creditor=creditor, plans=found,
                           open_bills=plans.open_bills(creditor.id), section="plans", **_words())


@bp.get("/console/<int:creditor_id>/plans/<int:plan_id>")
@login_required
def console_plan(creditor_id: int, plan_id: int):
    """One version: its steps, their variants with results, the rules it was checked against."""
    creditor = console_creditor(creditor_id)
    plan = _plan(creditor, plan_id)
    today = local_today(creditor.country, utcnow())
    results = {step.id: step_results(creditor.id, step.id) for step in plan.steps if step.variants}
    record("console_viewed", creditor_id=creditor.id, record_type="dunning_plan", record_id=plan.id, page="plan")
    db.session.commit()
    return render_template("backoffice/console/plan.html", creditor=creditor, plan=plan, results=results,
                           open_bills=plans.open_bills(creditor.id).get(plan.id, 0),
                           rules=plans.rules_of(plan.jurisdiction),
                           dated=plans.values_in_force(plan.jurisdiction, today),
                           doc=plans.DOCS[Jurisdiction(plan.jurisdiction)], window_days=WINDOW_DAYS,
                           interval_text=plans.interval_text,
                           section="plans", **_words())


def _form_page(creditor: Creditor, values: dict, languages: list[str], problems: dict | None = None,
               status: int = 200, based_on: Plan | None = None):
    return render_template("backoffice/console/plan_form.html", creditor=creditor, values=values,
                           problems=problems or {}, languages=languages, based_on=based_on,
                           steps=plans.rows(values), section="plans", **_words()), status


@bp.get("/console/<int:creditor_id>/plans/new")
@login_required
def console_plan_new(creditor_id: int):
    """The form for a new version: from a version of the creditor's (`from`), else the shipped plan."""
    creditor = console_creditor(creditor_id)
    raw = request.args.get("from", "")
    based_on = _plan(creditor, int(raw)) if re.fullmatch(r"[0-9]{1,12}", raw) else None
    if raw and based_on is None:
        abort(404)
    data = plans.start_from(creditor, based_on)
    return _form_page(creditor, plans.form_values(data, creditor.currency), plans.form_languages(creditor, data),
                      based_on=based_on)


@bp.post("/console/<int:creditor_id>/plans/new")
@login_required
def console_plan_save(creditor_id: int):
    """Save the form as the next version of its plan (a new plan when the name is new)."""
    creditor = console_creditor(creditor_id)
    languages = plans.form_languages(creditor, request.form.get("languages", ""))
    found = plans.data_from_form(request.form, creditor, languages)
    values = {**request.form.to_dict(), "steps": request.form.get("steps") or "1"}
    today = local_today(creditor.country, utcnow())
    refused = plans.refusals(creditor, found, today)
    if refused:
        return _form_page(creditor, values, languages, refused, 422)
    before = dunning.find_plan(creditor.id, str(found.data["name"]))
    try:
        plan = dunning.save_plan(creditor, found.data, actor=f"agent:{me().id}", today=today)
    except InvalidData as exc:  # what the checks above found: never, but answered as they would
        db.session.rollback()
        creditor = console_creditor(creditor_id)
        return _form_page(creditor, values, languages, plans.problems(exc.errors, found), 422)
    record("console_plan_saved", creditor_id=creditor.id, record_type="dunning_plan", record_id=plan.id,
           name=plan.name, version=plan.version, default=plan.is_default, steps=len(plan.steps),
           variants={step.position: [v.key for v in step.variants] for step in plan.steps if step.variants},
           changes=plans.version_changes(before, plan))
    db.session.commit()
    flash(_("Version %(version)s of “%(name)s” is saved.", version=plan.version, name=plan.name), "done")
    return redirect(url_for(".console_plan", creditor_id=creditor.id, plan_id=plan.id), code=303)


@bp.post("/console/<int:creditor_id>/plans/<int:plan_id>/default")
@login_required
def console_plan_default(creditor_id: int, plan_id: int):
    """Make this version the one new bills start with."""
    creditor = console_creditor(creditor_id)
    plan = _plan(creditor, plan_id)
    before = dunning.default_plan(creditor.id)
    if before is not None and before.id == plan.id:
        flash(_("Nothing changed."), "done")
    else:
        dunning.set_default(creditor, plan)
        record("console_plan_default_set", creditor_id=creditor.id, record_type="dunning_plan", record_id=plan.id,
               changes={"default": [f"{before.name} v{before.version}" if before else None,
                                    f"{plan.name} v{plan.version}"]})
        db.session.commit()
        flash(_("New bills now follow “%(name)s”, version %(version)s.", name=plan.name, version=plan.version),
              "done")
    return redirect(url_for(".console_plan", creditor_id=creditor.id, plan_id=plan.id), code=303)


@bp.get("/console/<int:creditor_id>/plans/<int:plan_id>/preview")
@login_required
def console_plan_preview(creditor_id: int, plan_id: int):
    """Every step in every language of the creditor, as the customer would get it: for a sample bill, or
    for a bill of the creditor's chosen by its number; a variant's text where one is chosen."""
    creditor = console_creditor(creditor_id)
    plan = _plan(creditor, plan_id)
    number = (request.args.get("invoice") or "").strip()[:64]
    problem = None
    invoice = None
    if number:
        invoice = db.session.scalar(select(Invoice).where(Invoice.creditor_id == creditor.id,
                                                          Invoice.number == number, Invoice.livemode.is_(True)))
        if invoice is None:
            problem = _("No bill of %(creditor)s has this number.", creditor=creditor.name)
    previews = []
    for step in plan.steps:
        keys = [None, *(variant.key for variant in step.variants)]
        for key in keys:
            shown: list[tuple[str, Rendered | None]] = []
            for locale in languages_of(creditor):
                try:
                    shown.append((locale, dunning.preview_step(creditor, plan, step.position, locale,
                                                               invoice=invoice, variant=key)))
                except InvalidData:
                    shown.append((locale, None))
            previews.append((step, key, shown))
    record("console_viewed", creditor_id=creditor.id, record_type="dunning_plan", record_id=plan.id,
           page="plan_preview", invoice=invoice.id if invoice else None)
    db.session.commit()
    return render_template("backoffice/console/plan_preview.html", creditor=creditor, plan=plan,
                           previews=previews, number=number, invoice=invoice, problem=problem,
                           section="plans", **_words()), 422 if problem else 200


@bp.post("/console/<int:creditor_id>/plans/<int:plan_id>/steps/<int:position>/variants/<key>/stop")
@login_required
def console_variant_stop(creditor_id: int, plan_id: int, position: int, key: str):
    """Stop a variant: new messages of the step go to its other active variants."""
    creditor = console_creditor(creditor_id)
    plan = _plan(creditor, plan_id)
    step = next((s for s in plan.steps if s.position == position), None)
    variant = db.session.scalar(select(StepVariant).where(StepVariant.step_id == step.id, StepVariant.key == key)) \
        if step is not None else None
    if step is None or variant is None:
        abort(404)
    if text_variants.stop(variant, actor=f"agent:{me().id}"):
        record("console_variant_stopped", creditor_id=creditor.id, record_type="dunning_plan", record_id=plan.id,
               step=position, variant=key, changes={"stopped": [False, True]})
        db.session.commit()
        flash(_("Variant “%(key)s” is stopped: new messages go to the other variants.", key=key), "done")
    else:
        flash(_("Nothing changed."), "done")
    return redirect(url_for(".console_plan", creditor_id=creditor.id, plan_id=plan.id), code=303)
