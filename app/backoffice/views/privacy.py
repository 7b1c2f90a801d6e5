"""A data subject's request, handled by a supervisor or an admin: what is held about a customer of
their creditor (and what the retention will do to it), the export as JSON and as a PDF, and erasure
(admins only) after a warning that says what goes and what bookkeeping law keeps. Every page and
download is recorded in the audit log, by the customer's id and with counts, never their details."""

from __future__ import annotations

import json

from flask import Response, current_app, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import login_required

from app.backoffice.views import ADMIN, SUPERVISING, bp, may, need, record, scoped
from app.billing.models import Customer
from app.core.dates import local_today
from app.errors import InvalidData
from app.extensions import db
from app.models import utcnow
from app.privacy import services
from app.privacy.forms import EraseForm
from app.privacy.holdings import HOLDINGS
from app.privacy.pdf import holding_titles, render_export_pdf, treatment_words
from app.privacy.rules import rule_for


def _customer(customer_id: int) -> Customer:
    found = scoped(Customer, customer_id)  # another creditor's customer: 404
    need(found.creditor_id, SUPERVISING)
    return found


def _today(customer: Customer):
    return local_today(customer.creditor.country, utcnow())


def _page(customer: Customer, form: EraseForm, status: int = 200):
    counts = services.held_counts(customer)
    return render_template(
        "backoffice/privacy.html", customer=customer, form=form, holdings=HOLDINGS, counts=counts,
        titles=holding_titles(), treatments=treatment_words(), plan=services.erasure_plan(customer, _today(customer)),
        retention_months=services.retention_months(customer.creditor), rule=rule_for(customer.creditor.country),
        may_erase=may(customer.creditor_id, ADMIN), anonymised=services.is_anonymised(customer.id)), status


@bp.get("/customers/<int:customer_id>/privacy")
@login_required
def privacy(customer_id: int):
    """What is held about the customer, for how long; the export; erasure."""
    found = _customer(customer_id)
    record("privacy_viewed", creditor_id=found.creditor_id, record_type="customer", record_id=found.id)
    db.session.commit()
    return _page(found, EraseForm())


def _download(content: bytes, mime: str, name: str) -> Response:
    return Response(content, mimetype=mime, headers={"Content-Disposition": f'attachment; filename="{name}"'})


@bp.get("/customers/<int:customer_id>/privacy/export.json")
@login_required
def privacy_export_json(customer_id: int):
    """Everything held about the customer, as JSON."""
    found = _customer(customer_id)
    exported = services.export(found)
    record("privacy_exported", creditor_id=found.creditor_id, record_type="customer", record_id=found.id,
           format="json")
    db.session.commit()
    body = json.dumps(exported, ensure_ascii=False, indent=2, sort_keys=True).encode()
    return _download(body, "application/json", f"personal-data-{found.id}.json")


@bp.get("/customers/<int:customer_id>/privacy/export.pdf")
@login_required
def privacy_export_pdf(customer_id: int):
    """Everything held about the customer, as a readable PDF."""
    found = _customer(customer_id)
    pdf = render_export_pdf(services.export(found), found.name, found.creditor)
    record("privacy_exported", creditor_id=found.creditor_id, record_type="customer", record_id=found.id, format="pdf")
    db.session.commit()
    return _download(pdf, "application/pdf", f"personal-data-{found.id}.pdf")


@bp.post("/customers/<int:customer_id>/privacy/erase")
@login_required
def privacy_erase(customer_id: int):
    """Erase the customer's personal data, as far as bookkeeping law lets (admins, after the warning)."""
    found = _customer(customer_id)
    need(found.creditor_id, ADMIN)
    form = EraseForm()
    if not form.validate_on_submit():
        flash(_("The form has expired. Please try again."), "problem")
        return _page(found, form, 400)
    if not form.understood.data or (form.customer_number.data or "").strip() != found.external_ref:
        flash(_("Tick the box and type the customer number exactly as shown to confirm the erasure."), "problem")
        return _page(found, form, 422)
    try:
        plan, done = services.erase(found, _today(found), current_app.config["ATTACHMENT_DIR"])
    except InvalidData:
        db.session.rollback()
        flash(_("Nothing was erased: the customer has bills that are not closed."), "problem")
        return _page(found, form, 409)
    record("customer_erased", creditor_id=found.creditor_id, record_type="customer", record_id=found.id,
           kept_invoices=len(plan.kept), **done.summary())
    db.session.commit()
    services.remove_files(done.files)
    if plan.full:
        flash(_("The customer's personal data is erased."), "done")
    else:
        flash(_("The customer's personal data is erased, except the name and address on the invoices that "
                "bookkeeping law keeps."), "done")
    return redirect(url_for(".privacy", customer_id=found.id), code=303)
