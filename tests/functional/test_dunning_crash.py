"""A dunning run killed (SIGKILL) in the middle of a batch, after its rows are written and before they
commit, then run again: the batches committed before stay, the killed one left nothing, and the
second run sends what is left: every step exactly once, one message per customer."""

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
from app.dunning import services, worker
from app.dunning.models import Message, Notice
from app.dunning.settings import save_settings
from app.extensions import db
from app.outbox.models import OutboxMessage
from tests.factories import make_creditor
from tests.unit.dunning.conftest import TODAY, bill

ROOT = Path(__file__).parents[2]
SECRET = "crash-test-" + "s" * 40
CUSTOMERS, BATCH, KILLED_IN = 12, 4, 3
RUN_AND_DIE = f"""
import os, signal
from app import create_app
from app.dunning import engine, worker
from datetime import date
written = []
original = engine.write
def write(*args, **kwargs):
    result = original(*args, **kwargs)
    written.append(1)
    if len(written) == {KILLED_IN}:
        os.kill(os.getpid(), signal.SIGKILL)  # the batch's rows are written, not committed
    return result
engine.write = write
app = create_app()
with app.test_request_context():
    worker.run(on=date.fromisoformat("{TODAY.isoformat()}"), batch_size={BATCH})
"""


@pytest.fixture
def own_database(tmp_path):
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


def counts() -> tuple[int, int, int]:
    return tuple(db.session.scalar(select(func.count()).select_from(model))
                 for model in (Notice, Message, OutboxMessage))


def test_a_run_killed_mid_batch_and_run_again_sends_each_step_once(own_database):
    app, env = own_database
    with app.test_request_context():
        creditor = make_creditor("NO")
        save_settings(creditor, languages=["en", "nb", "de"])
        plan = services.save_plan(creditor, services.shipped_plan("NO"), actor="test", today=TODAY)
        for n in range(CUSTOMERS):
            bill(creditor, plan, due=TODAY - timedelta(days=14), ref=f"K-{n}")  # the reminder is due today
        db.session.commit()
        db.session.remove()

    runner = subprocess.run([sys.executable, "-c", RUN_AND_DIE], cwd=ROOT, env={**os.environ, **env},
                            capture_output=True, text=True, timeout=120, check=False)
    assert runner.returncode == -signal.SIGKILL, runner.stderr[-2000:]

    with app.test_request_context():
        done = (KILLED_IN - 1) * BATCH
        assert counts() == (done, done, done)  # the killed batch left nothing
        report = worker.run(on=TODAY, batch_size=BATCH)
        assert (report.notices, report.failed_batches) == (CUSTOMERS - done, 0)
        assert counts() == (CUSTOMERS, CUSTOMERS, CUSTOMERS)
        per_invoice = db.session.execute(select(Notice.invoice_id, func.count()).group_by(Notice.invoice_id)).all()
        assert len(per_invoice) == CUSTOMERS and {n for _i, n in per_invoice} == {1}
        assert worker.run(on=TODAY, batch_size=BATCH).notices == 0
        db.session.remove()
