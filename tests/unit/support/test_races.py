"""A double submit that arrives many times at once, on PostgreSQL: real threads, each with its own
app context, session and connection, committing like the view does. One request, one confirmation.

SQLite serialises every writer on one file lock, so a race there proves nothing: skipped on it."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import delete, func, select

from app.billing.models import Customer, Invoice
from app.creditors.models import Creditor
from app.extensions import db
from app.outbox.models import OutboxMessage
from app.support import services
from app.support.models import SupportRequest
from tests.factories import make_creditor, make_invoice
from tests.support.races import racing_app
from tests.unit.support.conftest import TODAY

THREADS = 12


@pytest.fixture
def race_app(app):
    yield from racing_app(app, THREADS + 2)


@pytest.fixture
def committed_invoice(race_app):
    """A committed invoice (its id), removed with its creditor, requests and e-mails afterwards."""
    with race_app.app_context():
        invoice = make_invoice(make_creditor("NO"))
        db.session.commit()
        invoice_id, creditor_id = invoice.id, invoice.creditor_id
        db.session.remove()
    yield invoice_id
    with race_app.app_context(), db.engine.begin() as conn:
        conn.execute(delete(OutboxMessage).where(OutboxMessage.creditor_id == creditor_id))
        conn.execute(delete(Invoice).where(Invoice.creditor_id == creditor_id))  # requests, messages, events
        conn.execute(delete(Customer).where(Customer.creditor_id == creditor_id))
        conn.execute(delete(Creditor).where(Creditor.id == creditor_id))


def test_the_same_form_sent_many_times_at_once_makes_one_request(race_app, committed_invoice, tmp_path):
    barrier = threading.Barrier(THREADS)
    results: list[tuple[str, bool]] = []
    errors: list[str] = []

    def submit() -> None:
        with race_app.app_context():
            try:
                invoice = db.session.get(Invoice, committed_invoice)
                barrier.wait(timeout=30)
                request, created = services.open_request(
                    invoice, topic="bill_question", message="Why?", contact_method="email",
                    contact_email="kari@example.test", contact_phone=None, callback_date=None, callback_window=None,
                    upload=None, locale="nb", submission_key="one-form", attachment_dir=str(tmp_path), today=TODAY,
                )
                db.session.commit()
                results.append((request.reference, created))
            except Exception as exc:  # noqa: BLE001 - collected and asserted below
                errors.append(repr(exc)[:300])
            finally:
                db.session.remove()

    threads = [threading.Thread(target=submit) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert errors == [] and len(results) == THREADS
    assert len({reference for reference, _created in results}) == 1
    assert sum(created for _reference, created in results) == 1
    with race_app.app_context():
        requests = db.session.scalar(select(func.count()).select_from(SupportRequest)
                                     .where(SupportRequest.invoice_id == committed_invoice))
        confirmations = db.session.scalar(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.kind == "support.received",
            OutboxMessage.idempotency_key == f"support.received:{results[0][0]}"))
        db.session.remove()
    assert (requests, confirmations) == (1, 1)
