"""The retention run: what it minimises, what it keeps, the attachments' files, idempotency, the
creditor's period, the anonymisation once bookkeeping law lets go; and a data subject's erasure."""

from __future__ import annotations

import json
from datetime import date

import pytest
from sqlalchemy import func, select

from app.backoffice.models import Note
from app.billing.models import Customer, InvoiceEvent, InvoiceLine
from app.dunning.letters.models import LetterPrint
from app.dunning.models import ContactChange, Letter, Message
from app.errors import InvalidData
from app.extensions import db
from app.links.models import AccessLink
from app.models import utcnow
from app.outbox.models import OutboxMessage
from app.payments.bank.models import BankEntry
from app.payments.models import Payment, WebhookEvent
from app.privacy import services, worker
from app.privacy.holdings import HOLDINGS, Treatment
from app.privacy.models import MarkKind, PrivacyMark
from app.privacy.rules import add_months, keep_until, rule_for
from app.support.attachments import attachment_path
from app.support.models import Attachment, SupportMessage
from tests.factories import make_creditor
from tests.unit.privacy.conftest import paid_story


def run(on: date, tmp_path) -> worker.RunReport:
    return worker.run(lambda _creditor: on, str(tmp_path), batch_size=2)


def count(model, condition) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(condition))


def snapshot(customer) -> str:
    exported = services.export(customer)
    exported.pop("created_at")
    return json.dumps(exported, sort_keys=True, default=str)


def test_before_the_retention_period_ends_nothing_changes(story, tmp_path):
    before = snapshot(story.customer)
    report = run(add_months(story.closed_on, 35), tmp_path)
    assert report.total.invoices == 0
    assert snapshot(story.customer) == before


def test_after_it_the_conversation_goes_and_the_invoice_stays(story, tmp_path):
    invoice, customer = story.paid, story.customer
    file = attachment_path(story.attachment, str(tmp_path))
    assert file.exists()
    total, number, lines = invoice.total, invoice.number, len(invoice.lines)

    report = run(add_months(story.closed_on, 37), tmp_path)

    assert report.total.invoices == 1 and report.total.customers == 1 and report.failed_batches == 0
    db.session.expire_all()
    # gone: words, contact details, the file and its row, links, notes, contact changes
    assert not file.exists()
    assert count(Attachment, Attachment.invoice_id == invoice.id) == 0
    assert count(AccessLink, AccessLink.invoice_id == invoice.id) == 0
    assert count(Note, Note.customer_id == customer.id) == 0
    assert count(ContactChange, ContactChange.customer_id == customer.id) == 0
    message = db.session.scalar(select(SupportMessage).where(SupportMessage.request_id == story.request.id))
    assert message.body == "" and message.attachment_id is None
    assert story.request.contact_email is None
    assert (customer.email, customer.phone, customer.date_of_birth) == (None, None, None)
    entry = db.session.scalar(select(BankEntry).where(BankEntry.invoice_id == invoice.id))
    assert (entry.payer_name, entry.remittance, entry.amount) == (None, None, 100)
    assert db.session.scalar(select(WebhookEvent.payload).where(WebhookEvent.creditor_id == invoice.creditor_id)) == {}
    sent = db.session.scalar(select(OutboxMessage).where(OutboxMessage.kind == "payment_receipt",
                                                         OutboxMessage.creditor_id == invoice.creditor_id))
    assert (sent.recipient, sent.sent_text, sent.payload) == ("", None, {})
    reminder = db.session.scalar(select(Message).where(Message.customer_id == customer.id, Message.channel == "email"))
    assert (reminder.recipient, reminder.body) == (None, None)
    assert db.session.scalar(select(Letter.address).where(Letter.customer_id == customer.id)) == {}
    assert count(LetterPrint, LetterPrint.creditor_id == invoice.creditor_id) == 0
    # kept: the invoice as bookkeeping law wants it, with the buyer's name and address
    assert (invoice.number, invoice.total, invoice.status, len(invoice.lines)) == (number, total, "paid", lines)
    assert count(Payment, Payment.invoice_id == invoice.id) == 1
    assert (customer.name, customer.address_line1, customer.postcode) == ("Kari Nordmann", "Storgata 1", "0150")
    assert db.session.scalar(select(InvoiceLine.description).where(InvoiceLine.invoice_id == invoice.id))
    # the other customer's open bill is untouched
    assert story.other_open.customer.email == "other@example.test"
    assert story.other_open.status == "open"


