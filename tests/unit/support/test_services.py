"""Contact requests: the rules, one record per submission, the thread, the events and the outbox."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from app.billing.models import InvoiceEvent
from app.core.dates import local_today
from app.errors import IllegalTransition, InvalidData
from app.extensions import db
from app.models import utcnow
from app.support import services
from app.support.attachments import Upload
from app.support.models import Attachment, RequestStatus
from tests.factories import make_creditor, make_invoice
from tests.unit.support.conftest import PDF, TODAY, outbox


def events(invoice) -> list[tuple[str, str, dict]]:
    return [(e.kind, e.actor, e.data) for e in db.session.scalars(
        select(InvoiceEvent).where(InvoiceEvent.invoice_id == invoice.id, InvoiceEvent.kind.like("support%"))
        .order_by(InvoiceEvent.id))]


def test_a_request_confirms_to_the_customer_and_notifies_the_support_desk(invoice, ask):
    request, created = ask(invoice, contact_email=" ola@example.test ")
    assert created and request.reference.startswith("S-") and len(request.reference) == 10
    assert set(request.reference[2:]) <= set(services.REFERENCE_ALPHABET)
    assert (request.status, request.topic, request.contact_email, request.locale) == (
        RequestStatus.OPEN, "bill_question", "ola@example.test", "nb")
    assert [(m.author, m.body) for m in request.messages] == [("customer", "Why is it so high?")]
    assert [(m.kind, m.recipient, m.locale, m.idempotency_key, m.payload, m.creditor_id) for m in outbox()] == [
        ("support.received", "ola@example.test", "nb", f"support.received:{request.reference}",
         {"request_id": request.id}, invoice.creditor_id),
        ("support.notification", "help@example.test", "nb", f"support.notification:{request.reference}",
         {"request_id": request.id}, invoice.creditor_id),
    ]
    assert events(invoice) == [("support_request_opened", "customer",
                                {"reference": request.reference, "topic": "bill_question"})]


def test_a_double_submit_returns_the_first_request_and_sends_nothing_more(invoice, ask):
    first, _ = ask(invoice)
    again, created = ask(invoice, message="Why is it so high? (sent twice)")
    assert (created, again.id) == (False, first.id)
    assert len(services.threads_for(invoice.id)) == 1 and len(outbox()) == 2 and len(events(invoice)) == 1
    other, created = ask(invoice, submission_key="another form")
    assert created and other.reference != first.reference


def test_the_same_submission_key_on_another_bill_is_another_request(invoice, ask):
    first, _ = ask(invoice)
    second, created = ask(make_invoice(invoice.creditor))
    assert created and second.id != first.id


@pytest.mark.parametrize(("fields", "problems"), [
    ({"topic": "spam"}, {"topic": "choose"}),
    ({"topic": None}, {"topic": "choose"}),
    ({"message": " \n "}, {"message": "required"}),
    ({"message": "x" * 4001}, {"message": "too_long"}),
    ({"contact_email": "not an address"}, {"email": "invalid"}),
    ({"contact_email": "a@" + "b" * 250 + ".no"}, {"email": "invalid"}),
    ({"contact_method": "pigeon"}, {"contact_method": "choose"}),
    ({"contact_method": "phone"}, {"phone": "required", "callback_date": "range"}),
    ({"contact_method": "phone", "contact_phone": "+47 912 34 567", "callback_date": TODAY + timedelta(days=5),
      "callback_window": "morning"}, {"callback_window": "closed"}),  # a Saturday: closed by default
    ({"contact_method": "phone", "contact_phone": "+47 912 34 567", "callback_date": TODAY + timedelta(days=15),
      "callback_window": "morning"}, {"callback_date": "range"}),
    ({"contact_method": "phone", "contact_phone": "+47 912 34 567", "callback_date": TODAY - timedelta(days=1),
      "callback_window": "morning"}, {"callback_date": "range"}),
    ({"contact_method": "phone", "contact_phone": "call me", "callback_date": TODAY, "callback_window": "noon"},
     {"phone": "invalid", "callback_window": "choose"}),
    ({"topic": "x", "message": "", "contact_email": "x@", "contact_method": "email"},
     {"topic": "choose", "message": "required", "email": "invalid"}),  # every problem at once
])
def test_bad_input_is_refused_field_by_field_and_changes_nothing(invoice, ask, fields, problems):
    with pytest.raises(InvalidData) as error:
        ask(invoice, **fields)
    assert error.value.errors == problems
    assert services.threads_for(invoice.id) == [] and outbox() == [] and events(invoice) == []


def test_an_answer_by_e_mail_uses_the_address_on_file_unless_another_is_typed(invoice, ask):
    request, _ = ask(invoice, contact_email="")
    assert request.contact_email == "kari@example.test"
    invoice.customer.email = None
    with pytest.raises(InvalidData) as error:
        ask(invoice, contact_email=" ", submission_key="k2")
    assert error.value.errors == {"email": "required"}


@pytest.mark.parametrize("key", ["", None, "k" * 65])
def test_a_form_without_its_one_time_key_is_refused(invoice, ask, key):
    with pytest.raises(InvalidData) as error:
        ask(invoice, submission_key=key)
    assert error.value.errors == {"submission": "missing"}


def test_a_call_back_keeps_the_number_day_and_window_and_confirms_to_the_address_on_file(invoice, ask, tmp_path):
    request, _ = ask(invoice, contact_method="phone", contact_email="", contact_phone="+47 (912) 34-567",
                     callback_date=TODAY + timedelta(days=14), callback_window="afternoon",
                     upload=Upload("meter.pdf", "application/pdf", PDF))
    assert (request.contact_method, request.contact_phone, request.callback_date, request.callback_window) == (
        "phone", "+4791234567", TODAY + timedelta(days=14), "afternoon")
    assert request.contact_email == "kari@example.test"  # the customer's, for the confirmation
    attachment = request.messages[0].attachment
    assert (attachment.filename, attachment.invoice_id) == ("meter.pdf", invoice.id)
    assert (tmp_path / str(invoice.creditor_id) / attachment.storage_key).read_bytes() == PDF
    assert outbox()[0].recipient == "kari@example.test"


def test_an_e_mail_answer_keeps_no_call_back_details(invoice, ask):
    request, _ = ask(invoice, contact_phone="+4791234567", callback_date=TODAY, callback_window="evening")
    assert (request.contact_phone, request.callback_date, request.callback_window) == (None, None, None)


def test_the_call_back_day_counts_from_the_creditors_today_by_default(invoice, ask):
    today = local_today(invoice.creditor.country, utcnow())
    last = services.callback_windows(invoice, utcnow())[-1]
    phone = {"contact_method": "phone", "contact_phone": "+4791234567", "today": None}
    request, _ = ask(invoice, callback_date=last.day, callback_window=last.name, **phone)
    assert request.callback_date == last.day <= today + timedelta(days=14)
    with pytest.raises(InvalidData):
        ask(invoice, callback_date=today + timedelta(days=15), callback_window="morning", submission_key="k2", **phone)


def test_no_address_no_confirmation_and_no_support_address_no_notification(ctx, ask):
    invoice = make_invoice(make_creditor("NO", support_email=None))
    invoice.customer.email = None
    ask(invoice, contact_method="phone", contact_email=None, contact_phone="+4791234567", callback_date=TODAY,
        callback_window="morning")
    assert outbox() == []


def test_the_customer_writes_again_once_per_submit_and_the_desk_is_told(invoice, ask, tmp_path):
    request, _ = ask(invoice)
    services.reply(request, "We are looking into it.", agent_name="Ola", actor="agent:ola")
    message, created = services.add_customer_message(
        request, " Any news? ", Upload("receipt.png", "image/png", b"png bytes"), "m1", str(tmp_path))
    again, created_again = services.add_customer_message(request, "Any news?", None, "m1", str(tmp_path))
    assert (created, created_again, again.id) == (True, False, message.id)
    assert (message.body, message.attachment.filename, request.status) == ("Any news?", "receipt.png",
                                                                           RequestStatus.OPEN)
    assert [m.author for m in request.messages] == ["customer", "agent", "customer"]
    assert db.session.scalar(select(Attachment).where(Attachment.invoice_id == invoice.id)) is message.attachment
    assert [e[0] for e in events(invoice)] == ["support_request_opened", "support_reply", "support_message"]
    last = outbox()[-1]
    assert (last.kind, last.recipient, last.idempotency_key, last.payload) == (
        "support.notification", "help@example.test", f"support.notification:{request.reference}:{message.id}",
        {"request_id": request.id, "message_id": message.id})
    with pytest.raises(InvalidData) as error:
        services.add_customer_message(request, "", None, "m2", str(tmp_path))
    assert error.value.errors == {"message": "required"}


def test_an_agents_reply_answers_the_request_and_is_e_mailed_to_the_customer(invoice, ask):
    request, _ = ask(invoice, contact_email="ola@example.test", locale="de")
    reply = services.reply(request, "  Your meter was read on the 1st.\n", agent_name="Ola", actor="agent:ola")
    assert (reply.author, reply.author_name, reply.body) == ("agent", "Ola", "Your meter was read on the 1st.")
    assert request.status == RequestStatus.ANSWERED
    assert events(invoice)[-1] == ("support_reply", "agent:ola", {"reference": request.reference})
    last = outbox()[-1]
    assert (last.kind, last.recipient, last.locale, last.idempotency_key, last.payload) == (
        "support.reply", "ola@example.test", "de", f"support.reply:{request.reference}:{reply.id}",
        {"request_id": request.id, "message_id": reply.id})
    with pytest.raises(InvalidData):
        services.reply(request, " ", agent_name="Ola", actor="agent:ola")


def test_a_closed_conversation_takes_no_more_messages(invoice, ask, tmp_path):
    request, _ = ask(invoice)
    request.status = RequestStatus.CLOSED
    with pytest.raises(IllegalTransition):
        services.add_customer_message(request, "Hello?", None, "m", str(tmp_path))
    with pytest.raises(IllegalTransition):
        services.reply(request, "Hi", agent_name="Ola", actor="agent:ola")


def test_a_request_is_found_by_its_reference_on_its_own_bill_only(invoice, ask):
    request, _ = ask(invoice)
    assert services.find_request(invoice.id, request.reference) is request
    assert services.find_request(make_invoice(invoice.creditor).id, request.reference) is None
    assert services.find_request(invoice.id, "S-" + "X" * 30) is None
    assert services.find_request(invoice.id, "") is None


def test_threads_list_the_bills_conversations_oldest_first(invoice, ask):
    first, _ = ask(invoice)
    second, _ = ask(invoice, submission_key="k2", topic="already_paid")
    assert [r.id for r in services.threads_for(invoice.id)] == [first.id, second.id]
    assert services.threads_for(make_invoice(invoice.creditor).id) == []
