"""`flask resolutions` and `flask support`: rules, the daily run, and agents' answers from the command line."""

from __future__ import annotations

from datetime import timedelta

from app.billing.models import InvoiceStatus
from app.core.dates import local_today
from app.extensions import db
from app.models import utcnow
from app.resolutions import deferrals, disputes, promises
from app.resolutions.models import Status
from app.support.models import RequestStatus
from app.support.services import open_request
from tests.factories import make_creditor, make_invoice


def run(app, *args):
    return app.test_cli_runner().invoke(args=list(args))


def test_rules_show_and_change_only_what_is_given(app, session):
    creditor = make_creditor("NO")
    db.session.commit()
    result = run(app, "resolutions", "rules", creditor.slug, "--deferral-fee", "3500", "--plan-max-months", "12",
                 "--undisputed-held")
    assert result.exit_code == 0, result.output
    assert (creditor.deferral_fee, creditor.plan_max_months, creditor.dispute_partial_payable) == (3500, 12, False)
    assert creditor.promise_max_days == 14  # untouched
    assert "up to 12 months" in result.output and "fee NOK\u00a035.00" in result.output
    assert run(app, "resolutions", "rules", creditor.slug, "--grace-days", "-1").exit_code == 2
    assert run(app, "resolutions", "rules", "nobody").exit_code == 1


def test_answer_a_dispute_and_decide_a_request(app, session, tmp_path):
    creditor = make_creditor("NO")
    invoice = make_invoice(creditor)
    today = local_today("NO", utcnow())
    with app.test_request_context():
        dispute, _ = disputes.open_dispute(invoice, reason="other", message="?", line_ids=None, upload=None,
                                           attachment_dir=str(tmp_path), locale="nb", submission_key="d", today=today)
    db.session.commit()
    listed = run(app, "resolutions", "list")
    assert dispute.reference in listed.output and "dispute" in listed.output
    missing = run(app, "resolutions", "answer-dispute", dispute.reference, "--rejected", "--message", " ")
    assert missing.exit_code == 1 and dispute.status == Status.OPEN
    result = run(app, "resolutions", "answer-dispute", dispute.reference, "--rejected", "--message",
                 "The reading is right.", "--agent", "agent:ola")
    assert result.exit_code == 0, result.output
    assert (dispute.status, invoice.status) == (Status.REJECTED, InvoiceStatus.OPEN)
    with app.test_request_context():
        request, _ = deferrals.defer(invoice, invoice.due_date + timedelta(days=60), locale="nb",
                                    submission_key="f", today=today)
    db.session.commit()
    result = run(app, "resolutions", "decide-deferral", request.reference, "--grant", "--message", "OK")
    assert result.exit_code == 0, result.output
    assert invoice.due_date == request.new_date and request.status == Status.ACTIVE
    assert run(app, "resolutions", "decide-deferral", "R-NOPE", "--grant").exit_code == 1


def test_the_daily_run_reports_what_it_did(app, session):
    creditor = make_creditor("NO")
    invoice = make_invoice(creditor)
    today = local_today("NO", utcnow())
    with app.test_request_context():
        promises.make_promise(invoice, today + timedelta(days=1), locale="nb", submission_key="p", today=today)
    db.session.commit()
    result = run(app, "resolutions", "run", "--creditor", creditor.slug)
    assert result.exit_code == 0 and "1 day-before e-mails due" in result.output


def test_support_list_and_reply(app, session, tmp_path):
    invoice = make_invoice(make_creditor("NO"))
    with app.test_request_context():
        request, _ = open_request(
            invoice, topic="other", message="Hello there", contact_method="email", contact_email=None,
            contact_phone=None, callback_date=None, callback_window=None, upload=None, locale="nb",
            submission_key="s", attachment_dir=str(tmp_path), today=local_today("NO", utcnow()),
        )
    db.session.commit()
    listed = run(app, "support", "list")
    assert request.reference in listed.output and "customer: Hello there" in listed.output
    result = run(app, "support", "reply", request.reference, "--message", "Hi! All is well.", "--agent", "Ola")
    assert result.exit_code == 0, result.output
    assert request.status == RequestStatus.ANSWERED and request.messages[-1].author_name == "Ola"
    assert run(app, "support", "reply", "S-NOPE", "--message", "x").exit_code == 1