def test_a_second_run_the_same_day_changes_nothing(story, tmp_path):
    day = add_months(story.closed_on, 37)
    run(day, tmp_path)
    after_first = snapshot(story.customer)
    marks = db.session.scalar(select(func.count()).select_from(PrivacyMark))
    again = run(day, tmp_path)
    assert again.total.summary() == {"invoices": 0, "customers": 0, "anonymised": 0, "rows": {}}
    assert snapshot(story.customer) == after_first
    assert db.session.scalar(select(func.count()).select_from(PrivacyMark)) == marks


def test_the_creditors_own_period_counts(creditor, story, tmp_path):
    services.set_retention(creditor, 2)
    assert run(add_months(story.closed_on, 1), tmp_path).total.invoices == 0
    assert run(add_months(story.closed_on, 2), tmp_path).total.invoices == 1
    with pytest.raises(InvalidData):
        services.set_retention(creditor, 0)
    with pytest.raises(InvalidData):
        services.set_retention(creditor, 121)
    services.set_retention(creditor, None)
    assert services.retention_months(creditor) == rule_for("NO").default_retention_months == 36


def test_when_bookkeeping_law_lets_go_the_customer_is_anonymised(story, tmp_path):
    run(add_months(story.closed_on, 37), tmp_path)
    last_day = keep_until(rule_for("NO"), story.paid.issue_date, story.closed_on)
    assert last_day == date(story.paid.issue_date.year + 5, 12, 31)
    assert run(last_day, tmp_path).total.anonymised == 0
    report = run(date(last_day.year + 1, 1, 1), tmp_path)
    assert report.total.anonymised == 1
    customer = db.session.get(Customer, story.customer.id)
    db.session.refresh(customer)
    assert (customer.name, customer.address_line1, customer.city) == ("—", None, None)
    assert customer.external_ref == f"erased-{customer.id}"
    assert run(date(last_day.year + 1, 1, 1), tmp_path).total.anonymised == 0


def test_german_invoices_are_kept_eight_years_from_the_end_of_the_year_and_irish_six_from_the_last_transaction():
    assert keep_until(rule_for("DE"), date(2025, 3, 1), date(2025, 4, 1)) == date(2033, 12, 31)
    assert keep_until(rule_for("IE"), date(2025, 3, 1), date(2025, 4, 30)) == date(2031, 4, 30)
    assert rule_for("SE").years == 10  # no rule yet: the longest


# --- erasure ------------------------------------------------------------------------------------------------


def test_erasure_is_refused_while_a_bill_is_open_and_changes_nothing(creditor, tmp_path):
    story = paid_story(creditor, tmp_path)
    open_bill = story.other_open  # another customer's, open
    plan = services.erasure_plan(open_bill.customer, story.closed_on)
    assert not plan.allowed and plan.open_numbers == (open_bill.number,)
    before = snapshot(open_bill.customer)
    with pytest.raises(InvalidData):
        services.erase(open_bill.customer, story.closed_on, str(tmp_path))
    assert snapshot(open_bill.customer) == before


def test_erasure_while_bookkeeping_law_keeps_the_invoice_reduces_to_what_it_needs(story, tmp_path):
    file = attachment_path(story.attachment, str(tmp_path))
    plan, done = services.erase(story.customer, story.closed_on, str(tmp_path))
    assert plan.allowed and not plan.full and plan.kept[0][0] == story.paid.number
    db.session.expire_all()
    customer = story.customer
    assert (customer.name, customer.address_line1, customer.email) == ("Kari Nordmann", "Storgata 1", None)
    assert file.exists() and done.files == [file]  # deleted after the commit, by the caller
    services.remove_files(done.files)
    assert not file.exists()
    assert_nothing_personal_left(customer)
    assert not services.is_anonymised(customer.id)


def test_erasure_when_no_law_keeps_the_invoice_leaves_nothing_that_names_the_person(story, tmp_path):
    later = date(story.paid.issue_date.year + 6, 1, 1)
    plan, done = services.erase(story.customer, later, str(tmp_path))
    assert plan.full and not plan.kept
    services.remove_files(done.files)
    db.session.expire_all()
    customer = story.customer
    assert (customer.name, customer.address_line1, customer.external_ref) == ("—", None, f"erased-{customer.id}")
    assert_nothing_personal_left(customer)
    text = snapshot(customer)
    for words in ("Kari", "kari", "Storgata", "Postboks", "Per Hansen", "KARI", "upset", "flat 3", "4791234567"):
        assert words not in text, words
    assert db.session.scalar(select(PrivacyMark.reason).where(
        PrivacyMark.kind == MarkKind.CUSTOMER_ANONYMISED, PrivacyMark.record_id == customer.id)) == "request"


