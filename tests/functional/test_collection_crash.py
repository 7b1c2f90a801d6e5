"""The dispatcher killed between sending a case and recording it: a real `flask outbox run --once`
process is killed (SIGKILL) by the partner's receiver the moment the case arrives, before it can
answer. The case is not lost: once the lease runs out, the next dispatcher sends it again, with
the same `webhook-id` and body, so the receiver can tell it is a repeat; the case is recorded as
delivered then, and handed off once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from flask_migrate import upgrade
from sqlalchemy import func, select

from app import create_app
from app.billing.services import record_reminder
from app.debt_collection.models import Case
from app.debt_collection.partners import add_partner, set_policy
from app.debt_collection.worker import run
from app.extensions import db
from app.models import utcnow
from app.outbox.dispatcher import dispatch
from app.outbox.models import OutboxMessage, OutboxStatus
from tests.factories import make_creditor, make_invoice
from tests.functional.collection_helpers import today_for
from tests.support.partner_receiver import PartnerReceiver

ROOT = Path(__file__).parents[2]
SECRET = "crash-test-" + "s" * 40
DISPATCH_ONCE = "from app import create_app\napp = create_app()\nwith app.app_context():\n" \
                "    from app.outbox.dispatcher import run_once\n    run_once()\n"


@pytest.fixture
def own_database(tmp_path):
    """An app on its own SQLite file, migrated: what it commits, another process sees."""
    url = f"sqlite:///{tmp_path}/crash.db"
    env = {"PORTAL_ENV": "testing", "SECRET_KEY": SECRET, "LINK_SIGNING_KEYS": SECRET, "DATABASE_URL": url,
           "PORTAL_INSTANCE_PATH": str(tmp_path), "PORTAL_BASE_URL": "https://pay.example.test", "LOG_LEVEL": "WARNING"}
    app = create_app({"TESTING": True, "PORTAL_ENV": "testing", "SECRET_KEY": SECRET, "LINK_SIGNING_KEYS": [SECRET],
                      "DATA_ENCRYPTION_KEYS": ["data:" + SECRET], "SQLALCHEMY_DATABASE_URI": url,
                      "PORTAL_BASE_URL": "https://pay.example.test"})
    with app.app_context():
        upgrade()
    yield app, env
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def test_a_case_whose_dispatcher_died_mid_delivery_arrives_again_with_the_same_webhook_id(own_database):
    app, env = own_database
    with PartnerReceiver(secrets=[]) as receiver:
        with app.test_request_context():  # one session for the setup: a partner, a policy, a bill past its reminder
            made = add_partner("nordcollect", "Nord Collect AS", receiver.url)
            receiver.secrets.append(made.signing_secret)
            creditor = make_creditor("NO")
            set_policy(creditor, made.partner, days_past_due=14, days_after_final_reminder=10)
            today = today_for("NO")
            invoice = make_invoice(creditor, issue_date=(today - timedelta(days=44)).isoformat(),
                                   due_date=(today - timedelta(days=30)).isoformat())
            record_reminder(invoice, channel="letter", sent_at=utcnow() - timedelta(days=20), final=True, actor="api")
            db.session.commit()
            assert len(run(today_for).handed_off) == 1
            db.session.remove()

        dispatcher = subprocess.Popen([sys.executable, "-c", DISPATCH_ONCE], cwd=ROOT, env={**os.environ, **env},
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        receiver.on_request = lambda _delivery: os.kill(dispatcher.pid, signal.SIGKILL)  # before it can answer
        dispatcher.wait(timeout=60)
        assert dispatcher.returncode == -signal.SIGKILL
        receiver.on_request = None

        with app.app_context():
            message = db.session.scalar(select(OutboxMessage).where(OutboxMessage.channel == "webhook"))
            assert (message.status, message.attempts) == (OutboxStatus.PENDING, 1)  # claimed, never recorded
            assert dispatch(now=utcnow()).claimed == 0  # its lease still runs: nobody sends it twice at once
            lease_over = message.next_attempt_at + timedelta(seconds=1)
            report = dispatch(now=lease_over)
            db.session.expire_all()
            message = db.session.get(OutboxMessage, message.id)
            assert report.delivered == 1 and message.status == OutboxStatus.DELIVERED and message.attempts == 2
            assert db.session.scalar(select(func.count()).select_from(Case)) == 1
            db.session.remove()

    first, second = receiver.deliveries
    assert first.webhook_id == second.webhook_id and second.repeat and not first.repeat
    assert first.raw == second.raw and first.idempotency_key == second.idempotency_key
    assert len(receiver.unique()) == 1 and not receiver.refused
