"""Fixtures for the outbox tests: an SMTP server the app sends to, a simple kind of e-mail, an app context."""

from __future__ import annotations

import pytest

from app.extensions import db
from app.models import utcnow
from app.outbox.base import renderers
from app.outbox.email import RenderedEmail
from app.outbox.models import OutboxMessage
from tests.support.smtp import SmtpServer

MAIL_FROM = "billing@pay.example.test"


def render_email(message) -> RenderedEmail:
    """A plain e-mail kind for the dispatcher's tests (receipts have their own)."""
    return RenderedEmail(subject=f"Note {message.payload['n']}", text=f"Note {message.payload['n']}",
                         html=f"<p>Note {message.payload['n']}</p>", sender_name="Acme AS", reply_to="help@acme.test")


@pytest.fixture(autouse=True)
def note_kind(app):
    renderers().register("email", "test_note", render_email)


def orphan(channel: str, recipient: str, key: str) -> OutboxMessage:
    """A message of a kind this release renders no more (written by an older one): straight into the table."""
    message = OutboxMessage(channel=channel, kind="no_such_kind", recipient=recipient, payload={},
                            idempotency_key=key, creditor_id=None, locale="en", status="pending", attempts=0,
                            next_attempt_at=utcnow())
    db.session.add(message)
    db.session.commit()
    return message


@pytest.fixture
def mail_settings(app, monkeypatch):
    """Point the app at `port` (nothing listening unless a server is started there)."""

    def point_at(server: SmtpServer) -> SmtpServer:
        for key, value in server.config().items():
            monkeypatch.setitem(app.config, key, value)
        monkeypatch.setitem(app.config, "MAIL_FROM", MAIL_FROM)
        return server

    return point_at


@pytest.fixture
def smtp(mail_settings):
    with SmtpServer() as server:
        yield mail_settings(server)


@pytest.fixture
def ctx(app, session):
    """An app context for the whole test (the dispatcher renders templates and reads the config)."""
    with app.app_context():
        yield
