"""The daily run (`flask resolutions run`): promises and plans kept or broken, day-before e-mails,
deferrals and holds that ended. It adds and flushes; the command commits."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from app.billing.models import Invoice, InvoiceStatus
from app.billing.services import record_event, resume
from app.extensions import db
from app.models import utcnow
from app.resolutions.instalments import missed_instalment, next_instalment
from app.resolutions.models import Kind, Resolution, Status
from app.resolutions.services import to_customer


@dataclass
class RunReport:
    kept: int = 0
    broken: int = 0
    ended: int = 0
    reminded: int = 0
    resumed: int = 0

    def __str__(self) -> str:
        return (f"{self.kept} kept, {self.broken} broken, {self.ended} ended, "
                f"{self.reminded} day-before e-mails due (each is written once), {self.resumed} holds ended")


def run_due(today_for: Callable[[str], date], *, creditor_id: int | None = None) -> RunReport:
    """Close what has run its course, once a day (`flask resolutions run`; safe to run more often):

    - a promise or plan whose invoice is paid is kept; an invoice closed otherwise ends them;
    - the day before a promised date or an instalment, the customer gets a reminder e-mail;
    - a promise not paid by its date plus the grace days is broken, and so is a plan with an
      instalment unpaid past its date plus the grace days: the customer is told and the process
      resumes (`pause.dunning` no longer pauses);
    - a deferral whose new due date has passed ends (kept when paid);
    - an agent's hold of reminders until a day that has passed ends: reminders may go out again.

    `today_for(country)` gives the local date in the creditor's country."""
    report = RunReport()
    query = (
        select(Resolution).options(selectinload(Resolution.instalments))
        .where(Resolution.status == Status.ACTIVE).order_by(Resolution.id)
    )
    if creditor_id is not None:
        query = query.where(Resolution.creditor_id == creditor_id)
    for resolution in db.session.scalars(query).all():
        invoice = resolution.invoice
        today = today_for(invoice.creditor.country)
        if invoice.is_closed:
            _close(resolution, Status.CANCELLED, "invoice closed")
            report.ended += 1
        elif invoice.balance <= 0:
            _close(resolution, Status.KEPT, "paid")
            report.kept += 1
        elif resolution.kind == Kind.PROMISE:
            _run_promise(resolution, invoice, today, report)
        elif resolution.kind == Kind.PLAN:
            _run_plan(resolution, invoice, today, report)
        elif resolution.kind == Kind.DEFERRAL and today > resolution.new_date:
            _close(resolution, Status.BROKEN, "new due date passed")
            report.ended += 1
    held = select(Invoice).where(Invoice.status == InvoiceStatus.ON_HOLD, Invoice.hold_until.is_not(None))
    held = held.order_by(Invoice.id)
    if creditor_id is not None:
        held = held.where(Invoice.creditor_id == creditor_id)
    for invoice in db.session.scalars(held).all():
        if today_for(invoice.creditor.country) > invoice.hold_until:
            resume(invoice, actor="scheduler", reason="hold ended")
            report.resumed += 1
    db.session.flush()
    return report


def _close(resolution: Resolution, status: str, why: str) -> None:
    resolution.status, resolution.closed_at = status, utcnow()
    record_event(resolution.invoice, f"{resolution.kind}_{status}", "scheduler", reference=resolution.reference,
                 why=why)


def _run_promise(promise: Resolution, invoice: Invoice, today: date, report: RunReport) -> None:
    if today > promise.new_date + timedelta(days=invoice.creditor.grace_days):
        _close(promise, Status.BROKEN, "not paid by the promised date")
        to_customer(promise, "promise_broken")
        report.broken += 1
    elif promise.new_date - timedelta(days=1) <= today <= promise.new_date:
        to_customer(promise, "promise_due")
        report.reminded += 1


def _run_plan(plan: Resolution, invoice: Invoice, today: date, report: RunReport) -> None:
    missed = missed_instalment(plan, invoice, today)
    if missed is not None:
        _close(plan, Status.BROKEN, f"instalment {missed.instalment.seq} not paid")
        to_customer(plan, "plan_broken")
        report.broken += 1
        return
    upcoming = next_instalment(plan, invoice, today)
    if upcoming is not None and (upcoming.instalment.due_date - timedelta(days=1)
                                 <= today <= upcoming.instalment.due_date):
        to_customer(plan, "instalment_due", key_suffix=f":{upcoming.instalment.seq}", seq=upcoming.instalment.seq,
                     left=upcoming.left)
        report.reminded += 1
