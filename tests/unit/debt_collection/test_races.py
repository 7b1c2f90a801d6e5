"""Two hand-off runs at the same moment, on PostgreSQL (real threads, each with its own session and
connection, as two cron jobs would be): every eligible bill is handed off once, with one case and
one delivery. SQLite serialises every writer on one file lock, so a race there proves nothing."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import delete, func, select

from app.billing.models import Customer, Invoice, InvoiceStatus
from app.creditors.models import Creditor
from app.debt_collection.models import Case, Partner
from app.debt_collection.partners import add_partner, set_policy
from app.debt_collection.worker import run
from app.extensions import db
from app.outbox.models import OutboxMessage
from tests.factories import make_creditor
from tests.functional.collection_helpers import overdue, today_for
from tests.support.races import racing_app

RUNS = 2
BILLS = 12


@pytest.fixture
def race_app(app):
    yield from racing_app(app, RUNS + 2)


@pytest.fixture
def eligible_bills(race_app):
    with race_app.test_request_context():
        made = add_partner("race-collect", "Race Collect", "https://collect.example/cases")
        creditor = make_creditor("NO")
        set_policy(creditor, made.partner, days_past_due=14, days_after_final_reminder=10)
        db.session.commit()
        creditor_id, partner_id = creditor.id, made.partner.id
        db.session.remove()
    with race_app.app_context():
        creditor = db.session.get(Creditor, creditor_id)
        ids = [overdue(race_app, creditor).id for _ in range(BILLS)]
        db.session.remove()
    yield creditor_id, ids
    with race_app.app_context(), db.engine.begin() as conn:
        conn.execute(delete(OutboxMessage).where(OutboxMessage.creditor_id == creditor_id))
        conn.execute(delete(Case).where(Case.creditor_id == creditor_id))
        conn.execute(delete(Invoice).where(Invoice.creditor_id == creditor_id))
        conn.execute(delete(Customer).where(Customer.creditor_id == creditor_id))
        conn.execute(delete(Creditor).where(Creditor.id == creditor_id))
        conn.execute(delete(Partner).where(Partner.id == partner_id))


def test_two_runs_at_once_hand_each_bill_off_once(race_app, eligible_bills):
    creditor_id, ids = eligible_bills
    barrier = threading.Barrier(RUNS)
    handed, errors = [], []

    def cron() -> None:
        with race_app.app_context():
            try:
                barrier.wait(timeout=30)
                report = run(today_for, creditor_id=creditor_id)
                handed.extend(number for number, _case in report.handed_off)
                errors.extend(report.failed)
            except Exception as exc:  # noqa: BLE001 - collected and asserted below
                errors.append(repr(exc)[:300])
            finally:
                db.session.remove()

    threads = [threading.Thread(target=cron) for _ in range(RUNS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)

    assert errors == [] and len(handed) == BILLS and len(set(handed)) == BILLS
    with race_app.app_context():
        cases = db.session.execute(select(Case.invoice_id, func.count()).where(Case.creditor_id == creditor_id)
                                   .group_by(Case.invoice_id)).all()
        assert sorted(invoice_id for invoice_id, _n in cases) == sorted(ids) and {n for _i, n in cases} == {1}
        deliveries = db.session.scalar(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.creditor_id == creditor_id, OutboxMessage.channel == "webhook"))
        statuses = set(db.session.scalars(select(Invoice.status).where(Invoice.id.in_(ids))))
        db.session.remove()
    assert deliveries == BILLS and statuses == {InvoiceStatus.IN_COLLECTION}
