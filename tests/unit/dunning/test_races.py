"""Two dunning runs at the same moment on PostgreSQL (real threads, each with its own session and
connection, as two cron jobs would be), over 1,000 bills of 500 customers all due today: every step
is sent exactly once, each customer gets one consolidated message, and no batch fails. SQLite
serialises every writer on one file lock, so a race there proves nothing."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import delete, func, insert, select

from app.billing.models import Customer, Invoice, InvoiceEvent, InvoiceLine, Reminder
from app.creditors.models import Creditor
from app.dunning import services, worker
from app.dunning.models import Letter, Message, Notice, Plan, Settings, Step
from app.dunning.settings import save_settings
from app.extensions import db
from app.models import utcnow
from app.outbox.models import OutboxMessage
from tests.factories import make_creditor
from tests.support.races import racing_app
from tests.unit.dunning.conftest import TODAY

RUNS = 2
CUSTOMERS = 500
BILLS_EACH = 2


@pytest.fixture
def race_app(app):
    yield from racing_app(app, RUNS + 2)


@pytest.fixture
def due_bills(race_app):
    with race_app.test_request_context():
        creditor = make_creditor("NO")
        save_settings(creditor, languages=["en", "nb", "de"])
        plan = services.save_plan(creditor, services.shipped_plan("NO"), actor="test", today=TODAY)
        now = utcnow()
        customers = db.session.execute(insert(Customer).returning(Customer.id, sort_by_parameter_order=True), [
            {"creditor_id": creditor.id, "external_ref": f"R-{n}", "name": f"Race {n}", "kind": "consumer",
             "email": f"r{n}@example.test", "phone": f"+4791{n:06d}", "address_line1": "Storgata 1",
             "postcode": "0150", "city": "Oslo", "country": "NO", "created_at": now, "updated_at": now}
            for n in range(CUSTOMERS)]).scalars().all()
        db.session.execute(insert(Invoice), [
            {"public_id": f"race-{creditor.id}-{n}", "creditor_id": creditor.id,
             "customer_id": customers[n % CUSTOMERS], "number": f"9{n:05d}", "issue_date": TODAY - timedelta(days=30),
             "due_date": TODAY - timedelta(days=14), "currency": "NOK", "payment_reference": f"9{n:05d}",
             "status": "open", "subtotal": 10000, "vat_total": 2500, "total": 12500, "amount_paid": 0,
             "created_at": now, "updated_at": now, "dunning_plan_id": plan.id, "dunning_next_on": TODAY,
             "dunning_next_position": 2} for n in range(CUSTOMERS * BILLS_EACH)])
        db.session.commit()
        creditor_id, slug = creditor.id, creditor.slug
        db.session.remove()
    yield creditor_id, slug
    with race_app.app_context(), db.engine.begin() as conn:
        invoices = select(Invoice.id).where(Invoice.creditor_id == creditor_id)
        conn.execute(delete(Letter).where(Letter.creditor_id == creditor_id))
        conn.execute(delete(Notice).where(Notice.creditor_id == creditor_id))
        conn.execute(delete(Message).where(Message.creditor_id == creditor_id))
        conn.execute(delete(OutboxMessage).where(OutboxMessage.creditor_id == creditor_id))
        for model in (Reminder, InvoiceEvent, InvoiceLine):
            conn.execute(delete(model).where(model.invoice_id.in_(invoices)))
        conn.execute(delete(Invoice).where(Invoice.creditor_id == creditor_id))
        conn.execute(delete(Customer).where(Customer.creditor_id == creditor_id))
        conn.execute(delete(Step).where(Step.plan_id.in_(select(Plan.id).where(Plan.creditor_id == creditor_id))))
        conn.execute(delete(Plan).where(Plan.creditor_id == creditor_id))
        conn.execute(delete(Settings).where(Settings.creditor_id == creditor_id))
        conn.execute(delete(Creditor).where(Creditor.id == creditor_id))


def test_two_runs_at_once_send_each_step_exactly_once(race_app, due_bills):
    creditor_id, slug = due_bills
    barrier = threading.Barrier(RUNS)
    reports, errors = [], []

    def cron() -> None:
        with race_app.test_request_context():
            try:
                barrier.wait(timeout=30)
                reports.append(worker.run(on=TODAY, slug=slug, batch_size=25))
            except Exception as exc:  # noqa: BLE001 - collected and asserted below
                errors.append(repr(exc)[:300])
            finally:
                db.session.remove()

    threads = [threading.Thread(target=cron) for _ in range(RUNS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)

    assert errors == [] and [r.failed_batches for r in reports] == [0] * RUNS
    assert sum(r.notices for r in reports) == CUSTOMERS * BILLS_EACH
    assert sum(r.messages for r in reports) == CUSTOMERS
    assert all(r.customers > 0 for r in reports), "both runners took a share of the work"
    with race_app.app_context():
        per_invoice = db.session.execute(select(Notice.invoice_id, func.count()).where(
            Notice.creditor_id == creditor_id).group_by(Notice.invoice_id)).all()
        assert len(per_invoice) == CUSTOMERS * BILLS_EACH and {n for _i, n in per_invoice} == {1}
        per_customer = db.session.execute(select(Message.customer_id, func.count()).where(
            Message.creditor_id == creditor_id).group_by(Message.customer_id)).all()
        assert len(per_customer) == CUSTOMERS and {n for _c, n in per_customer} == {1}
        outbox = db.session.scalar(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.creditor_id == creditor_id))
        fees = db.session.scalar(select(func.count()).select_from(InvoiceLine).where(
            InvoiceLine.kind == "reminder_fee", InvoiceLine.invoice_id.in_(
                select(Invoice.id).where(Invoice.creditor_id == creditor_id))))
        db.session.remove()
    assert outbox == CUSTOMERS and fees == CUSTOMERS * BILLS_EACH