def assert_nothing_personal_left(customer):
    """Every holding: no row of a DELETED one, every personal column of a REDUCED one empty."""
    for holding in HOLDINGS:
        t = holding.table
        ids = holding.of_customer(customer.id)
        if holding.treatment == Treatment.DELETED:
            assert db.session.scalar(select(func.count()).select_from(t).where(t.c.id.in_(ids))) == 0, holding.name
        elif holding.treatment == Treatment.REDUCED and holding.name != "invoice_events":
            for row in db.session.execute(select(*(t.c[n] for n in holding.personal)).where(t.c.id.in_(ids))):
                assert all(value in (None, "", {}) for value in row), (holding.name, row)


def test_the_export_holds_every_kind_of_data_and_no_secret(story):
    exported = services.export(story.customer)
    assert set(exported["tables"]) == {holding.name for holding in HOLDINGS}
    text = json.dumps(exported)
    for value in ("kari@example.test", "+4791234567", "Storgata 1", "1980-12-31", "Per Hansen",
                  "kari.private@example.test", "meter.pdf", "Called her", "new.kari@example.test", "Dear Kari Nordmann",
                  "Hei Kari", "KARI NORDMANN", "billing_details", "Postboks 7", story.paid.number):
        assert value in text, value
    for secret in ("storage_key", "key_hash", "code_hash", "submission_key"):
        assert f'"{secret}"' not in text, secret
    tables = exported["tables"]
    for name in ("customers", "invoices", "invoice_lines", "support_requests", "support_messages", "attachments",
                 "access_links", "agent_notes", "contact_changes", "outbox_messages", "dunning_messages", "payments",
                 "webhook_events", "bank_entries", "invoice_events", "letters", "letter_prints"):
        assert tables[name]["rows"], name
    # another customer's data is not in it
    assert "other@example.test" not in text and story.other_open.number not in text


def test_a_customer_with_a_second_bill_still_open_keeps_their_contact_details(creditor, tmp_path):
    story = paid_story(creditor, tmp_path, external_ref="C-9")
    from tests.factories import make_invoice

    make_invoice(creditor, customer={"external_ref": "C-9", "name": "Kari Nordmann", "email": "kari@example.test"})
    report = run(add_months(story.closed_on, 37), tmp_path)
    assert report.total.invoices == 1 and report.total.customers == 0
    db.session.expire_all()
    assert story.customer.email == "kari@example.test"
    assert story.request.contact_email is None


def test_another_creditors_bills_follow_their_own_period(creditor, story, tmp_path):
    theirs = paid_story(make_creditor("NO"), tmp_path, external_ref="C-2")
    services.set_retention(creditor, 1)
    report = run(add_months(story.closed_on, 2), tmp_path)
    assert report.total.invoices == 1
    db.session.expire_all()
    assert theirs.customer.email == "kari@example.test"


def test_a_minimised_bill_that_opens_again_is_minimised_again_once_closed(story, tmp_path):
    day = add_months(story.closed_on, 37)
    run(day, tmp_path)
    invoice = story.paid
    # disputed after all, years later: open again, with new words from the customer
    invoice.status = "disputed"
    db.session.add(InvoiceEvent(invoice_id=invoice.id, kind="status_changed", actor="test", created_at=utcnow(),
                                data={"from": "paid", "to": "disputed"}))
    db.session.add(SupportMessage(request_id=story.request.id, author="customer", body="Still wrong, says Per"))
    db.session.commit()  # the run's transactions are its own
    assert not services.all_minimised(story.customer.id)
    assert run(day, tmp_path).total.invoices == 0  # open: not touched
    assert db.session.scalar(select(func.count()).select_from(SupportMessage).where(
        SupportMessage.body == "Still wrong, says Per")) == 1
    invoice.status = "paid"
    db.session.add(InvoiceEvent(invoice_id=invoice.id, kind="status_changed", actor="test",
                                created_at=utcnow(), data={"from": "disputed", "to": "paid"}))
    db.session.commit()
    again = run(day, tmp_path)
    assert again.total.invoices == 1 and again.total.customers == 1
    assert db.session.scalar(select(func.count()).select_from(SupportMessage).where(
        SupportMessage.body == "Still wrong, says Per")) == 0
    assert run(day, tmp_path).total.invoices == 0
