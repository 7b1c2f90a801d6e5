"""Retention, export and erasure: plain functions that add and flush; the caller commits.

A closed invoice is paid, cancelled or written off, or in debt collection with its case closed by the
partner (paid or uncollectable) and none open. Its closing day is that of its last status change (of
the case's closing). After the creditor's retention period (`retention_months`) the bill is
*minimised* (`minimise_invoices`: every REDUCED and DELETED holding of `holdings`, by bill); when
every bill of a customer is minimised, so is the customer (`minimise_customer`); when bookkeeping
law no longer keeps any of their invoices, the customer is *anonymised* (`anonymise_customer`).

Files are deleted by the caller after its commit (`remove_files`), so that a rolled-back transaction
never leaves a row whose file is gone.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, and_, delete, exists, func, or_, select, update

from app.billing.models import Customer, Invoice, InvoiceEvent, InvoiceStatus
from app.core.dates import local_today
from app.creditors.models import Creditor
from app.debt_collection.models import Case, CaseStatus
from app.errors import InvalidData
from app.extensions import db
from app.models import utcnow
from app.privacy.holdings import HOLDINGS, Holding, Ids, Treatment, table
from app.privacy.models import MarkKind, PrivacyMark, PrivacySettings
from app.privacy.rules import MAX_RETENTION_MONTHS, MIN_RETENTION_MONTHS, add_months, keep_until, rule_for

CLOSED = (InvoiceStatus.PAID, InvoiceStatus.CANCELLED, InvoiceStatus.WRITTEN_OFF)
CASE_CLOSED = (CaseStatus.CLOSED_PAID, CaseStatus.CLOSED_UNCOLLECTABLE)
ANONYMOUS_NAME = "—"
RETENTION, REQUEST = "retention", "request"

#: What an invoice event keeps of its data when minimised: facts, never words or addresses.
EVENT_FACTS = frozenset({
    "amount", "currency", "total", "from", "to", "number", "reference", "outcome", "case", "channel", "final",
    "paid_on", "method", "payment_id", "line_id", "date", "months", "count", "step", "step_kind", "plan",
    "version", "until", "letter", "batch", "provider", "link_id", "line_kind", "topic", "status", "credit_note",
})
#: Events whose "to" is an address or a number, not a status.
CONTACT_EVENTS = frozenset({"contact_change_requested", "contact_changed"})


# --- the creditor's retention period -------------------------------------------------------------------


def retention_months(creditor: Creditor) -> int:
    settings = db.session.get(PrivacySettings, creditor.id)
    return settings.retention_months if settings else rule_for(creditor.country).default_retention_months


def set_retention(creditor: Creditor, months: int | None) -> None:
    """The creditor's retention period in months; None: its country's default again."""
    settings = db.session.get(PrivacySettings, creditor.id)
    if months is None:
        if settings is not None:
            db.session.delete(settings)
        db.session.flush()
        return
    if isinstance(months, bool) or not isinstance(months, int) or not (
            MIN_RETENTION_MONTHS <= months <= MAX_RETENTION_MONTHS):
        raise InvalidData({"months": f"a whole number of months from {MIN_RETENTION_MONTHS} to {MAX_RETENTION_MONTHS}"})
    if settings is None:
        db.session.add(PrivacySettings(creditor_id=creditor.id, retention_months=months))
    else:
        settings.retention_months = months
    db.session.flush()


# --- which bills are closed, since when --------------------------------------------------------------------


@dataclass(frozen=True)
class ClosedBill:
    invoice_id: int
    customer_id: int
    number: str
    issue_date: date
    closed_on: date


def _closed_condition():
    open_case = exists().where(Case.invoice_id == Invoice.id, Case.status.in_(CaseStatus.OPEN))
    closed_case = exists().where(Case.invoice_id == Invoice.id, Case.status.in_(CASE_CLOSED))
    return or_(Invoice.status.in_(CLOSED),
               and_(Invoice.status == InvoiceStatus.IN_COLLECTION, closed_case, ~open_case))


def _closed_columns():
    changed = (select(func.max(InvoiceEvent.created_at))
               .where(InvoiceEvent.invoice_id == Invoice.id, InvoiceEvent.kind == "status_changed")
               .correlate(Invoice).scalar_subquery())
    case_closed = (select(func.max(Case.closed_at)).where(Case.invoice_id == Invoice.id, Case.status.in_(CASE_CLOSED))
                   .correlate(Invoice).scalar_subquery())
    return (Invoice.id, Invoice.customer_id, Invoice.number, Invoice.issue_date, Invoice.status, changed,
            case_closed, Invoice.updated_at)


def _closed_bill(country: str, row) -> ClosedBill:
    invoice_id, customer_id, number, issue_date, status, changed, case_closed, updated = row
    moment: datetime = (case_closed if status == InvoiceStatus.IN_COLLECTION else changed) or changed or updated
    return ClosedBill(invoice_id, customer_id, number, issue_date, local_today(country, moment))


def _last_change(invoice_id):
    """The moment of the bill's last status change (a scalar subquery correlated to `invoice_id`)."""
    return (select(func.max(InvoiceEvent.created_at))
            .where(InvoiceEvent.invoice_id == invoice_id, InvoiceEvent.kind == "status_changed").scalar_subquery())


