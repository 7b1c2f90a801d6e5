"""Dispute, promise, more time and instalments through the bill page's forms (test client)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.billing.models import InvoiceStatus
from app.core.dates import local_today
from app.extensions import db
from app.models import utcnow
from app.outbox.models import OutboxMessage
from app.resolutions.models import Resolution, Status
from tests.factories import make_creditor, make_invoice
from tests.functional.helpers import open_bill

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
SUBMISSION = re.compile(r'name="submission" value="([^"]+)"')
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
EN = {"Accept-Language": "en"}


@pytest.fixture
def bill(client, app, session):
    creditor = make_creditor("NO", default_locale="en")
    creditor.deferral_fee, creditor.plan_fee = 5000, 9900
    invoice = make_invoice(creditor, lines=3)
    return invoice, open_bill(client, app, invoice)


def today(invoice):
    return local_today(invoice.creditor.country, utcnow())


def form_of(client, url, headers=EN):
    page = client.get(url, headers=headers)
    assert page.status_code == 200, page.status_code
    return page, {"csrf_token": CSRF.search(page.text).group(1), "submission": SUBMISSION.search(page.text).group(1)}


def count(model=Resolution) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def test_the_bill_page_offers_every_option_and_links_to_each_form(client, bill):
    _invoice, url = bill
    page = client.get(url, headers=EN)
    for path in ("/promise", "/more-time", "/instalments", "/dispute", "/contact"):
        assert f'href="{url}{path}"' in page.text
    assert "Cannot pay it all now" in page.text


def test_promise_asks_to_confirm_then_records_once_and_pauses(client, bill):
    invoice, url = bill
    _page, fields = form_of(client, f"{url}/promise")
    promised = (today(invoice) + timedelta(days=7)).isoformat()
    confirm = client.post(f"{url}/promise", data={**fields, "date": promised}, headers=EN)
    assert confirm.status_code == 200 and "Please confirm your promise" in confirm.text
    assert count() == 0  # nothing yet: the customer has not confirmed
    done = [client.post(f"{url}/promise", data={**fields, "date": promised, "confirm": "yes"}) for _ in range(2)]
    assert [r.status_code for r in done] == [303, 303] and done[0].headers["Location"] == done[1].headers["Location"]
    assert count() == 1
    page = client.get(done[0].headers["Location"], headers=EN)
    assert "Your promise to pay" in page.text and "promise.ics" in page.text
    ics = client.get(done[0].headers["Location"] + "/promise.ics")
    assert ics.mimetype == "text/calendar" and b"DTSTART;VALUE=DATE:" + promised.replace("-", "").encode() in ics.data
    assert "attachment" in ics.headers["Content-Disposition"]
    bill_page = client.get(url, headers=EN)
    assert "What you have arranged" in bill_page.text and "Pay on a later date" not in bill_page.text


@pytest.mark.parametrize(("offset", "lang", "words"), [
    (0, "en", "Please choose a date from"),
    (15, "nb", "Velg en dato fra"),
    (30, "de", "Bitte wählen Sie ein Datum vom"),
])
def test_a_promised_date_out_of_range_is_an_error_next_to_the_field(client, bill, offset, lang, words):
    invoice, url = bill
    _page, fields = form_of(client, f"{url}/promise?lang={lang}", headers={})
    promised = (today(invoice) + timedelta(days=offset)).isoformat()
    answer = client.post(f"{url}/promise", data={**fields, "date": promised, "confirm": "yes"})
    assert answer.status_code == 422
    assert 'id="date-error"' in answer.text and words in answer.text and 'aria-invalid="true"' in answer.text
    assert count() == 0


def test_a_missing_csrf_token_changes_nothing(client, bill):
    invoice, url = bill
    _page, fields = form_of(client, f"{url}/promise")
    answer = client.post(f"{url}/promise", data={"submission": fields["submission"], "confirm": "yes",
                                                  "date": (today(invoice) + timedelta(days=3)).isoformat()})
    assert answer.status_code == 400 and count() == 0


def test_more_time_within_the_rules_shows_the_fee_then_moves_the_due_date(client, bill):
    invoice, url = bill
    _page, fields = form_of(client, f"{url}/more-time")
    new_due = (invoice.due_date + timedelta(days=10)).isoformat()
    confirm = client.post(f"{url}/more-time", data={**fields, "date": new_due}, headers=EN)
    assert confirm.status_code == 200 and "50.00" in confirm.text
    assert "Confirm the new due date" in confirm.text
    done = client.post(f"{url}/more-time", data={**fields, "date": new_due, "confirm": "yes"})
    assert done.status_code == 303
    assert invoice.due_date.isoformat() == new_due and invoice.lines[-1].gross == 5000


def test_a_second_deferral_over_the_limit_becomes_a_request(client, bill):
    invoice, url = bill
    _page, fields = form_of(client, f"{url}/more-time")
    client.post(f"{url}/more-time", data={**fields, "date": (invoice.due_date + timedelta(days=3)).isoformat(),
                                           "confirm": "yes"})
    db.session.get(Resolution, db.session.scalar(select(Resolution.id))).status = Status.KEPT  # that one is over
    db.session.commit()
    _page, fields = form_of(client, f"{url}/more-time")
    later = (invoice.due_date + timedelta(days=5)).isoformat()
    confirm = client.post(f"{url}/more-time", data={**fields, "date": later}, headers=EN)
    assert "already been moved as often as" in confirm.text and "Send my request" in confirm.text
    client.post(f"{url}/more-time", data={**fields, "date": later, "confirm": "yes"})
    request = db.session.scalars(select(Resolution).order_by(Resolution.id.desc())).first()
    assert (request.status, request.reason) == (Status.OPEN, "too_many")


def test_instalments_show_the_schedule_before_accepting_and_each_is_payable(client, bill):
    invoice, url = bill
    page, fields = form_of(client, f"{url}/instalments")
    assert 'name="months" value="2"' in page.text
    confirm = client.post(f"{url}/instalments", data={**fields, "months": "3"}, headers=EN)
    assert confirm.status_code == 200 and "Please check your instalment plan" in confirm.text
    assert confirm.text.count("<tr><td>") == 3
    assert count() == 0 and invoice.total == 37508
    done = client.post(f"{url}/instalments", data={**fields, "months": "3", "confirm": "yes"})
    assert done.status_code == 303
    plan = db.session.scalar(select(Resolution))
    first = plan.instalments[0].amount
    bill_page = client.get(url, headers=EN)
    assert "Your next instalment" in bill_page.text
    token = CSRF.search(bill_page.text).group(1)
    started = client.post(f"{url}/pay", data={"csrf_token": token, "provider": "simulator",
                                               "amount": f"{first / 100:.2f}"})
    assert started.status_code == 303
    from app.payments.models import PaymentAttempt

    assert db.session.scalar(select(PaymentAttempt.amount)) == first


def test_a_plan_that_is_not_offered_is_refused(client, bill):
    _invoice, url = bill
    _page, fields = form_of(client, f"{url}/instalments")
    answer = client.post(f"{url}/instalments", data={**fields, "months": "60", "confirm": "yes"}, headers=EN)
    assert answer.status_code == 422 and "Please choose one of the plans." in answer.text and count() == 0


def test_dispute_of_a_line_with_proof_holds_that_part_and_leaves_the_rest_payable(client, bill):
    invoice, url = bill
    line = invoice.lines[0]
    _page, fields = form_of(client, f"{url}/dispute?line={line.id}")
    answer = client.post(f"{url}/dispute", data={
        **fields, "scope": "lines", "lines": [str(line.id)], "reason": "already_paid", "message": "Paid it in May",
        "attachment": (__import__("io").BytesIO(PDF), "proof.pdf"),
    }, content_type="multipart/form-data")
    assert answer.status_code == 303
    assert invoice.status == InvoiceStatus.DISPUTED
    page = client.get(url, headers=EN)
    assert "The part of the bill you do not dispute" in page.text
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage).where(
        OutboxMessage.kind == "resolution.dispute_notification")) == 1


def test_an_executable_renamed_pdf_is_refused_next_to_the_field(client, bill):
    invoice, url = bill
    _page, fields = form_of(client, f"{url}/dispute")
    answer = client.post(f"{url}/dispute", data={
        **fields, "scope": "invoice", "reason": "already_paid", "message": "See attached",
        "attachment": (__import__("io").BytesIO(b"\x7fELF\x02\x01\x01" + b"\0" * 200), "receipt.pdf"),
    }, content_type="multipart/form-data", headers=EN)
    assert answer.status_code == 422 and 'id="attachment-error"' in answer.text
    assert "Please attach a PDF, JPEG or PNG file." in answer.text
    assert count() == 0 and invoice.status == InvoiceStatus.OPEN


def test_a_6_mb_upload_is_refused_next_to_the_field(client, bill):
    _invoice, url = bill
    _page, fields = form_of(client, f"{url}/dispute")
    big = PDF[:-7] + b"\0" * (6 * 1024 * 1024) + b"%%EOF\n"
    answer = client.post(f"{url}/dispute", data={
        **fields, "scope": "invoice", "reason": "already_paid", "message": "See attached",
        "attachment": (__import__("io").BytesIO(big), "receipt.pdf"),
    }, content_type="multipart/form-data", headers=EN)
    assert answer.status_code == 422 and "larger than 5 MB" in answer.text
    assert count() == 0


def test_a_paid_bill_can_still_be_disputed_and_stays_paid(client, app, bill):
    invoice, url = bill
    from app.billing.services import record_payment

    record_payment(invoice, invoice.total, actor="test", paid_on=today(invoice), method="card")
    db.session.commit()
    page = client.get(url, headers=EN).text
    assert "Is something wrong with this bill?" in page and f'href="{url}/dispute"' in page
    assert f'href="{url}/promise"' not in page and "Cannot pay it all now" not in page
    _page, fields = form_of(client, f"{url}/dispute")
    answer = client.post(f"{url}/dispute", data={**fields, "scope": "invoice", "reason": "wrong_amount",
                                                 "message": "I was billed for a month I had cancelled."}, headers=EN)
    assert answer.status_code == 303 and count() == 1
    assert invoice.status == InvoiceStatus.PAID
    dispute = db.session.scalar(select(Resolution))
    assert dispute.status == Status.OPEN and dispute.amount == invoice.total


def test_a_cancelled_bill_cannot_be_disputed(client, app, bill):
    invoice, url = bill
    from app.billing.services import cancel_invoice

    _page, fields = form_of(client, f"{url}/dispute")
    cancel_invoice(invoice, actor="test", reason="sent in error")
    db.session.commit()
    answer = client.post(f"{url}/dispute", data={**fields, "scope": "invoice", "reason": "other", "message": "?"},
                         headers=EN)
    assert answer.status_code == 404 and count() == 0  # a cancelled bill is gone from the portal


def test_script_in_a_dispute_message_is_shown_as_text(client, bill):
    _invoice, url = bill
    _page, fields = form_of(client, f"{url}/dispute")
    done = client.post(f"{url}/dispute", data={**fields, "scope": "invoice", "reason": "other",
                                                "message": "<script>alert(1)</script>"})
    page = client.get(done.headers["Location"], headers=EN)
    assert "<script>alert(1)</script>" not in page.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text


def test_another_bills_resolution_is_the_neutral_page(client, app, bill):
    invoice, url = bill
    other = make_invoice(invoice.creditor)
    other_url = open_bill(client, app, other)
    _page, fields = form_of(client, f"{other_url}/promise")
    done = client.post(f"{other_url}/promise", data={**fields, "confirm": "yes",
                                                      "date": (today(other) + timedelta(days=2)).isoformat()})
    reference = done.headers["Location"].rsplit("/", 1)[1]
    assert client.get(f"{url}/r/{reference}").status_code == 404
    assert client.get(f"{url}/r/{reference}/promise.ics").status_code == 404


def test_posts_are_rate_limited(client, app, bill):
    _invoice, url = bill
    app.config["SELF_SERVICE_RATE_LIMIT"] = "2 per minute"
    try:
        _page, fields = form_of(client, f"{url}/promise")
        codes = [client.post(f"{url}/promise", data={**fields, "date": "x"}).status_code for _ in range(3)]
    finally:
        app.config["SELF_SERVICE_RATE_LIMIT"] = "10 per minute; 60 per hour"
    assert codes == [422, 422, 429]


def test_an_option_not_open_to_the_bill_says_so_instead_of_showing_a_form(client, bill):
    invoice, url = bill
    _page, fields = form_of(client, f"{url}/promise")
    client.post(f"{url}/promise", data={**fields, "confirm": "yes",
                                         "date": (today(invoice) + timedelta(days=2)).isoformat()})
    for path in ("promise", "more-time", "instalments"):
        page = client.get(f"{url}/{path}", headers=EN)
        assert page.status_code == 200 and "This option is not available for this bill right now." in page.text
        assert 'name="submission"' not in page.text


def test_a_creditor_without_plans_is_asked_to_be_contacted(client, bill):
    invoice, url = bill
    invoice.creditor.plan_max_months = 0
    db.session.commit()
    page = client.get(f"{url}/instalments", headers=EN)
    assert "cannot be split into instalments online" in page.text and f'href="{url}/contact"' in page.text
    assert f'href="{url}/instalments"' not in client.get(url, headers=EN).text
