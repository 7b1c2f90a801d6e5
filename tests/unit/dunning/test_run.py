"""The run: a bill walks through its plan; the pause rule, an open question and exclusions stop or hold
it; the cap and consolidation across a customer's bills; channels by consent and contact points;
quiet hours, Sundays and holidays; fees, reminders and events as today's hand-off and case file read
them; the messages rendered at delivery; the fall-back to the next channel; German interest and fees."""

from __future__ import annotations

import secrets
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app.billing.models import Invoice, InvoiceEvent, InvoiceLine, Reminder
from app.billing.services import Charge, add_charge, add_charges, cancel_invoice, hold, record_payment
from app.dunning import services
from app.dunning.engine import KIND
from app.dunning.interest import default_begins, default_interest
from app.dunning.models import Letter, Message, MessageStatus, Notice, NoticeStatus
from app.errors import IllegalTransition
from app.extensions import db
from app.links.models import AccessLink
from app.outbox.base import DeliveryError, render
from app.outbox.models import OutboxMessage
from app.resolutions.models import Resolution
from app.support.models import RequestStatus, SupportMessage, SupportRequest
from tests.factories import make_invoice
from tests.unit.dunning.conftest import TODAY, bill, customer, run


def notices(invoice) -> list[tuple]:
    return [(n.position, n.kind, n.channel, n.fee, n.status) for n in db.session.scalars(
        select(Notice).where(Notice.invoice_id == invoice.id).order_by(Notice.position))]


