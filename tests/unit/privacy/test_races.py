"""Two retention runs at the same moment on PostgreSQL (real threads, each with its own session and
connection, as two cron jobs would be), over 200 paid bills of 100 customers, each customer's two
bills side by side and one bill a batch (so that the two runners minimise a customer's two bills at
the same time, each seeing only its own until it commits): every bill and every customer is
minimised exactly once, no batch fails, and a third run finds nothing to do."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import delete, func, insert, select

from app.backoffice.models import Note
from app.billing.models import Customer, Invoice, InvoiceEvent
from app.creditors.models import Creditor
from app.extensions import db
from app.models import utcnow
from app.privacy import worker
from app.privacy.models import MarkKind, PrivacyMark
from tests.factories import make_creditor
from tests.support.races import racing_app

RUNS = 2
CUSTOMERS = 100
BILLS_EACH = 2


@pytest.fixture
def race_app(app):
    yield from racing_app(app, RUNS + 2)


@pytest.fixture
def closed_bills(race_app, tmp_path):
    with race_app.test_request_context():
        creditor = make_creditor("NO")
        now = utcnow()
        closed = now - timedelta(days=4 * 365)
        customers = db.session.execute(insert(Customer).returning(Customer.id, sort_by_parameter_order=True), [
            {"creditor_id": creditor.id, "external_ref": f"P-{n}", "name": f"Race {n}", "kind": "consumer",
             "email": f"p{n}@example.test", "phone": f"+4792{n:06d}", "address_line1": "Storgata 1",
             "postcode": "0150", "city": "Oslo", "country": "NO", "created_at": now, "updated_at": now}
            for n in range(CUSTOMERS)]).scalars().all()
        invoices = db.session.execute(insert(Invoice).returning(Invoice.id, sort_by_parameter_order=True), [
            {"public_id": f"priv-{creditor.id}-{n}", "creditor_id": creditor.id,
             "customer_id": customers[n // BILLS_EACH], "number": f"8{n:05d}", "issue_date": closed.date(),
             "due_date": closed.date(), "currency": "NOK", "payment_reference": f"8{n:05d}", "status": "paid",
             "subtotal": 10000, "vat_total": 2500, "total": 12500, "amount_paid": 12500, "created_at": closed,
             "updated_at": closed} for n in range(CUSTOMERS * BILLS_EACH)]).scalars().all()
        db.session.execute(insert(InvoiceEvent), [
            {"invoice_id": invoice_id, "kind": "status_changed", "actor": "test", "created_at": closed,
             "data": {"from": "open", "to": "paid"}} for invoice_id in invoices])
        db.session.execute(insert(Note), [
            {"creditor_id": creditor.id, "customer_id": customer_id, "body": "private", "created_at": now}
            for customer_id in customers])
        db.session.commit()
        creditor_id = creditor.id
        db.session.remove()
    yield creditor_id
    with race_app.app_context(), db.engine.begin() as conn:
        invoices = select(Invoice.id).where(Invoice.creditor_id == creditor_id)
        conn.execute(delete(PrivacyMark).where(PrivacyMark.creditor_id == creditor_id))
        conn.execute(delete(Note).where(Note.creditor_id == creditor_id))
        conn.execute(delete(InvoiceEvent).where(InvoiceEvent.invoice_id.in_(invoices)))
        conn.execute(delete(Invoice).where(Invoice.creditor_id == creditor_id))
        conn.execute(delete(Customer).where(Customer.creditor_id == creditor_id))
        conn.execute(delete(Creditor).where(Creditor.id == creditor_id))


def test_two_runs_at_once_minimise_every_bill_and_customer_exactly_once(race_app, closed_bills, tmp_path):
    creditor_id = closed_bills
    today = utcnow().date()
    barrier = threading.Barrier(RUNS)
    reports, errors = [], []

    def cron() -> None:
        with race_app.test_request_context():
            try:
                barrier.wait(timeout=30)
                reports.append(worker.run(lambda _creditor: today, str(tmp_path), batch_size=1))
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
    mine = [r.by_creditor.get(creditor_id) for r in reports]
    assert sum(done.invoices for done in mine if done) == CUSTOMERS * BILLS_EACH
    assert sum(done.customers for done in mine if done) == CUSTOMERS
    with race_app.app_context():
        marks = dict(db.session.execute(select(PrivacyMark.kind, func.count()).where(
            PrivacyMark.creditor_id == creditor_id).group_by(PrivacyMark.kind)).all())
        assert marks == {MarkKind.INVOICE_MINIMISED: CUSTOMERS * BILLS_EACH, MarkKind.CUSTOMER_MINIMISED: CUSTOMERS}
        assert db.session.scalar(select(func.count()).select_from(Customer).where(
            Customer.creditor_id == creditor_id, Customer.email.is_not(None))) == 0
        assert db.session.scalar(select(func.count()).select_from(Note).where(Note.creditor_id == creditor_id)) == 0
        db.session.remove()
    with race_app.test_request_context():
        again = worker.run(lambda _creditor: today, str(tmp_path), batch_size=25)
        db.session.remove()
    assert again.by_creditor.get(creditor_id) is None or again.by_creditor[creditor_id].summary()["invoices"] == 0
