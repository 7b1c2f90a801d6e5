"""Delivery feedback over real HTTP and in a real browser: the local Twilio server posts its signed status
callbacks to the live server's hook; an undelivered SMS sends the reminder by e-mail; the customer opens
the e-mail's link in Chromium and the e-mail counts as opened (no tracking pixel)."""

from __future__ import annotations

import re
from contextlib import contextmanager
from datetime import timedelta

from sqlalchemy import select, update

from app.core.dates import local_today
from app.dunning import worker
from app.dunning.calendar import next_working_day
from app.dunning.models import Message, MessageStatus
from app.extensions import db
from app.models import utcnow
from app.outbox.dispatcher import run_once
from app.outbox.models import OutboxMessage, OutboxStatus
from tests.e2e.test_dunning import creditor_with_plan, customer
from tests.factories import make_invoice
from tests.support.smtp import SmtpServer
from tests.support.twilio_server import TwilioServer

PHONE = "+4791234599"


def messages(app, customer_id: int) -> list[tuple[str, str]]:
    with app.app_context():
        found = [(m.channel, m.status) for m in db.session.scalars(
            select(Message).where(Message.customer_id == customer_id).order_by(Message.id))]
        db.session.remove()
    return found


@contextmanager
def others_held(app):
    """The live server's database is shared by the session's tests: what earlier tests left waiting in the
    outbox (webhooks to partners that do not answer, say) waits a day longer while this test dispatches."""
    with app.app_context():
        waiting = list(db.session.scalars(select(OutboxMessage.id).where(OutboxMessage.status == OutboxStatus.PENDING)))
        db.session.execute(update(OutboxMessage).where(OutboxMessage.id.in_(waiting))
                           .values(next_attempt_at=utcnow() + timedelta(days=1)))
        db.session.commit()
        db.session.remove()
    try:
        yield
    finally:
        with app.app_context():
            db.session.execute(update(OutboxMessage).where(OutboxMessage.id.in_(waiting),
                                                           OutboxMessage.status == OutboxStatus.PENDING)
                               .values(next_attempt_at=utcnow()))
            db.session.commit()
            db.session.remove()


def test_an_undelivered_sms_goes_by_email_whose_link_opened_marks_it_opened(live_server, open_page):
    app = live_server.app
    with others_held(app):
        _an_undelivered_sms_goes_by_email_whose_link_opened_marks_it_opened(app, open_page)


def _an_undelivered_sms_goes_by_email_whose_link_opened_marks_it_opened(app, open_page):
    day = next_working_day(local_today("NO", utcnow()) + timedelta(days=1), "NO")
    due = day - timedelta(days=14)
    with app.test_request_context():
        creditor = creditor_with_plan(app)
        invoice = make_invoice(creditor, issue_date=(due - timedelta(days=14)).isoformat(), due_date=due.isoformat(),
                               customer=customer("C-FB", phone=PHONE, email="kari.fb@example.test"))
        db.session.commit()
        customer_id, slug = invoice.customer_id, creditor.slug
        assert worker.run(on=day, slug=slug).by_channel == {"sms": 1}
        db.session.remove()

    with TwilioServer() as twilio, SmtpServer() as smtp:
        settings = {**twilio.config(), **smtp.config(), "MAIL_FROM": "billing@pay.example.test"}
        saved = {key: app.config.get(key) for key in settings}
        app.config.update(settings)
        try:
            twilio.undelivered.add(PHONE)
            with app.app_context():
                assert run_once().delivered == 1
                db.session.remove()
            # Twilio's callbacks, signed, over HTTP to the live server's public URL.
            assert twilio.send_callbacks() == [204, 204]
            assert messages(app, customer_id) == [("sms", MessageStatus.FAILED), ("email", MessageStatus.QUEUED)]
            with app.app_context():
                assert run_once().delivered == 1
                db.session.remove()
        finally:
            app.config.update(saved)
        (mail,) = [m for m in smtp.messages if m["To"] == "kari.fb@example.test"]
    text = mail.get_body(("plain",)).get_content()
    link = re.search(r"https?://\S+/l/[\w.-]+", text).group(0)
    assert messages(app, customer_id)[1] == ("email", MessageStatus.SENT)

    page, watch = open_page("desktop")
    response = page.goto(link)
    assert response is not None and response.status == 200 and "/b/" in page.url
    assert messages(app, customer_id) == [("sms", MessageStatus.FAILED), ("email", MessageStatus.OPENED)]
    assert not watch.page_errors