def _minimised(invoice_id):
    """Whether the bill's minimisation is current: marked, and its status not changed since (a paid bill
    disputed again after it was minimised is minimised again once it closes again)."""
    last = _last_change(invoice_id)
    return exists().where(PrivacyMark.kind == MarkKind.INVOICE_MINIMISED, PrivacyMark.record_id == invoice_id,
                          or_(last.is_(None), PrivacyMark.at >= last))


def unminimised(creditor: Creditor, *, after_id: int = 0, limit: int = 500, lock: bool = False) -> list[ClosedBill]:
    """The creditor's closed bills not minimised yet, by id after `after_id`, locked (`FOR UPDATE SKIP
    LOCKED` on PostgreSQL) when `lock`: two runs never take the same bill."""
    marked = _minimised(Invoice.id)
    query = (select(*_closed_columns())
             .where(Invoice.creditor_id == creditor.id, Invoice.id > after_id, _closed_condition(), ~marked)
             .order_by(Invoice.id).limit(limit))
    if lock:
        query = query.with_for_update(of=Invoice, skip_locked=True)
    return [_closed_bill(creditor.country, row) for row in db.session.execute(query)]


def retention_cutoff(creditor: Creditor, today: date) -> date:
    """Bills closed on or before this day are due for minimisation."""
    return add_months(today, -retention_months(creditor))


# --- minimisation ----------------------------------------------------------------------------------------------


@dataclass
class Done:
    """What a minimisation or an erasure did: rows per table and treatment, files to delete after the commit."""

    rows: Counter = field(default_factory=Counter)
    files: list[Path] = field(default_factory=list)
    invoices: int = 0
    customers: int = 0
    anonymised: int = 0
    minimised_ids: list[int] = field(default_factory=list)  # the bills this minimised (`minimise_invoices`)

    def add(self, other: Done) -> None:
        self.rows.update(other.rows)
        self.files.extend(other.files)
        self.invoices += other.invoices
        self.customers += other.customers
        self.anonymised += other.anonymised

    def summary(self) -> dict[str, Any]:
        """Counts only: no name, address or text (the audit log keeps this)."""
        return {"invoices": self.invoices, "customers": self.customers, "anonymised": self.anonymised,
                "rows": {key: count for key, count in sorted(self.rows.items()) if count}}


def _count(result: Any) -> int:
    """The rows an UPDATE or DELETE touched (a CursorResult's rowcount)."""
    return int(result.rowcount or 0)


def _empty(column) -> Any:
    if column.nullable:
        return None
    return {} if isinstance(column.type, JSON) else ""


def _apply(holding: Holding, ids: Ids, done: Done, attachment_dir: str) -> None:
    t = holding.table
    if holding.treatment == Treatment.KEPT:
        return
    if holding.treatment == Treatment.DELETED:
        if holding.name == "attachments":
            for creditor_id, key in db.session.execute(select(t.c.creditor_id, t.c.storage_key).where(t.c.id.in_(ids))):
                done.files.append(Path(attachment_dir) / str(creditor_id) / key)
        done.rows[f"{holding.name}.deleted"] += _count(db.session.execute(delete(t).where(t.c.id.in_(ids))))
        return
    if holding.name == "invoice_events":
        _reduce_events(ids, done)
        return
    not_empty = [t.c[name] != "" if not t.c[name].nullable and not isinstance(t.c[name].type, JSON)
                 else t.c[name].is_not(None) for name in holding.personal]
    statement = (update(t).where(t.c.id.in_(ids), or_(*not_empty))
                 .values({name: _empty(t.c[name]) for name in holding.personal}))
    done.rows[f"{holding.name}.reduced"] += _count(db.session.execute(statement))


