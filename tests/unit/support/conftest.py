"""Fixtures for the support tests: a request context (services issue links and render e-mails),
a Norwegian creditor's invoice, and `ask`, which opens a contact request with sensible answers."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from app.extensions import db
from app.outbox.models import OutboxMessage
from app.support import services
from tests.factories import make_creditor, make_invoice

TODAY = date(2026, 11, 23)
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture
def ctx(app, session):
    with app.test_request_context():
        yield


@pytest.fixture
def invoice(ctx):
    return make_invoice(make_creditor("NO"))


@pytest.fixture
def ask(tmp_path):
    """ask(invoice, **fields) -> (request, created): open_request with an e-mail answer unless told otherwise."""

    def _ask(invoice, **fields):
        arguments = {
            "topic": "bill_question", "message": "Why is it so high?", "contact_method": "email",
            "contact_email": "kari@example.test", "contact_phone": None, "callback_date": None,
            "callback_window": None, "upload": None, "locale": "nb", "submission_key": "k",
            "attachment_dir": str(tmp_path), "today": TODAY,
        } | fields
        return services.open_request(invoice, **arguments)

    return _ask




def outbox() -> list[OutboxMessage]:
    return list(db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))
