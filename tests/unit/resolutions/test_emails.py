"""The resolution e-mails, delivered over SMTP by the outbox dispatcher, in the customer's language."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask_babel import force_locale, gettext

from app.outbox.dispatcher import run_once
from app.resolutions import daily, disputes, plans, promises
from app.resolutions.calendar import event_ics
from tests.unit.resolutions.conftest import TODAY


def text_of(mail) -> str:
    return mail.get_body(("plain",)).get_content()


def html_of(mail) -> str:
    return mail.get_body(("html",)).get_content()


@pytest.mark.parametrize("locale", ["en", "nb", "de"])
def test_a_promise_is_confirmed_in_the_customers_language_with_a_calendar_file(invoice, smtp, locale):
    promise, _ = promises.make_promise(invoice, TODAY + timedelta(days=7), locale=locale, submission_key="k",
                                       today=TODAY)
    assert run_once().delivered == 1
    [mail] = smtp.messages
    with force_locale(locale):
        heading = gettext("Thank you for letting us know")
    assert mail["Content-Language"] == locale and heading in text_of(mail) and heading in html_of(mail)
    assert mail["To"] == "kari@example.test" and mail["Reply-To"] == "help@example.test"
    [ics] = list(mail.iter_attachments())
    assert ics.get_content_type() == "text/calendar" and ics.get_filename() == "promise-to-pay.ics"
    body = ics.get_content()
    body = body.decode() if isinstance(body, bytes) else body
    start = "DTSTART;VALUE=DATE:" + (TODAY + timedelta(days=7)).strftime("%Y%m%d")
    assert f"UID:{promise.reference}@" in body and start in body
    assert "https://pay.example.test/l/" in text_of(mail)  # a fresh link to the bill


def test_the_support_desk_reads_the_customers_words_escaped(invoice, smtp, tmp_path):
    disputes.open_dispute(invoice, reason="wrong_amount", message="<script>alert(1)</script> & more",
                          line_ids=None, upload=None, attachment_dir=str(tmp_path), locale="en", submission_key="k",
                          today=TODAY)
    assert run_once().delivered == 2
    desk = next(m for m in smtp.messages if m["To"] == "help@example.test")
    assert "<script>" not in html_of(desk) and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in html_of(desk)
    assert "<script>alert(1)</script> & more" in text_of(desk)
    assert desk["Reply-To"] == "kari@example.test"
    assert desk["Content-Language"] == invoice.creditor.default_locale


def test_every_kind_renders_in_every_language(invoice, smtp, tmp_path):
    """Broken promise, plan e-mails, deferral request and answers: each one delivered, none dead."""
    plan, _ = plans.accept_plan(invoice, 2, locale="de", submission_key="plan", today=TODAY)
    due = plan.instalments[0].due_date
    daily.run_due(lambda _c: due - timedelta(days=1))  # instalment_due
    daily.run_due(lambda _c: due + timedelta(days=10))  # plan_broken
    report = run_once()
    assert (report.delivered, report.dead) == (3, 0)
    subjects = [m["Subject"] for m in smtp.messages]
    with force_locale("de"):
        assert gettext("Your instalment plan has ended") in subjects


def test_calendar_lines_are_escaped_and_folded():
    body = event_ics(uid="R-1@x", day=TODAY, summary="Pay, now; please", description="é" * 80).decode()
    assert "SUMMARY:Pay\\, now\\; please" in body
    assert all(len(line.encode()) <= 75 for line in body.split("\r\n"))
    assert body.endswith("END:VCALENDAR\r\n")