def count(model, *where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def outbox_of(customer_id: int) -> list[OutboxMessage]:
    ids = select(Message.outbox_message_id).where(Message.customer_id == customer_id)
    return list(db.session.scalars(select(OutboxMessage).where(OutboxMessage.id.in_(ids)).order_by(OutboxMessage.id)))


def test_a_bill_walks_from_the_nudge_to_the_reminder_to_the_warning_and_no_further(norway):
    creditor, plan = norway
    invoice = bill(creditor, plan, due=TODAY + timedelta(days=3))
    total = invoice.total

    report = run(creditor, TODAY)
    assert (report.messages, report.notices, report.fees) == (1, 1, 0)
    assert notices(invoice) == [(1, "pre_due", "sms", 0, NoticeStatus.SENT)]
    (sms,) = outbox_of(invoice.customer_id)
    assert (sms.channel, sms.kind, sms.recipient, sms.locale) == ("sms", KIND, "+4791234567", "nb")
    assert [(r.channel, r.final) for r in db.session.scalars(select(Reminder).where(
        Reminder.invoice_id == invoice.id))] == [("sms", False)]
    assert (invoice.dunning_next_position, invoice.dunning_next_on) == (2, TODAY + timedelta(days=17))

    again = run(creditor, TODAY)  # the same day again: nothing to decide, nothing written
    assert (again.messages, again.bills) == (0, 0) and count(Notice) == 1 and count(OutboxMessage) == 1

    christmas = TODAY + timedelta(days=17)  # 25 December: a public holiday, then the 26th, then a Sunday
    held = run(creditor, christmas)
    assert held.waiting == {"rest_day": 1} and invoice.dunning_next_on == date(2026, 12, 28)

    report = run(creditor, date(2026, 12, 28))
    assert (report.messages, report.fees) == (1, 1)
    assert notices(invoice)[-1] == (2, "reminder", "sms", 3500, NoticeStatus.SENT)
    fee = db.session.scalars(select(InvoiceLine).where(InvoiceLine.invoice_id == invoice.id,
                                                       InvoiceLine.kind == "reminder_fee")).one()
    assert (fee.gross, fee.description, invoice.total) == (3500, "Purregebyr", total + 3500)
    assert invoice.dunning_next_on == date(2027, 1, 12)  # the day after the reminder's 14 days

    report = run(creditor, date(2027, 1, 12))
    assert report.by_channel == {"letter": 1}  # no consent to electronic notices: the inkassovarsel by letter
    notice = db.session.scalars(select(Notice).where(Notice.invoice_id == invoice.id, Notice.position == 3)).one()
    assert (notice.kind, notice.channel, notice.fee, notice.deadline) == (
        "collection_warning", "letter", 3500, date(2027, 1, 26))
    letter = db.session.scalars(select(Letter).where(Letter.customer_id == invoice.customer_id)).one()
    assert (letter.status, letter.address["postcode"], letter.address["city"]) == ("pending", "0150", "Oslo")
    assert db.session.scalars(select(Reminder.final).where(Reminder.invoice_id == invoice.id)
                              .order_by(Reminder.id)).all() == [False, False, True]
    assert services.hand_off_not_before(invoice.id) == date(2027, 1, 27)
    assert invoice.dunning_next_on is None and invoice.dunning_next_position is None
    assert run(creditor, date(2027, 3, 1)).bills == 0
    events = db.session.scalars(select(InvoiceEvent.kind).where(InvoiceEvent.invoice_id == invoice.id)).all()
    assert events.count("reminder_sent") == 3 and events.count("charge_added") == 2


def resolution(invoice, kind: str, status: str, new_date: date | None = None) -> Resolution:
    found = Resolution(reference="R-" + secrets.token_hex(4).upper(), creditor_id=invoice.creditor_id,
                       invoice_id=invoice.id, kind=kind, status=status, new_date=new_date, locale="nb",
                       submission_key=secrets.token_hex(8))
    db.session.add(found)
    db.session.flush()
    return found


def question(invoice) -> None:
    request = SupportRequest(reference="S-" + secrets.token_hex(4).upper(), creditor_id=invoice.creditor_id,
                             invoice=invoice, topic="bill_question", status=RequestStatus.OPEN, contact_method="email",
                             contact_email="kari@example.test", locale="nb", submission_key=secrets.token_hex(8))
    request.messages.append(SupportMessage(author="customer", body="Why is it so much higher than last year?"))
    db.session.add(request)
    db.session.flush()


def pay(invoice):
    record_payment(invoice, invoice.balance, actor="test", paid_on=TODAY, method="test")


def dispute(invoice):
    from app.billing.services import transition

    resolution(invoice, "dispute", "open")
    transition(invoice, "disputed", actor="test")


STOPS = {  # what stops or holds a bill: (reason, the day it is looked at again; None: never)
    "paid": (pay, "paid", None),
    "cancelled": (lambda i: cancel_invoice(i, actor="test"), "closed", None),
    "disputed": (dispute, "dispute", TODAY + timedelta(days=1)),
    "promised": (lambda i: resolution(i, "promise", "active", TODAY + timedelta(days=5)), "promise",
                 TODAY + timedelta(days=9)),  # the promised day, the 3 grace days, then the day after
    "deferred": (lambda i: resolution(i, "deferral", "active", TODAY + timedelta(days=10)), "deferral",
                 TODAY + timedelta(days=11)),
    "in a plan": (lambda i: resolution(i, "plan", "active"), "plan", TODAY + timedelta(days=1)),
    "held": (lambda i: hold(i, until=TODAY + timedelta(days=4), actor="test", reason="test"), "on_hold",
             TODAY + timedelta(days=5)),
    "open question": (question, "open_question", TODAY + timedelta(days=1)),
    "excluded": (lambda i: services.exclude_invoice(i, True, actor="test", today=TODAY), None, None),
}


@pytest.mark.parametrize("case", sorted(STOPS))
def test_the_run_stops_or_holds_a_bill_at_once(norway, case):
    creditor, plan = norway
    invoice = bill(creditor, plan, due=TODAY - timedelta(days=14))
    other = bill(creditor, plan, due=TODAY - timedelta(days=14), ref="C-2")
    action, reason, again = STOPS[case]
    action(invoice)
    if case == "excluded":  # taken out at once: the run does not even look at it
        assert invoice.dunning_next_on is None
        invoice.dunning_next_on, invoice.dunning_next_position = TODAY, 2  # as if an old run had left it due
    report = run(creditor, TODAY)
    assert notices(invoice) == [] and len(notices(other)) == 1
    if reason in (None, "paid", "closed"):
        assert invoice.dunning_next_on is None and sum(report.stopped.values()) == 1
    else:
        assert report.waiting == {reason: 1} and invoice.dunning_next_on == again


def test_one_consolidated_message_when_several_bills_of_a_customer_are_due(norway):
    creditor, plan = norway
    soon = bill(creditor, plan, due=TODAY + timedelta(days=3))
    late = bill(creditor, plan, due=TODAY - timedelta(days=14))
    elsewhere = bill(creditor, plan, due=TODAY - timedelta(days=14), ref="C-2")
    report = run(creditor, TODAY)
    assert (report.messages, report.notices) == (2, 3)
    mine = db.session.scalars(select(Notice).where(Notice.customer_id == soon.customer_id)).all()
    assert len(mine) == 2 and len({n.message_id for n in mine}) == 1
    (sms,) = outbox_of(soon.customer_id)
    text = render(sms)
    assert "(og 1 regning til)" in text  # in the customer's language
    assert f"Faktura {late.number} er ikke betalt" in text  # the most advanced step speaks
    link = db.session.scalars(select(AccessLink).order_by(AccessLink.id.desc())).first()
    assert (link.invoice_id, link.channel) == (late.id, "sms")  # the oldest bill's page, a fresh link
    message = db.session.get(Message, mine[0].message_id)
    assert message.status == MessageStatus.SENT and "[link]" in message.body and "/l/" not in message.body
    assert len(notices(elsewhere)) == 1


def test_the_cap_holds_a_customers_next_message_for_three_days(norway):
    creditor, plan = norway
    first = bill(creditor, plan, due=TODAY + timedelta(days=3))
    second = bill(creditor, plan, due=TODAY - timedelta(days=13), on=TODAY + timedelta(days=1))
    assert run(creditor, TODAY).messages == 1
    held = run(creditor, TODAY + timedelta(days=1))
    assert held.waiting == {"cap": 1} and second.dunning_next_on == TODAY + timedelta(days=3)
    assert run(creditor, TODAY + timedelta(days=3)).messages == 1
    assert len(notices(second)) == 1 and len(notices(first)) == 1


def consent(invoice, **changes):
    services.update_contact_points(invoice.customer, changes)


@pytest.mark.parametrize(("changes", "channel"), [
    ({}, "sms"),
    ({"preferred_channel": "email"}, "email"),
    ({"preferred_channel": "letter"}, "letter"),
    ({"sms_allowed": False}, "email"),
    ({"email": None, "sms_allowed": False}, "letter"),
    ({"email": None, "phone": None}, "letter"),
    ({"email": None, "phone": None, "address": None}, None),
])
def test_the_channel_follows_the_step_the_preference_the_consents_and_the_contact_points(norway, changes, channel):
    creditor, plan = norway
    invoice = bill(creditor, plan, due=TODAY - timedelta(days=14))
    consent(invoice, **changes)
    report = run(creditor, TODAY)
    if channel is None:
        assert report.waiting == {"no_contact": 1} and invoice.dunning_next_on == TODAY + timedelta(days=1)
    else:
        assert report.by_channel == {channel: 1}


def test_a_stop_reply_or_an_unsubscribe_takes_the_channel_away(norway):
    creditor, plan = norway
    stopped = bill(creditor, plan, due=TODAY - timedelta(days=14))
    stopped.customer.sms_stopped_at = datetime(2026, 12, 1, tzinfo=UTC)
    unsubscribed = bill(creditor, plan, due=TODAY - timedelta(days=14), ref="C-2", preferred_locale="en")
    unsubscribed.customer.sms_allowed, unsubscribed.customer.email_unsubscribed_at = False, datetime.now(UTC)
    run(creditor, TODAY)
    assert notices(stopped)[0][2] == "email" and notices(unsubscribed)[0][2] == "letter"


@pytest.mark.parametrize(("agreed", "channel"), [(False, "letter"), (True, "email")])
def test_the_inkassovarsel_goes_by_letter_unless_the_customer_agreed_to_electronic_notices(norway, agreed, channel):
    creditor, plan = norway
    invoice = bill(creditor, plan, due=TODAY - timedelta(days=40))
    consent(invoice, electronic_notices_allowed=agreed, preferred_channel="sms")
    invoice.dunning_next_position, invoice.dunning_next_on = 3, TODAY
    assert run(creditor, TODAY).by_channel == {channel: 1}
    assert notices(invoice) == [(3, "collection_warning", channel, 3500, NoticeStatus.SENT)]


def test_quiet_hours_hold_sms_and_email_but_not_letters(norway):
    creditor, plan = norway
    texted = bill(creditor, plan, due=TODAY - timedelta(days=14))
    posted = bill(creditor, plan, due=TODAY - timedelta(days=14), ref="C-2", email=None, phone=None)
    report = run(creditor, TODAY, at=time(22, 0))
    assert report.waiting == {"quiet_hours": 1} and report.by_channel == {"letter": 1}
    assert texted.dunning_next_on == TODAY and len(notices(posted)) == 1  # looked at again at the next run
    assert run(creditor, TODAY, at=time(7, 59)).waiting == {"quiet_hours": 1}
    assert run(creditor, TODAY, at=time(8, 0)).by_channel == {"sms": 1}


def test_the_customers_own_time_zone_decides_its_quiet_hours(norway):
    creditor, plan = norway
    invoice = bill(creditor, plan, due=TODAY - timedelta(days=14))
    consent(invoice, time_zone="America/New_York")
    assert run(creditor, TODAY, at=time(10, 0)).waiting == {"quiet_hours": 1}  # 04:00 in New York
    assert run(creditor, TODAY, at=time(15, 0)).by_channel == {"sms": 1}  # 09:00 there


def test_sundays_hold_electronic_messages_until_the_next_working_day(norway):
    creditor, plan = norway
    invoice = bill(creditor, plan, due=date(2026, 11, 29), on=date(2026, 12, 13))
    assert run(creditor, date(2026, 12, 13)).waiting == {"rest_day": 1}
    assert invoice.dunning_next_on == date(2026, 12, 14)


def test_a_step_written_before_is_never_sent_again(norway):
    creditor, plan = norway
    invoice = bill(creditor, plan, due=TODAY - timedelta(days=14))
    run(creditor, TODAY)
    invoice.dunning_next_position, invoice.dunning_next_on = 2, TODAY  # as if the run had died after writing
    report = run(creditor, TODAY + timedelta(days=5))
    assert report.messages == 0 and report.waiting == {"sent_before": 1}
    assert count(Notice, Notice.invoice_id == invoice.id) == 1 and invoice.dunning_next_position == 3


def test_open_bills_are_enrolled_in_the_default_plan(norway):
    creditor, _plan = norway
    soon = make_invoice(creditor, issue_date=(TODAY - timedelta(days=10)).isoformat(),
                        due_date=(TODAY + timedelta(days=3)).isoformat())
    late = make_invoice(creditor, issue_date=(TODAY - timedelta(days=40)).isoformat(),
                        due_date=(TODAY - timedelta(days=30)).isoformat(), customer=customer("C-2"))
    report = run(creditor, TODAY)
    assert report.enrolled == 2 and report.messages == 2
    assert notices(soon)[0][1] == "pre_due" and notices(late)[0][1] == "reminder"  # no late nudge


def test_excluding_a_customer_stops_every_bill_and_including_puts_them_back(norway):
    creditor, plan = norway
    invoice = bill(creditor, plan, due=TODAY - timedelta(days=14))
    assert services.exclude_customer(invoice.customer, True, actor="test", today=TODAY) == 1
    assert invoice.dunning_next_on is None and run(creditor, TODAY).bills == 0
    services.exclude_customer(invoice.customer, False, actor="test", today=TODAY)
    assert (invoice.dunning_next_position, invoice.dunning_next_on) == (2, TODAY)


def test_an_email_is_rendered_in_the_customers_language_with_a_fresh_link(norway, smtp):
    from app.outbox.dispatcher import dispatch

    creditor, plan = norway
    invoice = bill(creditor, plan, due=TODAY - timedelta(days=14), preferred_locale="en")
    consent(invoice, preferred_channel="email")
    run(creditor, TODAY)
    report = dispatch()
    assert report.delivered == 1
    (mail,) = smtp.messages
    assert mail["Subject"] == f"Reminder: invoice {invoice.number}" and mail["To"] == "c-1@example.test"
    body = mail.get_body(("plain",)).get_content()
    assert "A reminder fee of" in body and "https://pay.example.test/l/" in body
    message = db.session.scalars(select(Message).where(Message.customer_id == invoice.customer_id)).one()
    assert message.status == MessageStatus.SENT and "[link]" in message.body


@pytest.mark.parametrize("meanwhile", [pay, question, dispute])
def test_a_bill_paid_or_asked_about_before_its_message_goes_out_is_left_out(norway, meanwhile):
    creditor, plan = norway
    invoice = bill(creditor, plan, due=TODAY - timedelta(days=14))
    run(creditor, TODAY)
    meanwhile(invoice)
    (sms,) = outbox_of(invoice.customer_id)
    with pytest.raises(DeliveryError) as caught:
        render(sms)
    assert caught.value.permanent
    caught.value.after()
    assert notices(invoice)[0][4] == NoticeStatus.PAID_BEFORE
    assert db.session.scalars(select(Message.status)).all() == [MessageStatus.FAILED]


def test_a_failed_message_falls_back_to_the_next_channel_then_to_a_letter(norway):
    creditor, plan = norway
    invoice = bill(creditor, plan, due=TODAY - timedelta(days=14))
    run(creditor, TODAY)
    sms = db.session.scalars(select(Message).where(Message.customer_id == invoice.customer_id)).one()
    email = services.fall_back(sms, "failed")
    assert (email.channel, email.recipient, email.replaces_id) == ("email", "c-1@example.test", sms.id)
    assert email.outbox_message_id is not None and sms.status == MessageStatus.FAILED
    assert notices(invoice) == [(2, "reminder", "email", 3500, NoticeStatus.SENT)]
    assert services.fall_back(sms, "failed") is None  # a repeated callback changes nothing
    notice = db.session.scalars(select(Notice).where(Notice.invoice_id == invoice.id)).one()
    letter = services.fall_back(notice, "bounced")  # given its notice
    assert letter.channel == "letter" and email.status == MessageStatus.BOUNCED and notice.channel_index == 2
    assert count(Letter, Letter.message_id == letter.id) == 1
    assert services.fall_back(letter, "returned") is None  # nothing comes after a letter
    assert db.session.scalars(select(Reminder.channel).where(Reminder.invoice_id == invoice.id)
                              .order_by(Reminder.id)).all() == ["sms", "email", "letter"]
    assert count(InvoiceLine, InvoiceLine.invoice_id == invoice.id, InvoiceLine.kind == "reminder_fee") == 1


@pytest.mark.parametrize(("kind", "flat_fee"), [("business", 4000), ("consumer", 0)])
def test_german_final_reminder_charges_costs_interest_and_the_flat_fee_to_businesses(germany, kind, flat_fee):
    creditor, plan = germany
    due = date(2026, 10, 30)
    invoice = bill(creditor, plan, due=due, kind=kind, on=date(2026, 11, 6),
                   address={"line1": "Hauptstraße 1", "postcode": "04177", "city": "Leipzig", "country": "DE"})
    assert default_begins(invoice) == (due + timedelta(days=31) if kind == "business" else None)
    run(creditor, date(2026, 11, 6))  # the reminder, 7 days after the due date: default from the next day
    assert default_begins(invoice) == date(2026, 11, 7)
    interest = default_interest(invoice, date(2026, 11, 21))
    points = 9 if kind == "business" else 5
    assert interest.since == date(2026, 11, 7) and interest.rates[0][1] == Decimal("1.27") + points
    report = run(creditor, date(2026, 11, 21))  # the final reminder: 15 days after the reminder
    assert report.messages == 1
    lines = {line.kind: line.gross for line in db.session.scalars(
        select(InvoiceLine).where(InvoiceLine.invoice_id == invoice.id, InvoiceLine.kind != "product"))}
    assert lines["reminder_fee"] == 250 and lines.get("other_fee", 0) == flat_fee
    assert lines["interest"] == interest.amount > 0


def test_add_charges_writes_what_add_charge_writes(norway):
    creditor, _plan = norway
    one, two = make_invoice(creditor, lines=2), make_invoice(creditor, lines=2)
    add_charge(one, "reminder_fee", "Purregebyr", 3500, actor="dunning", step=2)
    add_charges([Charge(two.id, "reminder_fee", "Purregebyr", 3500, {"step": 2})], actor="dunning")
    db.session.expire_all()

    def shape(invoice):
        lines = [(x.position, x.kind, x.description, x.gross, x.net, x.vat, x.vat_rate) for x in invoice.lines]
        event = db.session.scalars(select(InvoiceEvent).where(InvoiceEvent.invoice_id == invoice.id,
                                                              InvoiceEvent.kind == "charge_added")).one()
        return lines, invoice.subtotal, invoice.total, event.actor, event.data

    assert shape(one) == shape(two)
    cancel_invoice(two, actor="test")
    with pytest.raises(IllegalTransition):
        add_charges([Charge(two.id, "reminder_fee", "x", 1)], actor="dunning")


def test_only_the_creditors_own_bills_are_decided(norway, germany):
    creditor, plan = norway
    mine = bill(creditor, plan, due=TODAY - timedelta(days=14))
    other, other_plan = germany
    theirs = bill(other, other_plan, due=TODAY - timedelta(days=7), on=TODAY,
                  address={"line1": "Hauptstraße 1", "postcode": "04177", "city": "Leipzig", "country": "DE"})
    run(creditor, TODAY)
    assert len(notices(mine)) == 1 and notices(theirs) == []
    assert db.session.get(Invoice, theirs.id).dunning_next_on == TODAY
