"""Test bills (issue 17, item 1, test mode): a test bill pays only in test mode (its translated
banner, the simulator alone, no bank details or EPC QR code); the dunning run never enrols or reminds
it and the hand-off to debt collection never takes it."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.billing.models import Invoice
from app.billing.transfer import can_make_epc_qr, transfer_details
from app.debt_collection.models import Case
from app.debt_collection.partners import policy_of
from app.debt_collection.services import NotEligible, candidates, check, hand_off, reason_words
from app.dunning import services as dunning
from app.dunning.models import Message, Notice
from app.extensions import db
from tests.factories import invoice_payload, make_creditor, make_invoice, take_card_payments
from tests.functional.agents import EN
from tests.functional.collection_helpers import creditor_with_policy, overdue, partner_for, today_for
from tests.functional.helpers import open_bill
from tests.functional.test_test_mode import count
from tests.unit.dunning.conftest import TODAY, bill, creditor_with_plan, customer, run

# --- paying a test bill ----------------------------------------------------------------------------------


def test_a_test_bill_says_so_pays_only_with_the_simulator_and_shows_no_bank_details(app, client, session):
    creditor = make_creditor("NO")
    take_card_payments(app, creditor)
    try:
        live = make_invoice(creditor)
        test = make_invoice(creditor, livemode=False)
        db.session.commit()
        account = transfer_details(creditor, live).account
        assert transfer_details(creditor, test) is None
        live_page = client.get(open_bill(client, app, live), headers=EN).text
        assert "Test bill" not in live_page and account in live_page and 'value="stripe"' in live_page
        url = open_bill(client, app, test)
        page = client.get(url, headers=EN).text
        assert "Test bill: no real money." in page
        assert account not in page and test.payment_reference not in page
        assert 'value="simulator"' in page and 'value="stripe"' not in page and "(test mode)" in page
        nb = client.get(url, headers={"Accept-Language": "nb"}).text
        assert "Test bill: no real money." not in nb and "Testregning: ingen ekte penger." in nb
        csrf = page.split('name="csrf_token" value="')[1].split('"')[0]
        refused = client.post(f"{url}/pay", data={"csrf_token": csrf, "provider": "stripe"}, headers=EN)
        assert refused.status_code == 422  # a provider that takes real money is not offered, so refused
        paid = client.post(f"{url}/pay", data={"csrf_token": csrf, "provider": "simulator"}, headers=EN)
        assert paid.status_code in (302, 303) and "/simulator/" in paid.headers["Location"]
    finally:
        app.config["PAYMENT_GATEWAYS"].pop(creditor.slug, None)


def test_a_test_bill_in_euro_has_no_epc_qr_code(app, client, session):
    creditor = make_creditor("IE")
    live, test = make_invoice(creditor), make_invoice(creditor, livemode=False)
    db.session.commit()
    assert can_make_epc_qr(creditor, live) and not can_make_epc_qr(creditor, test)
    assert client.get(f"{open_bill(client, app, live)}/epc-qr.svg").status_code == 200
    assert client.get(f"{open_bill(client, app, test)}/epc-qr.svg").status_code == 404


# --- reminders and the hand-off ----------------------------------------------------------------------------


def test_the_dunning_run_never_enrols_or_reminds_a_test_bill(app, session):
    with app.test_request_context():
        creditor, plan = creditor_with_plan("NO", "NO")
        due = TODAY + timedelta(days=3)
        live = bill(creditor, plan, due=due, ref="C-1")
        given = make_invoice(creditor, livemode=False, issue_date=(due - timedelta(days=20)).isoformat(),
                             due_date=due.isoformat(), customer=customer("C-2"))
        dunning.assign_plan(given, plan, actor="test", today=TODAY)  # a plan given through the API, say
        unplanned = make_invoice(creditor, livemode=False, issue_date=(due - timedelta(days=20)).isoformat(),
                                 due_date=due.isoformat(), customer=customer("C-3"))
        enrolled = bill(creditor, None, due=due, ref="C-4")  # live, no plan: the run enrols it
        dunning.set_default(creditor, plan)
        report = run(creditor, TODAY)
        assert count(Notice, Notice.invoice_id == live.id) == 1 and report.notices >= 1
        assert db.session.get(Invoice, enrolled.id).dunning_plan_id == plan.id
        assert count(Notice, Notice.invoice_id.in_([given.id, unplanned.id])) == 0
        assert count(Message, Message.customer_id.in_([given.customer_id, unplanned.customer_id])) == 0
        assert db.session.get(Invoice, unplanned.id).dunning_plan_id is None
        run(creditor, TODAY + timedelta(days=40))
        assert count(Notice, Notice.invoice_id.in_([given.id, unplanned.id])) == 0


def test_a_test_bill_is_never_handed_off_to_debt_collection(app, session):
    partner = partner_for(app, "http://127.0.0.1:9/cases")
    creditor = creditor_with_policy(app, partner.partner)
    live = overdue(app, creditor)
    test = overdue(app, creditor, livemode=False, customer={**invoice_payload()["customer"], "external_ref": "C-9"})
    with app.test_request_context():
        today = today_for(creditor.country)
        assert candidates(creditor_id=creditor.id) == [live.id]
        assert check(live, policy_of(creditor.id), today).reasons == ()
        assert check(test, policy_of(creditor.id), today).reasons == ("test_bill",)
        assert "test_bill" in check(test, policy_of(creditor.id), today, manual=True).reasons
        with pytest.raises(NotEligible) as refused:
            hand_off(test.id, actor="agent:1", today_for=today_for, manual=True)
        assert refused.value.reasons == ("test_bill",)
        assert reason_words("test_bill") == "A test bill is never handed off to debt collection."
    with app.test_request_context(headers={"Accept-Language": "de"}):
        assert reason_words("test_bill") == "Eine Testrechnung wird nie an ein Inkassobüro übergeben."
    assert count(Case, Case.invoice_id == test.id) == 0
    db.session.expire_all()
    assert db.session.get(Invoice, test.id).status == "open"
