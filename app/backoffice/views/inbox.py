"""The inbox: what waits for a person at the agent's creditors, filtered; taking an item, marking
it as waiting on the customer; finding a customer; the list as CSV for supervisors."""

from __future__ import annotations

from flask import abort, redirect, render_template, request, url_for
from flask_login import login_required
from sqlalchemy import or_

from app.backoffice import inbox as items
from app.backoffice.calls import call_list, outcome_label
from app.backoffice.export import csv_response
from app.backoffice.services import Scope
from app.backoffice.views import CONTENT_ROLES, SUPERVISING, bp, me, record, scope, scope_needing
from app.billing.models import Customer, Invoice
from app.core.dates import local_today
from app.creditors.models import Creditor
from app.extensions import db
from app.models import utcnow
from app.support.emails import request_window


def _creditors() -> dict[int, Creditor]:
    ids = scope().creditor_ids
    found = db.session.scalars(db.select(Creditor).where(Creditor.id.in_(ids)).order_by(Creditor.name))
    return {c.id: c for c in found}


@bp.get("/")
@login_required
def home():
    """The inbox: new and waiting items first, oldest first, with filters and counts."""
    agent, visible = me(), scope()
    if not visible.creditor_ids and scope(CONTENT_ROLES).creditor_ids:
        return redirect(url_for(".console_home"), code=303)  # a creditor admin or content editor only: the console
    filters = items.Filters.from_args(request.args, visible)
    page = items.inbox_page(visible, filters, agent.id)
    record("inbox_viewed", creditor_ids=_looked_at(visible, filters), view=filters.view, kind=filters.kind,
           q=filters.q or None, shown=len(page.items))
    db.session.commit()
    supervising = any(agent.role_for(cid) in SUPERVISING for cid in visible.creditor_ids)
    return render_template("backoffice/inbox.html", page=page, filters=filters, creditors=_creditors(),
                           supervising=supervising)


def _looked_at(visible, filters: items.Filters) -> tuple[int, ...]:
    """The creditors an inbox view or export looked at: the one filtered on, else every one in scope."""
    return (filters.creditor_id,) if filters.creditor_id is not None else visible.creditor_ids


def _item(kind: str, record_id: int):
    found = items.record_of(scope(), kind, record_id)
    if found is None:
        abort(404)
    return found


def _back() -> str:
    """Where to go after a change to an item: the page it was made from, if it is ours."""
    target = request.form.get("next", "")
    if target.startswith("/backoffice/") and "//" not in target and "\\" not in target:
        return target
    return url_for(".home")


@bp.post("/inbox/<kind>/<int:record_id>/assign")
@login_required
def assign(kind: str, record_id: int):
    """Take the item ("assign to me") or hand it back."""
    found = _item(kind, record_id)
    mine = request.form.get("to") != "nobody"
    items.assign(kind, found, me() if mine else None)
    record("item_assigned" if mine else "item_unassigned", creditor_id=items.creditor_of(found), record_type=kind,
           record_id=record_id)
    db.session.commit()
    return redirect(_back(), code=303)


@bp.post("/inbox/<kind>/<int:record_id>/waiting")
@login_required
def waiting(kind: str, record_id: int):
    """Mark the item as waiting on the customer (until they write again), or as needing us."""
    found = _item(kind, record_id)
    on = request.form.get("waiting") == "yes"
    items.set_waiting(kind, found, on)
    record("item_waiting" if on else "item_needs_us", creditor_id=items.creditor_of(found), record_type=kind,
           record_id=record_id)
    db.session.commit()
    return redirect(_back(), code=303)


@bp.get("/inbox.csv")
@login_required
def export():
    """The inbox's items for these filters, as CSV (supervisors and admins; recorded)."""
    agent = me()
    visible = scope_needing(SUPERVISING)
    filters = items.Filters.from_args(request.args, visible)
    rows = items.export_rows(visible, filters, agent.id)
    record("inbox_exported", creditor_ids=_looked_at(visible, filters), view=filters.view, kind=filters.kind,
           rows=len(rows))
    db.session.commit()
    creditors = _creditors()
    return csv_response("inbox.csv", ["kind", "reference", "creditor", "invoice", "customer", "status", "since",
                                      "assignee"], (
        [item.kind, item.reference or "", creditors[item.creditor_id].slug if item.creditor_id in creditors else "",
         item.invoice.number if item.invoice else "", item.invoice.customer.name if item.invoice else "",
         item.status, item.since.isoformat(), item.assignee.email if item.assignee else ""]
        for item in rows))


@bp.get("/calls")
@login_required
def calls():
    """The call-backs still to make, by the day and window each customer chose, earliest first."""
    visible = scope()
    found = call_list(visible)
    record("calls_viewed", creditor_ids=visible.creditor_ids, shown=len(found))
    db.session.commit()
    creditors = _creditors()
    todays = {c.id: local_today(c.country, utcnow()) for c in creditors.values()}
    return render_template("backoffice/calls.html", calls=found, creditors=creditors, todays=todays,
                           outcome_label=outcome_label, request_window=request_window)


@bp.get("/search")
@login_required
def search():
    """Find customers by name, e-mail, phone, customer number or invoice number."""
    q = (request.args.get("q") or "").strip()[:100]
    visible = scope()
    creditor = request.args.get("creditor", "")
    if creditor.isdigit() and visible.allows(int(creditor)):  # one creditor's customers only
        visible = Scope((int(creditor),))
    found: list[Customer] = []
    if len(q) >= 2:
        by_invoice = visible.select(Invoice, Invoice.customer_id).where(
            or_(Invoice.number.icontains(q, autoescape=True), Invoice.payment_reference.icontains(q, autoescape=True)))
        found = list(db.session.scalars(
            visible.select(Customer).where(or_(
                Customer.name.icontains(q, autoescape=True), Customer.email.icontains(q, autoescape=True),
                Customer.phone.icontains(q.replace(" ", ""), autoescape=True),
                Customer.external_ref.icontains(q, autoescape=True), Customer.id.in_(by_invoice),
            )).order_by(Customer.name).limit(50)
        ))
    # The words typed are the business of every creditor searched: only a reader of all of them sees them.
    record("customers_searched", creditor_ids=visible.creditor_ids, q=q, found=len(found))
    db.session.commit()
    return render_template("backoffice/search.html", q=q, customers=found, creditors=_creditors(),
                           searched=visible.creditor_ids if len(visible.creditor_ids) == 1 else None)