def _reduce_events(ids: Ids, done: Done) -> None:
    t = table("invoice_events")
    for event_id, kind, data in db.session.execute(select(t.c.id, t.c.kind, t.c.data).where(t.c.id.in_(ids))).all():
        data = data or {}
        kept = {key: value for key, value in data.items()
                if key in EVENT_FACTS and not (key == "to" and kind in CONTACT_EVENTS)}
        if kept != data:
            db.session.execute(update(t).where(t.c.id == event_id).values(data=kept))
            done.rows["invoice_events.reduced"] += 1


def _mark(creditor_id: int, kind: str, record_id: int, reason: str, until: date | None = None) -> None:
    found = db.session.scalar(select(PrivacyMark).where(PrivacyMark.kind == kind, PrivacyMark.record_id == record_id))
    if found is None:
        db.session.add(PrivacyMark(creditor_id=creditor_id, kind=kind, record_id=record_id, reason=reason, until=until,
                                   at=utcnow()))
    else:
        found.until, found.at, found.reason = until, utcnow(), reason
    db.session.flush()


def minimise_invoices(creditor_id: int, invoice_ids: list[int], reason: str, attachment_dir: str) -> Done:
    """The bills' conversation removed (every REDUCED and DELETED holding, by bill); the bills kept and
    marked. Bills already marked are left alone."""
    done = Done()
    marked = set(db.session.scalars(select(Invoice.id).where(Invoice.id.in_(invoice_ids), _minimised(Invoice.id))))
    todo = sorted(set(invoice_ids) - marked)
    if not todo:
        return done
    ids = select(table("invoices").c.id).where(table("invoices").c.id.in_(todo))
    for holding in HOLDINGS:
        if holding.of_invoices is not None:
            _apply(holding, holding.of_invoices(ids), done, attachment_dir)
    for invoice_id in todo:
        _mark(creditor_id, MarkKind.INVOICE_MINIMISED, invoice_id, reason)
    done.invoices = len(todo)
    done.minimised_ids = list(todo)
    return done


def invoices_kept_until(customer: Customer, bills: list[ClosedBill] | None = None) -> date | None:
    """The last day bookkeeping law keeps one of the customer's invoices (None: they have none)."""
    rule = rule_for(customer.creditor.country)
    bills = closed_bills_of(customer) if bills is None else bills
    if not bills:
        return None
    if not rule.buyer_on_invoice:
        return max(bill.closed_on for bill in bills)
    return max(keep_until(rule, bill.issue_date, bill.closed_on) for bill in bills)


def closed_bills_of(customer: Customer) -> list[ClosedBill]:
    query = (select(*_closed_columns()).where(Invoice.customer_id == customer.id, _closed_condition())
             .order_by(Invoice.id))
    return [_closed_bill(customer.creditor.country, row) for row in db.session.execute(query)]


def all_minimised(customer_id: int) -> bool:
    """Whether every bill of the customer is closed and minimised (a customer without bills: yes)."""
    done = and_(_closed_condition(), _minimised(Invoice.id))
    return not db.session.scalar(select(exists().where(Invoice.customer_id == customer_id, ~done)))


def minimise_customer(customer: Customer, reason: str, attachment_dir: str) -> Done:
    """Everything about the customer that bookkeeping law does not keep, removed (every REDUCED and
    DELETED holding); their name and address kept for the invoices' sake, until `invoices_kept_until`."""
    done = Done()
    for holding in HOLDINGS:
        _apply(holding, holding.of_customer(customer.id), done, attachment_dir)
    db.session.expire(customer)
    _mark(customer.creditor_id, MarkKind.CUSTOMER_MINIMISED, customer.id, reason, until=invoices_kept_until(customer))
    done.customers = 1
    return done


def anonymise_customer(customer: Customer, reason: str) -> Done:
    """Nothing left that names the person: name, address, customer number and organisation number."""
    done = Done()
    t = table("customers")
    db.session.execute(update(t).where(t.c.id == customer.id).values(
        name=ANONYMOUS_NAME, address_line1=None, address_line2=None, postcode=None, city=None, org_number=None,
        external_ref=f"erased-{customer.id}", email=None, phone=None, date_of_birth=None))
    db.session.expire(customer)
    done.rows["customers.anonymised"] += 1
    _mark(customer.creditor_id, MarkKind.CUSTOMER_ANONYMISED, customer.id, reason)
    done.anonymised = 1
    return done


