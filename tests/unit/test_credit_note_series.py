"""Credit note numbers on PostgreSQL: many notes of one creditor at once, on different invoices, each
in its own transaction. Every number is taken once, the series has no gap, and a note rolled back
gives its number back.

SQLite serialises every writer on one file lock, so a race there proves nothing: skipped on it."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import delete, select

from app.billing.corrections import LineCredit, issue_credit_note
from app.billing.models import CreditNote, CreditNoteSeries, Customer, Invoice
from app.creditors.models import Creditor
from app.extensions import db
from tests.factories import make_creditor, make_invoice
from tests.support.races import racing_app

THREADS = 10


@pytest.fixture
def race_app(app):
    yield from racing_app(app, THREADS + 2)


@pytest.fixture
def invoices(race_app):
    """THREADS committed invoices of one creditor (their ids), removed with it afterwards."""
    with race_app.app_context():
        creditor = make_creditor("NO")
        found = [make_invoice(creditor) for _ in range(THREADS)]
        db.session.commit()
        ids, creditor_id = [invoice.id for invoice in found], creditor.id
        db.session.remove()
    yield creditor_id, ids
    with race_app.app_context(), db.engine.begin() as conn:
        conn.execute(delete(CreditNoteSeries).where(CreditNoteSeries.creditor_id == creditor_id))
        conn.execute(delete(Invoice).where(Invoice.creditor_id == creditor_id))  # notes, lines, events
        conn.execute(delete(Customer).where(Customer.creditor_id == creditor_id))
        conn.execute(delete(Creditor).where(Creditor.id == creditor_id))


def test_notes_issued_at_once_take_every_number_once_and_a_rolled_back_one_leaves_no_gap(race_app, invoices):
    creditor_id, ids = invoices
    barrier = threading.Barrier(THREADS)
    errors: list[str] = []

    def credit(invoice_id: int, keep: bool) -> None:
        with race_app.app_context():
            try:
                invoice = db.session.get(Invoice, invoice_id)
                barrier.wait(timeout=30)
                issue_credit_note(invoice, [LineCredit(invoice.lines[0].id, 100)], reason="Goodwill", actor="test")
                if keep:
                    db.session.commit()
                else:
                    db.session.rollback()
            except Exception as exc:  # noqa: BLE001  reported below
                errors.append(repr(exc))
            finally:
                db.session.remove()

    threads = [threading.Thread(target=credit, args=(invoice_id, i % 4 != 3)) for i, invoice_id in enumerate(ids)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    kept = sum(1 for i in range(THREADS) if i % 4 != 3)
    with race_app.app_context():
        numbers = sorted(db.session.scalars(select(CreditNote.number).where(CreditNote.creditor_id == creditor_id)))
        assert numbers == [f"CN-{n:06d}" for n in range(1, kept + 1)]
        db.session.remove()
