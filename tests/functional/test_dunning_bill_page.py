"""The bill page and the reminder dialogue: what happens next and when, in the customer's language;
the deadline and the hand-off after a collection warning; why reminders wait; Germany's consumer
default notice (page and PDF); the customer's other bills owed to the creditor, listed and opened by
one link (and closed again when either bill's links are revoked); the cached page's statements."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from babel.dates import format_date
from pypdf import PdfReader
from sqlalchemy import select

from app.billing.services import hold, record_payment
from app.dunning import services, worker
from app.dunning.models import Notice
from app.dunning.settings import save_settings
from app.extensions import db
from app.links.services import revoke_links
from app.money import format_money
from app.support.services import open_request
from tests.factories import creditor_today, make_creditor, make_invoice
from tests.functional.helpers import issue, open_bill

EN = {"Accept-Language": "en"}


def words(html: str) -> str:
    """The page's text, tags out and Babel's no-break spaces plain."""
    text = re.sub(r"<[^>]+>", " ", html)
    return re.sub(r"[\s\u00a0\u202f]+", " ", text)


def day(value: date, locale: str = "en") -> str:
    return words(format_date(value, format="long", locale={"en": "en_GB", "nb": "nb_NO", "de": "de_DE"}[locale]))


def nok(amount: int, locale: str = "en") -> str:
    return words(format_money(amount, "NOK", {"en": "en_GB", "nb": "nb_NO", "de": "de_DE"}[locale]))  # CLDR spacing


def with_plan(kind: str = "NO", jurisdiction: str = "NO", **creditor):
    found = make_creditor(kind, **creditor)
    save_settings(found, languages=["en", "nb", "de"])
    plan = services.save_plan(found, services.shipped_plan(jurisdiction), actor="test", today=creditor_today(kind))
    return found, plan


def owed(creditor, plan=None, *, due: date, ref: str = "C-1", **customer):
    fields = {"external_ref": ref, "name": f"Kari {ref}", "email": f"{ref.lower()}@example.test",
              "phone": "+4791234567",
              "address": {"line1": "Storgata 1", "postcode": "0150", "city": "Oslo", "country": "NO"}}
    fields.update(customer)
    invoice = make_invoice(creditor, issue_date=(due - timedelta(days=20)).isoformat(), due_date=due.isoformat(),
                           customer=fields)
    if plan is not None:
        services.assign_plan(invoice, plan, actor="test", today=min(due - timedelta(days=3),
                                                                    creditor_today(creditor.country)))
    return invoice


def test_the_next_step_its_day_and_its_fee_in_the_customers_language(client, app, session):
    creditor, plan = with_plan()
    today = creditor_today("NO")
    invoice = owed(creditor, plan, due=today + timedelta(days=3))
    db.session.commit()
    url = open_bill(client, app, invoice)
    pay_by = today + timedelta(days=3 + 14 - 1)  # the reminder goes 14 days after the due date, with NOK 35
    page = words(client.get(url + "?lang=en").text)
    assert "What happens next" in page
    assert f"If this is not paid by {day(pay_by)}, a reminder with a fee of {nok(3500)} follows." in page
    norsk = words(client.get(url + "?lang=nb").text)
    assert day(pay_by, "nb") in norsk and nok(3500, "nb") in norsk and "purring" in norsk
    deutsch = words(client.get(url + "?lang=de").text)
    assert day(pay_by, "de") in deutsch and nok(3500, "de") in deutsch and "Mahnung" in deutsch


def test_after_the_collection_warning_its_deadline_and_the_hand_off(client, app, session):
    """A customer reached by letter only (no quiet hours or rest days): the nudge, the reminder and the
    warning go on their days; the page then gives the warning's deadline and the hand-off's first day."""
    creditor, plan = with_plan()
    today = creditor_today("NO")
    due = today - timedelta(days=40)
    invoice = owed(creditor, plan, due=due, email=None, phone=None)
    db.session.commit()
    for on in (due - timedelta(days=3), due + timedelta(days=14), due + timedelta(days=29)):
        worker.run(on=on, slug=creditor.slug)
    db.session.expire_all()
    warning = db.session.scalars(select(Notice).where(Notice.invoice_id == invoice.id, Notice.position == 3)).one()
    assert (warning.kind, warning.channel, warning.deadline) == ("collection_warning", "letter",
                                                                 due + timedelta(days=43))
    url = open_bill(client, app, invoice)
    page = words(client.get(url, headers=EN).text)
    assert f"Please pay by {day(warning.deadline)}" in page
    assert f"may hand the bill to debt collection from {day(warning.deadline + timedelta(days=1))}" in page
    assert "If this is not paid by" not in page  # no step after the warning


@pytest.mark.parametrize("pause", ["hold", "question"])
def test_a_paused_bill_says_why_it_waits_and_a_paid_one_says_nothing(client, app, session, pause):
    creditor, plan = with_plan()
    today = creditor_today("NO")
    invoice = owed(creditor, plan, due=today + timedelta(days=3))
    if pause == "hold":
        hold(invoice, until=today + timedelta(days=9), actor="test", reason="asked on the phone")
        expected = f"Reminders are paused until {day(today + timedelta(days=9))}."
    else:
        open_request(invoice, topic="bill_question", message="Why so much?", contact_method="email",
                     contact_email=None, contact_phone=None, callback_date=None, callback_window=None, upload=None,
                     locale="en", submission_key="k-question", attachment_dir=app.config["ATTACHMENT_DIR"],
                     today=today)
        expected = "No reminders are sent while your question waits for our answer."
    db.session.commit()
    url = open_bill(client, app, invoice)
    page = words(client.get(url, headers=EN).text)
    assert expected in page and "If this is not paid by" not in page

    unplanned = make_invoice(creditor, customer={"external_ref": "C-2", "name": "Ola"})
    paid = owed(creditor, plan, due=today + timedelta(days=3), ref="C-3")
    record_payment(paid, paid.balance, actor="test", paid_on=today, method="bank_transfer")
    db.session.commit()
    for bill in (unplanned, paid):
        assert "What happens next" not in client.get(open_bill(client, app, bill), headers=EN).text


def test_a_step_sent_changes_the_cached_page(client, app, session):
    creditor, plan = with_plan()
    today = creditor_today("NO")
    invoice = owed(creditor, plan, due=today - timedelta(days=20), email=None, phone=None)
    db.session.commit()
    url = open_bill(client, app, invoice)
    before = words(client.get(url, headers=EN).text)
    assert "a reminder with a fee of" in before
    worker.run(on=today, slug=creditor.slug)  # the nudge's day has passed: the reminder is due now
    worker.run(on=today, slug=creditor.slug)  # the reminder goes: the page shows its deadline at once
    after = words(client.get(url, headers=EN).text)
    assert f"Please pay by {day(today + timedelta(days=14))}" in after
    assert "Purregebyr" in after or "Reminder fee" in after


def test_germanys_consumer_default_notice_on_the_page_and_in_the_pdf(client, app, session):
    creditor = make_creditor("DE", default_locale="en")
    invoice = make_invoice(creditor, customer={"external_ref": "K-1", "name": "Anna Schmidt",
                                               "address": {"line1": "Karl-Heine-Straße 27", "postcode": "04229",
                                                           "city": "Leipzig", "country": "DE"}})
    business = make_invoice(creditor, customer={"external_ref": "K-2", "name": "Bäckerei Krause GmbH",
                                                "kind": "business"})
    db.session.commit()
    url = open_bill(client, app, invoice)
    assert "§ 286(3) BGB" not in client.get(url, headers=EN).text  # not until the creditor says so
    save_settings(creditor, consumer_default_notice=True)
    db.session.commit()
    page = words(client.get(url, headers=EN).text)  # the cached page is rendered again
    first_day = invoice.due_date + timedelta(days=31)
    assert "you are in default without a further reminder (§ 286(3) BGB)" in page and day(first_day) in page
    pdf = client.get(url + "/invoice.pdf", headers=EN)
    text = words(" ".join(p.extract_text() for p in PdfReader(__import__("io").BytesIO(pdf.data)).pages))
    assert "286(3) BGB" in text
    assert "§ 286(3) BGB" not in client.get(open_bill(client, app, business), headers=EN).text


def test_one_link_opens_the_customers_other_bills_and_the_page_lists_them(client, app, session):
    creditor, plan = with_plan()
    today = creditor_today("NO")
    first = owed(creditor, plan, due=today + timedelta(days=3))
    second = owed(creditor, plan, due=today + timedelta(days=10))
    third = owed(creditor, plan, due=today + timedelta(days=20))
    someone_else = owed(creditor, plan, due=today + timedelta(days=4), ref="C-9")
    paid = owed(creditor, plan, due=today + timedelta(days=5))
    record_payment(paid, paid.balance, actor="test", paid_on=today, method="bank_transfer")
    db.session.commit()

    url = open_bill(client, app, first)
    page = words(client.get(url, headers=EN).text)
    assert f"Your other open bills from {creditor.name}" in page
    for other in (second, third):
        assert f"Invoice {other.number}: {nok(other.balance)}, due {day(other.due_date)}" in page
        assert client.get(f"/b/{other.public_id}", headers=EN).status_code == 200  # no other link needed
    assert someone_else.number not in page and paid.number not in page
    assert client.get(f"/b/{someone_else.public_id}").status_code == 404

    # A payment of another bill shows on this page at the next request (the cached page is rendered again).
    record_payment(third, third.balance, actor="test", paid_on=today, method="bank_transfer")
    db.session.commit()
    assert third.number not in words(client.get(url, headers=EN).text)

    # Revoking the links of the bill whose link opened them ends the others' grants too; revoking a link
    # of another bill ends that bill's.
    with app.test_request_context():
        revoke_links(second, actor="api")
    db.session.commit()
    assert client.get(f"/b/{second.public_id}").status_code == 404
    assert client.get(url).status_code == 200
    with app.test_request_context():
        revoke_links(first, actor="api")
    db.session.commit()
    assert client.get(url).status_code == 404
    assert client.get(f"/b/{third.public_id}").status_code == 404


def test_the_step_up_passed_for_one_bill_opens_the_others(client, app, session):
    creditor, plan = with_plan(step_up_mode="postcode")
    today = creditor_today("NO")
    first = owed(creditor, plan, due=today + timedelta(days=3))
    second = owed(creditor, plan, due=today + timedelta(days=10))
    db.session.commit()
    issued = issue(app, first)
    assert client.get(f"/l/{issued.token}").status_code == 303
    other = f"/b/{second.public_id}"
    assert client.get(other).status_code == 303  # the step-up first
    form = client.get(f"{other}/verify")
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', form.text).group(1)
    assert client.post(f"{other}/verify", data={"csrf_token": token, "answer": "0150"}).status_code == 303
    assert client.get(other).status_code == 200 and client.get(f"/b/{first.public_id}").status_code == 200


def test_a_cached_bill_page_costs_one_statement_with_or_without_other_bills(client, app, session):
    """The hot path: a cached bill page reads its access and version in one statement, the customer's
    other bills and the dunning columns included (SQLite: counted at the driver)."""
    if db.session.connection().dialect.name != "sqlite":
        pytest.skip("counted with sqlite3's trace callback")
    creditor, plan = with_plan()
    today = creditor_today("NO")
    alone = owed(creditor, plan, due=today + timedelta(days=3), ref="C-5")
    first = owed(creditor, plan, due=today + timedelta(days=3))
    owed(creditor, plan, due=today + timedelta(days=10))
    db.session.commit()

    def selects(url: str) -> list[str]:
        statements: list[str] = []
        raw = db.session.connection().connection.dbapi_connection
        raw.set_trace_callback(statements.append)
        try:
            assert client.get(url).status_code == 200
        finally:
            raw.set_trace_callback(None)
        return [s for s in statements if s.lstrip().upper().startswith("SELECT")]

    for invoice in (alone, first):
        url = open_bill(client, app, invoice)
        assert len(selects(url)) > 3  # rendered: the bill, its plan, the other bills...
        cached = selects(url)
        assert len(cached) == 1, cached


def test_the_link_of_a_consolidated_reminder_opens_every_bill_it_names(client, app, session):
    """Two bills of one customer due the same day: one SMS, whose link opens the oldest bill; its page
    lists the other, which opens without another link."""
    from app.dunning.models import Message
    from app.outbox.base import render
    from app.outbox.models import OutboxMessage
    from tests.unit.dunning.conftest import TODAY

    creditor, plan = with_plan()
    older = owed(creditor, plan, due=TODAY - timedelta(days=14))
    newer = owed(creditor, plan, due=TODAY - timedelta(days=14))
    for invoice in (older, newer):
        services.reschedule(invoice, TODAY)
    db.session.commit()
    worker.run(on=TODAY, slug=creditor.slug)
    db.session.expire_all()
    (message,) = db.session.scalars(select(Message).where(Message.customer_id == older.customer_id))
    with app.test_request_context():
        text = render(db.session.get(OutboxMessage, message.outbox_message_id))
        db.session.commit()
    assert "(og 1 regning til)" in text  # the customer's language: the creditor's, Norwegian
    path = re.search(r"/l/\S+", text).group(0)
    opened = client.get(path)
    assert opened.status_code == 303 and opened.headers["Location"].endswith(f"/b/{older.public_id}")
    page = words(client.get(f"/b/{older.public_id}", headers=EN).text)
    assert f"Invoice {newer.number}: {nok(newer.balance)}" in page
    assert newer.number in words(client.get(f"/b/{newer.public_id}", headers=EN).text)
