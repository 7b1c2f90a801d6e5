"""Contact requests: the rules, one record per submission, the thread, and the e-mails over SMTP."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from flask_babel import force_locale, gettext
from sqlalchemy import select

from app.errors import IllegalTransition, InvalidData
from app.extensions import db
from app.outbox.models import OutboxMessage
from app.outbox.services import run_once
from app.support import services
from app.support.attachments import Upload
from app.support.models import RequestStatus
from tests.factories import make_creditor, make_invoice
from tests.support.smtp import SmtpServer

TODAY = date(2026, 11, 23)
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture
def invoice(app, session):
    with app.test_request_context():
        yield make_invoice(make_creditor("NO"))


@pytest.fixture
def smtp(app, monkeypatch):
    with SmtpServer() as server:
        for key, value in server.config().items():
            monkeypatch.setitem(app.config, key, value)
        yield server


def ask(invoice, tmp_path, **fields):
    arguments = dict(topic="bill_question", message="Why is it so high?", contact_method="email", contact_email=None,
                     contact_phone=None, callback_date=None, callback_window=None, upload=None, locale="nb",
                     submission_key="k", attachment_dir=str(tmp_path), today=TODAY) | fields
    return services.open_request(invoice, **arguments)


def mails() -> list[OutboxMessage]:
    return list(db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def test_a_request_confirms_to_the_customer_and_notifies_the_support_desk_once(invoice, tmp_path):
    request, created = ask(invoice, tmp_path)
    again, created_again = ask(invoice, tmp_path)
    assert (created, created_again, again.id) == (True, False, request.id)
    assert request.reference.startswith("S-") and len(request.reference) == 10
    assert (request.status, request.contact_email) == (RequestStatus.OPEN, "kari@example.test")
    assert [(m.kind, m.recipient, m.locale) for m in mails()] == [
        ("support.received", "kari@example.test", "nb"), ("support.notification", "help@example.test", "nb")]
    assert [e.kind for e in invoice.events][-1] == "support_request_opened"


@pytest.mark.parametrize(("fields", "errors"), [
    ({"topic": "spam"}, {"topic": "choose"}),
    ({"message": " "}, {"message": "required"}),
    ({"message": "x" * 4001}, {"message": "too_long"}),
    ({"contact_email": "not an address"}, {"email": "invalid"}),
    ({"contact_method": "pigeon"}, {"contact_method": "choose"}),
    ({"contact_method": "phone"}, {"phone": "required", "callback_date": "range", "callback_window": "choose"}),
    ({"contact_method": "phone", "contact_phone": "+47 912 34 567", "callback_date": TODAY + timedelta(days=15),
      "callback_window": "morning"}, {"callback_date": "range"}),
    ({"contact_method": "phone", "contact_phone": "call me", "callback_date": TODAY, "callback_window": "noon"},
     {"phone": "invalid", "callback_window": "choose"}),
])
def test_bad_input_is_refused_field_by_field_and_changes_nothing(invoice, tmp_path, fields, errors):
    with pytest.raises(InvalidData) as error:
        ask(invoice, tmp_path, **fields)
    assert error.value.errors == errors
    assert services.threads_for(invoice.id) == [] and mails() == []


def test_a_call_back_request_keeps_the_number_day_and_window(invoice, tmp_path):
    request, _ = ask(invoice, tmp_path, contact_method="phone", contact_phone="+47 912 34 567",
                     callback_date=TODAY + timedelta(days=2), callback_window="afternoon",
                     upload=Upload("meter.pdf", "application/pdf", PDF))
    assert (request.contact_phone, request.callback_window) == ("+4791234567", "afternoon")
    assert request.messages[0].attachment.filename == "meter.pdf"


def test_the_thread_goes_on_and_the_agents_reply_reaches_the_customer_over_smtp(invoice, tmp_path, smtp):
    request, _ = ask(invoice, tmp_path, message="<script>alert(1)</script>")
    services.add_customer_message(request, "Any news?", None, submission_key="m1", attachment_dir=str(tmp_path))
    services.add_customer_message(request, "Any news?", None, submission_key="m1", attachment_dir=str(tmp_path))
    services.reply(request, "Your meter was read on the 1st.\nKind regards", agent_name="Ola", actor="agent:ola")
    assert [(m.author, m.body) for m in request.messages] == [
        ("customer", "<script>alert(1)</script>"), ("customer", "Any news?"),
        ("agent", "Your meter was read on the 1st.\nKind regards")]
    assert request.status == RequestStatus.ANSWERED
    assert run_once().delivered == 4  # received, notification, notification of the second message, reply
    with force_locale("nb"):
        reply_heading = gettext("We have answered your message")
    reply = next(m for m in smtp.messages if reply_heading in m.get_body(("plain",)).get_content())
    assert reply["To"] == "kari@example.test" and "> Your meter was read on the 1st." in reply.get_body(("plain",)).get_content()
    desk = [m for m in smtp.messages if m["To"] == "help@example.test"]
    assert len(desk) == 2 and "&lt;script&gt;" in desk[0].get_body(("html",)).get_content()
    assert "<script>" not in desk[0].get_body(("html",)).get_content()


def test_a_closed_conversation_takes_no_more_messages(invoice, tmp_path):
    request, _ = ask(invoice, tmp_path)
    request.status = RequestStatus.CLOSED
    with pytest.raises(IllegalTransition):
        services.add_customer_message(request, "Hello?", None, submission_key="m", attachment_dir=str(tmp_path))
    with pytest.raises(IllegalTransition):
        services.reply(request, "Hi", agent_name="Ola", actor="agent:ola")
