"""What agents stumbled on in the back office (issue 16, agents 1-9): the bill's state, money and clock
on the inbox; events at the time they happened; only the actions that apply, with why the rest do not;
a preview of a dispute's decision and the customer's language; words, not codes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.billing.services import record_reminder
from app.extensions import db
from app.models import utcnow
from app.resolutions.models import Status
from tests.factories import make_creditor
from tests.functional.agents import EN, enrol, make_agent, post
from tests.functional.backoffice_data import every_kind


@pytest.fixture
def creditor(app, session):
    creditor = make_creditor("NO")
    db.session.commit()
    return creditor


@pytest.fixture
def mine(app, creditor, tmp_path):
    return every_kind(app, creditor, tmp_path)


@pytest.fixture
def supervisor(app, client, creditor):
    agent = make_agent(app, creditor, "sup@example.test", "supervisor")
    enrol(client, "sup@example.test")
    return agent


def test_money_is_spaced_and_codes_are_words(client, mine, supervisor):
    """A5: "NOK 0.00", never "NOK0.00"; a payment's method and an undelivered message's kind in words;
    the bill's status pill begins with a capital."""
    paid = client.get(f"/backoffice/invoices/{mine.paid.id}", headers=EN).text
    assert "NOK0" not in paid and "NOK\u00a00.00" in paid
    assert "Cash" in paid and "· cash" not in paid
    assert '<span class="tag">Paid</span>' in paid
    dead = client.get(f"/backoffice/outbox/{mine.dead.id}", headers=EN).text
    assert "Our answer" in dead and "support.reply" not in dead
    inbox = client.get("/backoffice/", headers=EN).text
    assert "Our answer → bounce@example.test" in inbox and "support.reply" not in inbox
    norsk = client.get(f"/backoffice/invoices/{mine.paid.id}?lang=nb").text
    assert "0,00\u00a0kr" in norsk and "Kontant" in norsk


def test_a_paid_bill_offers_only_what_applies_and_says_why(client, mine, supervisor):
    """A6: no "pause reminders", no new link, no payment to record on a paid bill, and the reason."""
    paid = client.get(f"/backoffice/invoices/{mine.paid.id}", headers=EN).text
    assert f"/backoffice/invoices/{mine.paid.id}/hold" not in paid
    assert f"/backoffice/invoices/{mine.paid.id}/link" not in paid
    assert f"/backoffice/invoices/{mine.paid.id}/payments" not in paid
    assert "Not offered for this bill:" in paid and "The bill is paid." in paid
    assert "A link would show nothing to pay." in paid
    assert f"/backoffice/invoices/{mine.paid.id}/credit" in paid  # a credit note still applies: money owed back
    owed = client.get(f"/backoffice/invoices/{mine.invoice.id}", headers=EN).text
    assert "Not offered for this bill:" in owed and "dispute is open" in owed  # the disputed bill
    norsk = client.get(f"/backoffice/invoices/{mine.paid.id}?lang=nb").text
    assert "Regningen er betalt." in norsk


def test_a_disputes_decision_is_previewed_and_nothing_changes(client, mine, supervisor):
    """A4: "Preview the new total" shows the total and what is left to pay after the decision, changes
    nothing and sends nothing; the hint names the customer's language."""
    first = mine.invoice.lines[0]
    total = mine.invoice.total
    page = f"/backoffice/resolutions/{mine.dispute.reference}"
    shown = client.get(page, headers=EN).text
    assert "in Norsk bokmål: write in Norsk bokmål" in shown and 'lang="nb"' in shown
    preview = post(client, f"{page}/decide", {"outcome": "partial", "message": "", f"credit-{first.id}": "25,00",
                                              "preview": "1"}, page=page)
    assert preview.status_code == 200, preview.text
    assert "If you send this decision:" in preview.text
    from app.templating import money
    with client.application.test_request_context(headers=EN):
        after = money(total - 2500, mine.invoice.currency)
    assert after in preview.text and "Nothing has changed yet" in preview.text
    db.session.expire_all()
    assert mine.dispute.status == Status.OPEN and mine.invoice.total == total and mine.invoice.credited == 0
    wrong = post(client, f"{page}/decide", {"outcome": "partial", "message": "", f"credit-{first.id}": "99999",
                                            "preview": "1"}, page=page)
    assert wrong.status_code == 422 and "more than is left of the line" in wrong.text
    none = post(client, f"{page}/decide", {"message": "", "preview": "1"}, page=page)
    assert none.status_code == 422 and "Please choose a decision" in none.text


def test_the_timeline_shows_a_reminder_when_it_was_sent(app, client, mine, supervisor):
    """A2: a reminder the creditor's system reports days later is on the timeline at its sending time."""
    sent = datetime(2026, 11, 22, 9, 30, tzinfo=UTC)
    with app.test_request_context():
        record_reminder(mine.invoice, channel="sms", sent_at=sent, final=False, actor="api")
        db.session.commit()
    page = client.get(f"/backoffice/customers/{mine.invoice.customer_id}", headers=EN).text
    assert "22/11/2026, 10:30" in page  # Oslo's clock
    assert utcnow().strftime("%d/%m/%Y") not in page.split("Reminder sent")[0].rsplit("<li", 1)[-1]
