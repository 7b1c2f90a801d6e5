"""Rendering a dunning message at delivery reads what it needs set-wise: the message with its customer,
its notices with their bills, creditors, steps and plans, the open questions and the live resolutions.
The dispatcher reads them once for its whole batch (`dunning.messages.prepare`): the same statements
whatever the batch's size. The bench `bench/dunning_dispatch.py` measures the effect."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import timedelta

import pytest
from sqlalchemy import event, select

from app.dunning.models import Message, MessageStatus
from app.extensions import db
from app.outbox.base import render
from app.outbox.dispatcher import dispatch
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


def test_the_bills_hold_their_creditors_when_nothing_else_does(norway):
    """The session holds what it loads weakly: the creditors read with the notices stay only if their bills
    hold them. Here nobody else does (the test's own objects set aside), and rendering reads none again."""
    message_id = queued(norway, phone=None).id
    db.session.flush()
    db.session.expunge_all()
    message = db.session.get(OutboxMessage, message_id)
    with selects() as seen:
        assert render(message)
    assert not [s for s in seen if "FROM creditors WHERE creditors.id" in " ".join(s.split())], "\n\n".join(seen)


def test_a_batch_of_dunning_e_mails_reads_the_same_statements_whatever_its_size(norway, smtp):
    creditor, plan = norway
    for n in range(6):
        bill(creditor, plan, due=TODAY - timedelta(days=14), ref=f"C-{n}", phone=None)
    run(creditor, TODAY)
    with selects() as seen:
        report = dispatch(50)
    assert report.delivered == 6 and len(smtp.received) == 6
    # The claim, the batch's outbox rows, and the preparer's three (messages with customers; notices with
    # bills, creditors, steps, plans and open questions; live resolutions): not four per message as before.
    assert len(seen) <= 5, "\n\n".join(seen)
    sent = db.session.scalars(select(Message)).all()
    assert len(sent) == 6 and all(m.status == MessageStatus.SENT and m.link_id and m.body for m in sent)
