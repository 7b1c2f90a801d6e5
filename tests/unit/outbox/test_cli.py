"""`flask outbox run --once | dead | replay` through Flask's CLI runner (commits are savepoints here)."""

from __future__ import annotations

import pytest

from app.extensions import db
from app.outbox.models import OutboxStatus
from app.outbox.services import enqueue
from tests.factories import make_creditor


@pytest.fixture
def cli(app, session):
    runner = app.test_cli_runner()
    return lambda *args: runner.invoke(args=["outbox", *map(str, args)])


def add(recipient: str, creditor_id: int | None = None, key: str = "cli:1"):
    message = enqueue("email", "test_note", recipient, {"n": 1}, idempotency_key=key, creditor_id=creditor_id,
                      locale="en")
    db.session.commit()
    return message


def test_run_once_prints_the_counts(cli, smtp):
    add("kari@example.test")
    result = cli("run", "--once", "--batch", 10)
    assert result.exit_code == 0 and "1 delivered, 0 to retry, 0 dead" in result.output
    assert len(smtp.messages) == 1


def test_dead_lists_and_replay_requeues(cli, smtp):
    creditor = make_creditor("NO")
    message = add("nobody@example.test", creditor.id)
    other = add("nobody@example.test", None, key="cli:2")
    smtp.refuse["nobody@example.test"] = "550 5.1.1 No such user"
    cli("run", "--once")
    assert message.status == other.status == OutboxStatus.DEAD
    listed = cli("dead", "--creditor", creditor.slug)
    assert listed.exit_code == 0
    assert len(listed.stdout.splitlines()) == 1 and listed.stdout.startswith(f"{message.id}\t")
    assert "550 5.1.1 No such user" in listed.stdout and "nobody@example.test" in listed.stdout
    assert len(cli("dead").stdout.splitlines()) == 2
    replayed = cli("replay", message.id)
    assert replayed.exit_code == 0 and message.status == OutboxStatus.PENDING
    again = cli("replay", message.id)
    assert again.exit_code == 1 and "pending, not dead" in again.output
    assert cli("replay", 10**9).exit_code == 1
    assert cli("dead", "--creditor", "no-such-creditor").exit_code == 1