def due_for_anonymising(creditor: Creditor, today: date, *, after_id: int = 0, limit: int = 500) -> list[int]:
    """Minimised customers of the creditor whose invoices bookkeeping law no longer keeps, not anonymised yet."""
    marks = PrivacyMark.__table__.alias("minimised")
    anonymised = exists().where(PrivacyMark.kind == MarkKind.CUSTOMER_ANONYMISED,
                                PrivacyMark.record_id == marks.c.record_id)
    query = (select(marks.c.record_id)
             .where(marks.c.creditor_id == creditor.id, marks.c.kind == MarkKind.CUSTOMER_MINIMISED,
                    marks.c.until < today, marks.c.record_id > after_id, ~anonymised)
             .order_by(marks.c.record_id).limit(limit))
    return list(db.session.scalars(query))


def remove_files(paths: list[Path]) -> int:
    """Delete the files of attachments whose rows are gone (after the commit); a file already gone is fine."""
    removed = 0
    for path in paths:
        try:
            os.remove(path)
            removed += 1
        except FileNotFoundError:
            continue
    return removed


# --- a data subject's request -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ErasurePlan:
    """What erasing the customer would do today: refused while a bill is open; else every bill
    minimised and, unless bookkeeping law still keeps one of their invoices, the customer anonymised."""

    open_numbers: tuple[str, ...]  # open bills: the claim is not settled; nothing is erased
    kept: tuple[tuple[str, date], ...]  # invoices bookkeeping law keeps, with their last day
    full: bool  # nothing is kept: the customer is anonymised
    rule_sources: tuple[str, ...]

    @property
    def allowed(self) -> bool:
        return not self.open_numbers


def erasure_plan(customer: Customer, today: date) -> ErasurePlan:
    rule = rule_for(customer.creditor.country)
    closed = closed_bills_of(customer)
    closed_ids = {bill.invoice_id for bill in closed}
    open_numbers = tuple(db.session.scalars(select(Invoice.number).where(
        Invoice.customer_id == customer.id, Invoice.id.not_in(closed_ids)).order_by(Invoice.id)))
    kept: tuple[tuple[str, date], ...] = ()
    if rule.buyer_on_invoice:
        kept = tuple((bill.number, until) for bill in closed
                     if (until := keep_until(rule, bill.issue_date, bill.closed_on)) >= today)
    return ErasurePlan(open_numbers, kept, not kept, rule.sources)


def erase(customer: Customer, today: date, attachment_dir: str) -> tuple[ErasurePlan, Done]:
    """A data subject's erasure, as `erasure_plan` says; InvalidData when a bill is still open."""
    plan = erasure_plan(customer, today)
    if not plan.allowed:
        raise InvalidData({"customer": "open_invoices"})
    done = minimise_invoices(customer.creditor_id, [bill.invoice_id for bill in closed_bills_of(customer)], REQUEST,
                             attachment_dir)
    done.add(minimise_customer(customer, REQUEST, attachment_dir))
    if plan.full:
        done.add(anonymise_customer(customer, REQUEST))
    return plan, done


# --- the export ------------------------------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes | memoryview):
        return None
    return value


def export(customer: Customer) -> dict[str, Any]:
    """Everything held about the customer at their creditor, table by table (every holding), as JSON-ready
    data: each row's columns but the secrets' hashes and keys (`Holding.omit`)."""
    tables: dict[str, Any] = {}
    for holding in HOLDINGS:
        t = holding.table
        columns = [column for column in t.c if column.name not in holding.omit]
        rows = db.session.execute(select(*columns).where(t.c.id.in_(holding.of_customer(customer.id)))
                                  .order_by(t.c.id)).mappings().all()
        tables[holding.name] = {"treatment": str(holding.treatment), "why": holding.why,
                                "rows": [{key: _plain(value) for key, value in row.items()} for row in rows]}
    creditor = customer.creditor
    return {
        "format": "portal-privacy-export/1",
        "created_at": utcnow().isoformat(),
        "creditor": {"name": creditor.legal_name or creditor.name, "org_number": creditor.org_number,
                     "country": creditor.country},
        "customer_id": customer.id,
        "retention_months": retention_months(creditor),
        "bookkeeping": {"years": rule_for(creditor.country).years, "sources": list(rule_for(creditor.country).sources)},
        "tables": tables,
    }


def held_counts(customer: Customer) -> dict[str, int]:
    """How many rows each holding has about the customer (the back office's summary)."""
    counts = {}
    for holding in HOLDINGS:
        t = holding.table
        counts[holding.name] = db.session.scalar(
            select(func.count()).select_from(t).where(t.c.id.in_(holding.of_customer(customer.id)))) or 0
    return counts


def is_anonymised(customer_id: int) -> bool:
    return db.session.scalar(select(exists().where(PrivacyMark.kind == MarkKind.CUSTOMER_ANONYMISED,
                                                   PrivacyMark.record_id == customer_id))) or False
