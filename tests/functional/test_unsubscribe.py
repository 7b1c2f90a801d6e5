"""The unsubscribe link of reminder e-mails: a signed address of its own (not the bill's link), a page with
a button (opening it changes nothing), RFC 8058's one-click POST (no cookies, no CSRF token: the signed
token is the proof), honoured at once and idempotent; forged and broken tokens answered with a translated
page. Every reminder e-mail carries the link and the List-Unsubscribe headers, except a notice the law
requires, which says why it was sent; the run then reaches the customer by the next channel, and an
e-mail decided before the unsubscribe does not go."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select

from app.billing.models import InvoiceEvent
from app.dunning import contact, services, worker
from app.dunning.models import Message, Notice
from app.dunning.settings import save_settings
from app.extensions import db
from app.links.services import get_signer
from app.outbox.base import render
from app.outbox.dispatcher import run_once
from app.outbox.models import OutboxMessage, OutboxStatus
from tests.factories import creditor_today, make_creditor, make_invoice
from tests.unit.dunning.conftest import TODAY

EN = {"Accept-Language": "en"}
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
ONE_CLICK = {"List-Unsubscribe": "One-Click"}


def words(html: str) -> str:
    return re.sub(r"[\s\u00a0\u202f]+", " ", re.sub(r"<[^>]+>", " ", html))


def with_plan():
    creditor = make_creditor("NO", default_locale="en")
    save_settings(creditor, languages=["en", "nb", "de"])
    plan = services.save_plan(creditor, services.shipped_plan("NO"), actor="test", today=TODAY)
    return creditor, plan


def owed(creditor, plan=None, *, due, **customer):
    fields = {"external_ref": "C-1", "name": "Kari Nordmann", "email": "kari@example.test", "phone": "+4791234567",
              "address": {"line1": "Storgata 1", "postcode": "0150", "city": "Oslo", "country": "NO"}}
    fields.update(customer)
    invoice = make_invoice(creditor, issue_date=(due - timedelta(days=20)).isoformat(), due_date=due.isoformat(),
                           customer=fields)
    if plan is not None:
        services.assign_plan(invoice, plan, actor="test", today=due - timedelta(days=3))
    return invoice


def path_of(app, invoice) -> str:
    with app.test_request_context():
        return contact.unsubscribe_url(invoice.customer_id, invoice.id).removeprefix(app.config["PORTAL_BASE_URL"])


def test_the_page_asks_first_and_its_button_unsubscribes(client, app, session):
    creditor = make_creditor("NO", default_locale="en")
    invoice = make_invoice(creditor)
    customer = invoice.customer
    db.session.commit()
    path = path_of(app, invoice)
    assert len(path.rsplit("/", 1)[1]) < 120
    page = client.get(path, headers=EN)
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    text = words(page.text)
    assert "Do you want to stop reminders by e-mail to ka***@example.test?" in text and creditor.name in text
    assert "kari@example.test" not in page.text
    db.session.expire_all()
    assert customer.email_unsubscribed_at is None and customer.email_allowed  # opening it changes nothing

    assert client.post(path, data={}, headers=EN).status_code == 400  # the button's form needs its CSRF token
    done = client.post(path, data={"csrf_token": TOKEN.search(page.text).group(1)}, headers=EN)
    assert done.status_code == 303
    db.session.expire_all()
    assert customer.email_unsubscribed_at is not None and not customer.email_allowed
    after = words(client.get(path, headers=EN).text)
    assert "You will get no more reminders by e-mail at ka***@example.test" in after
    assert "Notices the law requires in writing come by letter" in after
    (event,) = db.session.scalars(select(InvoiceEvent).where(InvoiceEvent.invoice_id == invoice.id,
                                                             InvoiceEvent.kind == "email_unsubscribed"))
    assert event.data == {"how": "page"}
    assert "Påminnelser på e-post fra" in words(client.get(path + "?lang=nb").text)


def test_one_click_needs_no_cookie_nor_csrf_token_and_is_idempotent(app, session):
    creditor = make_creditor("NO", default_locale="en")
    invoice = make_invoice(creditor)
    customer = invoice.customer
    customer.preferred_channel = "email"
    db.session.commit()
    path = path_of(app, invoice)
    mail_client = app.test_client()  # a mail provider's server: no cookies, no Origin
    assert mail_client.post(f"{path}/one-click", data={}).status_code == 400  # not RFC 8058's body
    db.session.expire_all()
    assert customer.email_unsubscribed_at is None
    answer = mail_client.post(f"{path}/one-click", data=ONE_CLICK, headers=EN)
    assert answer.status_code == 200 and "You will get no more reminders by e-mail" in words(answer.text)
    db.session.expire_all()
    first = customer.email_unsubscribed_at
    assert first is not None and not customer.email_allowed and customer.preferred_channel is None
    again = mail_client.post(f"{path}/one-click", data=ONE_CLICK)
    assert again.status_code == 200
    db.session.expire_all()
    assert customer.email_unsubscribed_at == first
    assert len(list(db.session.scalars(select(InvoiceEvent).where(InvoiceEvent.invoice_id == invoice.id,
                                                                  InvoiceEvent.kind == "email_unsubscribed")))) == 1
    opened = mail_client.get(f"{path}/one-click")  # a client that opens the address: the page
    assert opened.status_code == 303 and opened.headers["Location"].endswith(path)


def test_forged_broken_and_bill_link_tokens_get_a_translated_page_and_change_nothing(client, app, session):
    creditor = make_creditor("NO", default_locale="en")
    invoice = make_invoice(creditor)
    db.session.commit()
    path = path_of(app, invoice)
    token = path.rsplit("/", 1)[1]
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    with app.test_request_context():
        bill_link = get_signer().sign("somekey", "bill")
    for bad in (forged, "x", "a" * 300, bill_link, token.split(".")[0]):
        page = client.get(f"/unsubscribe/{bad}", headers=EN)
        assert page.status_code == 404 and "This unsubscribe link cannot be used" in words(page.text)
        assert app.test_client().post(f"/unsubscribe/{bad}/one-click", data=ONE_CLICK).status_code == 404
    norsk = client.get(f"/unsubscribe/{forged}?lang=nb")
    assert norsk.status_code == 404 and "Denne avmeldingslenken kan ikke brukes" in words(norsk.text)
    db.session.expire_all()
    assert invoice.customer.email_unsubscribed_at is None


def test_a_reminder_email_carries_the_link_and_the_one_click_headers(app, session, smtp):
    creditor, plan = with_plan()
    invoice = owed(creditor, plan, due=TODAY - timedelta(days=14), preferred_channel="email")
    services.reschedule(invoice, TODAY)
    db.session.commit()
    worker.run(on=TODAY, slug=creditor.slug)
    db.session.expire_all()
    (message,) = db.session.scalars(select(Message).where(Message.customer_id == invoice.customer_id))
    assert message.channel == "email"
    with app.app_context():
        report = run_once()
    assert report.delivered == 1, report
    (sent,) = smtp.messages
    one_click = sent["List-Unsubscribe"].strip("<>")
    assert sent["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert one_click.startswith("https://pay.example.test/unsubscribe/") and one_click.endswith("/one-click")
    page_url = one_click.removesuffix("/one-click")
    text = sent.get_body(("plain",)).get_content()
    html = sent.get_body(("html",)).get_content()
    assert page_url in text and page_url in html and "/l/" not in one_click
    # The header's address works, as a mail client would post to it.
    answer = app.test_client().post(one_click.removeprefix("https://pay.example.test"), data=ONE_CLICK)
    assert answer.status_code == 200
    db.session.expire_all()
    assert invoice.customer.email_unsubscribed_at is not None


def test_a_legally_required_email_has_no_unsubscribe_link_and_says_why(app, session):
    creditor, plan = with_plan()
    today = creditor_today("NO")
    due = today - timedelta(days=40)
    invoice = owed(creditor, plan, due=due, preferred_channel="email", phone=None)
    invoice.customer.electronic_notices_allowed = True
    db.session.commit()
    day = due - timedelta(days=3)
    while day <= today:  # every day, as cron would: quiet Sundays and holidays wait for the next day
        worker.run(on=day, slug=creditor.slug)
        day += timedelta(days=1)
    db.session.expire_all()
    warning = db.session.scalars(select(Notice).where(Notice.invoice_id == invoice.id,
                                                      Notice.kind == "collection_warning")).one()
    reminder = db.session.scalars(select(Notice).where(Notice.invoice_id == invoice.id,
                                                       Notice.kind == "reminder")).one()
    assert (warning.channel, reminder.channel) == ("email", "email")
    with app.test_request_context():
        legal = render(db.session.get(OutboxMessage, db.session.get(Message, warning.message_id).outbox_message_id))
        usual = render(db.session.get(OutboxMessage, db.session.get(Message, reminder.message_id).outbox_message_id))
    assert "/unsubscribe/" not in legal.text + legal.html and legal.headers == ()
    assert "the law requires" in legal.text and "has no unsubscribe link" in legal.text
    assert "/unsubscribe/" in usual.text
    assert dict(usual.headers)["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_the_run_reaches_an_unsubscribed_customer_by_the_next_channel(app, session):
    creditor, plan = with_plan()
    kept = owed(creditor, plan, due=TODAY - timedelta(days=14), preferred_channel="email")
    gone = owed(creditor, plan, due=TODAY - timedelta(days=14), preferred_channel="email", external_ref="C-2",
                phone=None)
    for invoice in (kept, gone):
        services.reschedule(invoice, TODAY)
    db.session.commit()
    mail = app.test_client()
    for invoice in (kept, gone):
        assert mail.post(f"{path_of(app, invoice)}/one-click", data=ONE_CLICK).status_code == 200
    worker.run(on=TODAY, slug=creditor.slug)
    db.session.expire_all()
    channels = {n.invoice_id: n.channel for n in db.session.scalars(select(Notice).where(
        Notice.invoice_id.in_([kept.id, gone.id])))}
    assert channels == {kept.id: "sms", gone.id: "letter"}  # never e-mail


def test_an_email_decided_before_the_unsubscribe_does_not_go_and_falls_back(app, session, smtp):
    creditor, plan = with_plan()
    invoice = owed(creditor, plan, due=TODAY - timedelta(days=14), preferred_channel="email")
    services.reschedule(invoice, TODAY)
    db.session.commit()
    worker.run(on=TODAY, slug=creditor.slug)
    db.session.expire_all()
    (message,) = db.session.scalars(select(Message).where(Message.customer_id == invoice.customer_id))
    assert message.channel == "email"
    assert app.test_client().post(f"{path_of(app, invoice)}/one-click", data=ONE_CLICK).status_code == 200
    with app.app_context():
        run_once()
    assert smtp.messages == []
    db.session.expire_all()
    outbox = db.session.get(OutboxMessage, message.outbox_message_id)
    assert outbox.status == OutboxStatus.DEAD and "unsubscribed" in outbox.last_error
    assert (db.session.get(Message, message.id).status, db.session.get(Message, message.id).failure) == \
        ("failed", "unsubscribed")
    (again,) = db.session.scalars(select(Message).where(Message.replaces_id == message.id))
    # fall_back's rule: the step's channels after this one ([sms, email, letter]: a letter).
    assert again.channel == "letter"
