"""Messages a customer triggers on a test bill (issue 17, test mode): the outbox writes them marked as
test; the dispatcher renders and keeps them but never hands them to the SMTP server (a real one, aiosmtpd,
on 127.0.0.1); the back office shows them as "test, not sent". A live bill's, in the same run, go out; the
creditor's own desk gets its copy of a test bill's support request."""

from __future__ import annotations

from sqlalchemy import select

from app.extensions import db
from app.outbox.base import TEST_NOT_SENT
from app.outbox.dispatcher import run_once
from app.outbox.models import OutboxMessage, OutboxStatus
from app.payments.models import Payment
from app.support.services import open_request
from tests.factories import make_creditor, make_invoice
from tests.functional.agents import EN, enrol, make_agent
from tests.functional.test_receipts import pay_in_full


def receipt_of(invoice) -> OutboxMessage:
    payment = db.session.scalar(select(Payment).where(Payment.invoice_id == invoice.id))
    return db.session.scalar(select(OutboxMessage).where(OutboxMessage.idempotency_key.endswith(payment.public_ref)))


def test_a_test_bills_receipt_is_kept_not_sent_and_a_live_bills_goes_out(client, app, session, smtp):
    creditor = make_creditor("NO")
    live, test = make_invoice(creditor), make_invoice(creditor, livemode=False)
    test.customer.email = "tester@example.test"
    db.session.commit()
    pay_in_full(client, app, test)
    pay_in_full(app.test_client(), app, live)
    kept, sent = receipt_of(test), receipt_of(live)
    assert kept.livemode is False and sent.livemode is True
    with app.app_context():
        report = run_once()
    assert report.delivered >= 2
    db.session.refresh(kept)
    db.session.refresh(sent)
    assert [m["To"] for m in smtp.messages] == ["kari@example.test"]  # the live bill's customer alone
    assert all(m["X-Idempotency-Key"] != kept.idempotency_key for m in smtp.messages)
    assert kept.status == OutboxStatus.DELIVERED and kept.provider_status == TEST_NOT_SENT
    assert test.number in kept.sent_text  # what would have gone out, for the back office
    assert sent.provider_status == "sent"

    make_agent(app, creditor, "ola@example.test", "agent")
    agent = app.test_client()
    enrol(agent, "ola@example.test")
    page = agent.get(f"/backoffice/customers/{test.customer_id}", headers=EN).text
    assert "test, not sent" in page
    assert "test, not sent" not in agent.get(f"/backoffice/customers/{live.customer_id}", headers=EN).text


def test_a_test_bills_support_request_the_customer_is_not_written_the_desk_is(app, session, smtp):
    creditor = make_creditor("NO", support_email="desk@creditor.example")
    invoice = make_invoice(creditor, livemode=False)
    db.session.commit()
    with app.test_request_context():
        open_request(invoice, topic="bill_question", message="Is this right?", contact_method="email",
                     contact_email=None, contact_phone=None, callback_date=None, callback_window=None, upload=None,
                     locale="en", submission_key="k" * 32, attachment_dir=str(app.instance_path))
        db.session.commit()
    with app.app_context():
        run_once()
    assert [m["To"] for m in smtp.messages] == ["desk@creditor.example"]
    to_customer = db.session.scalar(select(OutboxMessage).where(OutboxMessage.kind == "support.received"))
    assert to_customer.provider_status == TEST_NOT_SENT and to_customer.recipient == "kari@example.test"


def test_the_back_office_tags_test_bills_and_its_overview_leaves_them_out(client, app, session):
    from app.backoffice.overview import creditor_book, creditor_overview
    from app.core.dates import local_today
    from app.models import utcnow

    creditor = make_creditor("NO")
    live, test = make_invoice(creditor), make_invoice(creditor, livemode=False)
    make_invoice(creditor, livemode=False)  # open and owed: not the creditor's figures either
    db.session.commit()
    pay_in_full(client, app, test)  # a test payment and a link opened: not the creditor's figures
    today = local_today(creditor.country, utcnow())
    with app.test_request_context():
        book = creditor_book(creditor.id, creditor.country, today)
        overview = creditor_overview(creditor.id, creditor.country, today)
    assert book.open_bills == 1 and book.outstanding == {"NOK": live.balance}
    assert overview.totals.payments == 0 and overview.totals.links_opened == 0

    make_agent(app, creditor, "ola@example.test", "agent")
    agent = app.test_client()
    enrol(agent, "ola@example.test")
    tag = '<span class="tag new">test</span>'
    assert tag in agent.get(f"/backoffice/invoices/{test.id}", headers=EN).text
    assert tag not in agent.get(f"/backoffice/invoices/{live.id}", headers=EN).text
    assert tag in agent.get(f"/backoffice/customers/{test.customer_id}", headers=EN).text
    found = agent.get("/backoffice/search", query_string={"q": "Kari"}, headers=EN).text
    assert found.count(tag) == 1  # two customers named Kari Nordmann, one of them test data
