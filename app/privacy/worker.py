"""`flask privacy run` (cron, daily): the retention applied, one transaction per batch.

Per creditor: its closed bills not minimised yet, taken by id in batches of `batch_size`, locked `FOR
UPDATE SKIP LOCKED` on PostgreSQL (a run beside this one takes other bills); those closed on or before
the cutoff (today less the creditor's retention period) are minimised and marked. Each customer of a
batch whose bills are now all minimised is locked (`FOR UPDATE`, in id order) and minimised too: of
two runs that minimised a customer's last bills side by side, the one that locks second sees the
other's marks. Then the minimised customers whose invoices bookkeeping law no longer keeps are
anonymised. The attachments' files are deleted after each commit.

Idempotent: every minimised record is marked in its own transaction, and a marked record is never
taken again, so a second run the same day finds nothing to do.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import select

from app.billing.models import Customer
from app.creditors.models import Creditor
from app.extensions import db
from app.privacy import services
from app.privacy.services import Done

log = logging.getLogger(__name__)

BATCH_SIZE = 500


@dataclass
class RunReport:
    by_creditor: dict[int, Done] = field(default_factory=dict)
    failed_batches: int = 0

    def done(self, creditor_id: int) -> Done:
        return self.by_creditor.setdefault(creditor_id, Done())

    @property
    def total(self) -> Done:
        total = Done()
        for done in self.by_creditor.values():
            total.add(done)
        return total


def run(today_of: Callable[[Creditor], date], attachment_dir: str, *, batch_size: int = BATCH_SIZE) -> RunReport:
    """Apply every creditor's retention; commits each batch. `today_of(creditor)`: its local today."""
    report = RunReport()
    creditors = list(db.session.scalars(select(Creditor.id).order_by(Creditor.id)))
    for creditor_id in creditors:
        creditor = db.session.get(Creditor, creditor_id)
        if creditor is None:
            continue
        today = today_of(creditor)
        _minimise(creditor, today, attachment_dir, batch_size, report)
        _anonymise(creditor, today, batch_size, report)
    return report


def _minimise(creditor: Creditor, today: date, attachment_dir: str, batch_size: int, report: RunReport) -> None:
    cutoff = services.retention_cutoff(creditor, today)
    after = 0
    while True:
        bills = services.unminimised(creditor, after_id=after, limit=batch_size, lock=True)
        if not bills:
            db.session.rollback()
            return
        after = bills[-1].invoice_id
        due = [bill for bill in bills if bill.closed_on <= cutoff]
        try:
            done = services.minimise_invoices(creditor.id, [bill.invoice_id for bill in due], services.RETENTION,
                                              attachment_dir)
            # Only the customers of bills this batch minimised: a bill another run minimised and committed
            # between this batch's read and its lock is locked here all the same (the mark is in another
            # table, so PostgreSQL's re-check of the locked row does not see it), and its customer is that
            # run's to minimise (it would be counted, and minimised, twice).
            minimised = set(done.minimised_ids)
            customer_ids = sorted({bill.customer_id for bill in due if bill.invoice_id in minimised})
            if customer_ids:
                customers = db.session.scalars(select(Customer).where(Customer.id.in_(customer_ids))
                                               .order_by(Customer.id).with_for_update(of=Customer)).all()
                for customer in customers:
                    if services.all_minimised(customer.id):
                        done.add(services.minimise_customer(customer, services.RETENTION, attachment_dir))
            db.session.commit()
        except Exception:
            db.session.rollback()
            report.failed_batches += 1
            log.exception("privacy run: a batch of creditor %s failed", creditor.id)
            continue
        services.remove_files(done.files)
        report.done(creditor.id).add(done)


def _anonymise(creditor: Creditor, today: date, batch_size: int, report: RunReport) -> None:
    after = 0
    while True:
        customer_ids = services.due_for_anonymising(creditor, today, after_id=after, limit=batch_size)
        if not customer_ids:
            db.session.rollback()
            return
        after = customer_ids[-1]
        try:
            done = Done()
            customers = db.session.scalars(select(Customer).where(Customer.id.in_(customer_ids))
                                           .order_by(Customer.id).with_for_update(of=Customer, skip_locked=True)).all()
            for customer in customers:
                # locked: a run beside this one may have anonymised them meanwhile, or a new bill come
                if services.is_anonymised(customer.id) or not services.all_minimised(customer.id):
                    continue
                done.add(services.anonymise_customer(customer, services.RETENTION))
            db.session.commit()
        except Exception:
            db.session.rollback()
            report.failed_batches += 1
            log.exception("privacy run: anonymising customers of creditor %s failed", creditor.id)
            continue
        report.done(creditor.id).add(done)
