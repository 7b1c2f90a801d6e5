"""Rendering a dunning message at delivery reads what it needs set-wise: the message with its customer,
its notices with their bills, creditors, steps and plans, the open questions and the live resolutions.
The dispatcher commits after each message (every object expires), so each statement here is paid per
message sent; the bench `bench/dunning_dispatch.py` measures the effect."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import timedelta

import pytest
from sqlalchemy import event, select

from app.extensions import db
from app.outbox.base import render
from app.outbox.models import OutboxMessage
from tests.unit.dunning.conftest import TODAY, bill, creditor_with_plan, run


@pytest.fixture
def norway(app, session):
    with app.test_request_context():
        yield creditor_with_plan("NO", "NO")


@contextmanager
def selects():
    seen: list[str] = []

    def count(_conn, _cursor, statement, _params, _context, _many):
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append(statement)

    engine = db.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def queued(norway, **customer_fields) -> OutboxMessage:
    creditor, plan = norway
    bill(creditor, plan, due=TODAY - timedelta(days=14), **customer_fields)
    run(creditor, TODAY)
    return db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "dunning.message")).one()


@pytest.mark.parametrize(("fields", "channel"), [({}, "sms"), ({"phone": None}, "email")])
def test_a_dunning_message_renders_in_four_selects_after_a_commit(norway, fields, channel):
    message = queued(norway, **fields)
    assert message.channel == channel
    db.session.expire_all()  # as after the dispatcher's commit of the previous message
    with selects() as seen:
        rendered = render(message)
    assert rendered  # the SMS text, or the e-mail
    # (before: 9 for an SMS, 11 for an e-mail) the outbox row, the message with its customer,
    # its notices with bills, creditors, steps and plans,
    # and their open questions, the live resolutions
    assert len(seen) <= 4, "\n\n".join(seen)
