"""Two dispatchers on PostgreSQL, each with its own connection, share 200 messages: SKIP LOCKED and
the lease give each message to exactly one of them. Counted at the SMTP server, by Message-ID.

The dispatchers need committed rows (they cannot see the per-test transaction), so this test
commits its messages and deletes them at the end."""

from __future__ import annotations

import os
import threading
import uuid

import pytest
from sqlalchemy import delete, select

from app.extensions import db
from app.outbox import dispatcher as dispatcher_module
from app.outbox.dispatcher import DispatchReport, dispatch
from app.outbox.email import message_id
from app.outbox.models import OutboxMessage, OutboxStatus
from app.outbox.services import enqueue

pytestmark = pytest.mark.skipif(not os.environ.get("TEST_DATABASE_URL"), reason="concurrency test: PostgreSQL only")

MESSAGES = 200


@pytest.mark.parametrize("batch", [7, 60])  # 60: batches recorded in several commits (RECORD_SECONDS below)
def test_two_dispatchers_deliver_each_message_exactly_once(app, smtp, batch, monkeypatch):
    monkeypatch.setattr(dispatcher_module, "RECORD_SECONDS", 0.02)
    prefix = f"parallel:{uuid.uuid4().hex}:"
    keys = [f"{prefix}{n}" for n in range(MESSAGES)]
    with app.app_context():
        for n, key in enumerate(keys):
            enqueue("email", "test_note", f"kari{n}@example.test", {"n": n}, idempotency_key=key, creditor_id=None,
                    locale="en")
        db.session.commit()
        db.session.remove()
    barrier = threading.Barrier(2)
    reports: list[DispatchReport] = []
    errors: list[BaseException] = []

    def dispatcher():
        try:
            with app.app_context():  # its own session, so its own connection
                barrier.wait()
                total = DispatchReport()
                while (report := dispatch(batch)).claimed:
                    total.add(report)
                reports.append(total)
                db.session.remove()
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread
            errors.append(exc)

    threads = [threading.Thread(target=dispatcher) for _ in range(2)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert not errors, errors
        received = smtp.message_ids()
        assert len(received) == MESSAGES and set(received) == {message_id(key, "pay.example.test") for key in keys}
        assert sorted(report.delivered for report in reports) == sorted(r.claimed for r in reports)
        assert sum(report.delivered for report in reports) == MESSAGES
        assert all(report.delivered > 0 for report in reports), "both dispatchers took a share"
        with app.app_context():
            rows = db.session.execute(
                select(OutboxMessage.status, OutboxMessage.attempts)
                .where(OutboxMessage.idempotency_key.startswith(prefix))
            ).all()
            db.session.remove()
        assert rows and all(row == (OutboxStatus.DELIVERED, 1) for row in rows) and len(rows) == MESSAGES
    finally:
        with app.app_context():
            db.session.execute(delete(OutboxMessage).where(OutboxMessage.idempotency_key.startswith(prefix)))
            db.session.commit()
            db.session.remove()
