"""`insert_new` (app/core/inserts.py): a row inserted once by its unique key, in one statement; and the
two callers that rely on it, the outbox's `enqueue` and `settle`, in fewer round trips."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from app.core.inserts import insert_new
from app.extensions import db
from app.models import utcnow
from app.outbox.models import OutboxMessage, OutboxStatus
from app.outbox.services import enqueue
from app.payments.services import settle
from tests.factories import make_creditor, make_invoice
from tests.support.database import recorded_statements


def message(key: str, **changes) -> dict:
    return {"channel": "email", "kind": "payment_receipt", "recipient": "kari@example.test", "payload": {"n": 1},
            "idempotency_key": key, "creditor_id": None, "locale": "nb", "status": OutboxStatus.PENDING,
            "attempts": 0, "next_attempt_at": utcnow(), **changes}


def test_a_new_row_comes_back_as_an_object_of_the_session_with_its_defaults(app, session):
    with app.app_context():
        row = insert_new(session, OutboxMessage, message("k-1"), unique=["idempotency_key"])
        assert row is not None and row.id is not None
        assert row in session and session.get(OutboxMessage, row.id) is row
        assert row.created_at is not None and row.livemode is True  # a Python default and a server default


def test_a_row_whose_key_exists_is_not_written_and_gives_none(app, session):
    with app.app_context():
        first = insert_new(session, OutboxMessage, message("k-2"), unique=["idempotency_key"])
        with recorded_statements(session.get_bind().engine) as seen:
            again = insert_new(session, OutboxMessage, message("k-2", recipient="other@example.test"),
                               unique=["idempotency_key"])
        assert again is None and first.recipient == "kari@example.test"
        assert len(seen) == 1 and "ON CONFLICT" in seen[0] and "SAVEPOINT" not in " ".join(seen)
        assert session.scalar(select(func.count()).where(OutboxMessage.idempotency_key == "k-2")) == 1


def test_a_conflict_on_another_unique_column_is_still_an_error(app, session):
    with app.app_context():
        taken = insert_new(session, OutboxMessage, message("k-4"), unique=["idempotency_key"]).id
        with pytest.raises(IntegrityError):  # a new key, but the id of another row
            insert_new(session, OutboxMessage, message("k-3", id=taken), unique=["idempotency_key"])


def test_enqueue_makes_one_insert_and_a_repeat_returns_the_first_message(app, session):
    with app.app_context():
        make_creditor("NO")
        session.flush()
        engine = session.get_bind().engine
        with recorded_statements(engine) as seen:
            first = enqueue("email", "payment_receipt", "kari@example.test", {"payment_id": 1},
                            idempotency_key="receipt-1", creditor_id=None, locale="nb")
        assert [s.split()[0] for s in seen] == ["INSERT"]
        again = enqueue("email", "payment_receipt", "other@example.test", {"payment_id": 2},
                        idempotency_key="receipt-1", creditor_id=None, locale="de")
        assert again is first and again.recipient == "kari@example.test"


def test_settle_records_a_payment_without_a_savepoint_and_a_repeat_records_nothing(app, session):
    with app.test_request_context():
        invoice = make_invoice(make_creditor("NO"), lines=1)
        session.flush()
        engine = session.get_bind().engine
        with recorded_statements(engine) as seen:
            payment = settle(invoice.id, provider="simulator", payment_id="pay_x", amount=invoice.balance,
                             currency=invoice.currency, method="card", received_at=utcnow(), actor="test")
        assert payment is not None and payment.amount > 0
        assert not [s for s in seen if s.startswith(("SAVEPOINT", "RELEASE"))]
        assert settle(invoice.id, provider="simulator", payment_id="pay_x", amount=100, currency=invoice.currency,
                      method="card", received_at=utcnow(), actor="test") is None


@pytest.fixture
def insert_race_app(app):
    from tests.support.races import racing_app

    yield from racing_app(app, 3)


def test_two_transactions_inserting_one_key_make_one_row(insert_race_app):
    """PostgreSQL: the second INSERT waits for the first transaction and, once it commits, writes
    nothing and gives None (no IntegrityError, no savepoint)."""
    key, started, result = "race-insert-new", threading.Event(), {}

    def second():
        with insert_race_app.app_context():
            started.set()
            result["row"] = insert_new(db.session, OutboxMessage, message(key), unique=["idempotency_key"])
            db.session.commit()
            db.session.remove()

    with insert_race_app.app_context():
        try:
            assert insert_new(db.session, OutboxMessage, message(key), unique=["idempotency_key"]) is not None
            thread = threading.Thread(target=second)
            thread.start()
            started.wait(5)
            thread.join(0.5)
            assert thread.is_alive()  # waiting for the first transaction's row
            db.session.commit()
            thread.join(10)
            assert not thread.is_alive() and result["row"] is None
            assert db.session.scalar(select(func.count()).where(OutboxMessage.idempotency_key == key)) == 1
        finally:
            db.session.rollback()
            db.session.execute(delete(OutboxMessage).where(OutboxMessage.idempotency_key == key))
            db.session.commit()
            db.session.remove()
