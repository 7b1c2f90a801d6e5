"""What a collection partner reports beyond payments, and what it hears beyond the hand-off (issue 16):
a case given back with a reason (the bill is the creditor's again and waits in the agents' inbox), costs
added, a payment plan, new contact details and a message (each validated, shown to agents and in the
case file), `case.updated` after a credit, a correction or new contact details, the statutory interest
and a business's organisation number in the case file, and the bill page's amount after the hand-off."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import jsonschema
import pytest
from flask_babel import force_locale
from sqlalchemy import func, select

from app.billing.corrections import LineCredit, issue_credit_note
from app.billing.models import InvoiceEvent, InvoiceStatus
from app.core.dates import local_today
from app.debt_collection.models import Case, CaseEvent, CaseStatus
from app.debt_collection.partners import policy_of
from app.debt_collection.services import check, return_reason_words
from app.debt_collection.worker import run
from app.dunning.services import update_contact_points
from app.extensions import db
from app.models import utcnow
from app.payments.models import Payment
from tests.functional.agents import EN, enrol, make_agent
from tests.functional.collection_helpers import creditor_with_policy, deliver, overdue, partner_for, today_for
from tests.functional.helpers import open_bill
from tests.support.partner_receiver import PartnerReceiver

SCHEMA = json.loads((Path(__file__).parents[2] / "docs" / "case-file-v1.schema.json").read_text())


@pytest.fixture
def receiver():
    with PartnerReceiver(secrets=[]) as server:
        yield server


@pytest.fixture
def partner(app, session, receiver):
    made = partner_for(app, receiver.url)
    receiver.secrets.append(made.signing_secret)
    return made


def hand_off(app, creditor, **fields):
    invoice = overdue(app, creditor, **fields)
    with app.app_context():
        run(today_for)
    return invoice, db.session.scalar(select(Case).where(Case.invoice_id == invoice.id))


@pytest.fixture
def handed_off(app, partner):
    """A Norwegian bill handed off to the partner: (invoice, case)."""
    return hand_off(app, creditor_with_policy(app, partner.partner))


def event(client, partner, case, **body):
    return client.post(f"/api/partner/v1/cases/{case.public_id}/events", json=body,
                       headers={"Authorization": f"Bearer {partner.api_key}"})


def events() -> int:
    return db.session.scalar(select(func.count(CaseEvent.id)))


def valid_case_file(data: dict) -> dict:
    jsonschema.validate(data, SCHEMA, format_checker=jsonschema.FormatChecker())
    return data


# --- P1: the case given back -----------------------------------------------------------------------------


def test_a_returned_case_is_the_creditors_again_and_waits_for_an_agent_before_another_hand_off(
        app, client, partner, handed_off):
    invoice, case = handed_off
    refused = event(client, partner, case, id="r0", type="case_returned", reason="because")
    assert refused.status_code == 422 and "reason" in refused.json["errors"] and events() == 0
    assert event(client, partner, case, id="r1", type="case_returned").status_code == 422  # a reason is required
    answer = event(client, partner, case, id="r1", type="case_returned", reason="customer_disputes",
                   note="Kunden sier at måleren er feil.")
    assert answer.status_code == 201, answer.text
    assert answer.json["case"] == {"case_id": case.public_id, "status": "returned",
                                   "recalled_at": answer.json["case"]["recalled_at"]}
    db.session.refresh(case)
    assert case.status == CaseStatus.RETURNED and invoice.status == InvoiceStatus.OPEN
    # The partner's access has ended, and the same event id again changes nothing.
    headers = {"Authorization": f"Bearer {partner.api_key}"}
    assert client.get(f"/api/partner/v1/cases/{case.public_id}", headers=headers).status_code == 404
    assert event(client, partner, case, id="r1", type="case_returned", reason="customer_disputes",
                 note="Kunden sier at måleren er feil.").status_code == 200
    # Not handed off again while no agent has looked at it; the reason in the agent's language.
    today = today_for("NO")
    assert check(invoice, policy_of(invoice.creditor_id), today).reasons == ("returned:customer_disputes",)
    with app.app_context():
        assert run(today_for) is not None
    assert db.session.scalar(select(func.count(Case.id))) == 1
    with app.test_request_context(), force_locale("nb"):
        assert "bestrider" in return_reason_words("customer_disputes")
    with app.test_request_context(), force_locale("de"):
        assert "bestreitet" in return_reason_words("customer_disputes")

    agent = make_agent(app, invoice.creditor)
    enrol(client)
    inbox = client.get("/backoffice/?kind=partner", headers=EN)
    assert "From the collection partner" in inbox.text and "the customer disputes it" in inbox.text
    page = client.get(f"/backoffice/invoices/{invoice.id}", headers=EN)
    assert "The collection partner gave the bill back: the customer disputes it." in page.text
    assert "Kunden sier at måleren er feil." in page.text and "Mark as dealt with" in page.text
    returned = db.session.scalar(select(CaseEvent).where(CaseEvent.kind == "case_returned"))
    token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    done = client.post(f"/backoffice/invoices/{invoice.id}/partner-reports/{returned.id}/handled",
                       data={"csrf_token": token}, headers=EN)
    assert done.status_code == 303
    db.session.refresh(returned)
    assert returned.handled_at is not None and returned.handled_by == f"agent:{agent.id}"
    assert "returned:customer_disputes" not in check(invoice, policy_of(invoice.creditor_id), today).reasons
    assert "Nothing matches these filters." in client.get("/backoffice/?kind=partner", headers=EN).text


def test_another_creditors_agent_neither_sees_nor_handles_the_report(app, client, partner, handed_off):
    invoice, case = handed_off
    assert event(client, partner, case, id="m1", type="message", message="Ring oss.").status_code == 201
    other = creditor_with_policy(app, partner.partner)
    make_agent(app, other)
    enrol(client)
    assert "Ring oss." not in client.get("/backoffice/?kind=partner", headers=EN).text
    reported = db.session.scalar(select(CaseEvent))
    page = client.get("/backoffice/", headers=EN)
    token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    answer = client.post(f"/backoffice/invoices/{invoice.id}/partner-reports/{reported.id}/handled",
                         data={"csrf_token": token})
    assert answer.status_code == 404 and db.session.get(CaseEvent, reported.id).handled_at is None


# --- P2: costs, a plan, contact details, a message ---------------------------------------------------------


def test_costs_a_plan_contact_details_and_a_message_are_checked_and_shown(app, client, partner, handed_off):
    invoice, case = handed_off
    owed = invoice.balance
    bad = [
        ({"type": "costs_added", "costs": 35000}, "claim"),
        ({"type": "costs_added", "claim": owed + 35000}, "costs"),
        ({"type": "costs_added", "costs": 35000, "claim": owed + 35000, "amount": 35000}, "amount"),
        ({"type": "plan_agreed", "instalments": []}, "instalments"),
        ({"type": "plan_agreed", "instalments": [{"due_date": "2030-02-01", "amount": 100},
                                                 {"due_date": "2030-01-01", "amount": 100}]}, "instalments.1.due_date"),
        ({"type": "plan_agreed", "instalments": [{"due_date": "1999-01-01", "amount": 100}]}, "instalments.0.due_date"),
        ({"type": "contact_updated", "contact": {}}, "contact"),
        ({"type": "contact_updated", "contact": {"email": "not-an-address"}}, "contact.email"),
        ({"type": "contact_updated", "contact": {"phone": "12"}}, "contact.phone"),
        ({"type": "contact_updated", "contact": {"address": {"line1": "Gate 1", "city": "Oslo", "postcode": "x",
                                                             "country": "NO"}}}, "contact.address.postcode"),
        ({"type": "message", "message": "   "}, "message"),
        ({"type": "message", "message": "Hei", "reason": "wrong_debtor"}, "reason"),
    ]
    for n, (body, field) in enumerate(bad):
        answer = event(client, partner, case, id=f"bad-{n}", **body)
        assert answer.status_code == 422, (body, answer.text)
        assert field in answer.json["errors"], (body, answer.json)
    assert events() == 0 and case.partner_claim is None

    today = today_for("NO")
    first, second = (today + timedelta(days=14)).isoformat(), (today + timedelta(days=44)).isoformat()
    half = (owed + 35000) // 2
    reports = [
        {"id": "c1", "type": "costs_added", "costs": 35000, "claim": owed + 35000, "note": "Inkassosalær"},
        {"id": "p1", "type": "plan_agreed", "instalments": [{"due_date": first, "amount": half},
                                                            {"due_date": second, "amount": owed + 35000 - half}]},
        {"id": "k1", "type": "contact_updated", "contact": {
            "email": "kari.ny@example.test", "phone": "+47 912 34 000",
            "address": {"line1": "Nygata 2", "postcode": "0151", "city": "Oslo", "country": "no"}}},
        {"id": "m1", "type": "message", "message": "Skyldner ber om kopi av kontrakten.\nKan dere sende den?"},
    ]
    for body in reports:
        answer = event(client, partner, case, **body)
        assert answer.status_code == 201, (body, answer.text)
    db.session.refresh(case)
    assert case.partner_claim == owed + 35000 and invoice.balance == owed  # costs are the partner's, not ours
    assert db.session.scalar(select(func.count(Payment.id))) == 0
    contact = db.session.scalar(select(CaseEvent).where(CaseEvent.kind == "contact_updated")).details["contact"]
    assert contact == {"email": "kari.ny@example.test", "phone": "+4791234000",
                       "address": {"line1": "Nygata 2", "line2": None, "postcode": "0151", "city": "Oslo",
                                   "country": "NO"}}

    make_agent(app, invoice.creditor)
    enrol(client)
    page = client.get(f"/backoffice/invoices/{invoice.id}", headers=EN)
    assert "What the collection partner reported" in page.text
    assert "Costs added:" in page.text and "The debtor owes the partner" in page.text
    assert "kari.ny@example.test" in page.text and "Nygata 2, 0151 Oslo, NO" in page.text
    assert "Skyldner ber om kopi av kontrakten." in page.text
    timeline = client.get(f"/backoffice/customers/{invoice.customer_id}", headers=EN).text
    assert "The collection partner added costs of" in timeline
    assert "The collection partner agreed a payment plan with the debtor" in timeline
    assert "2 instalments" in timeline and "Message from the collection partner" in timeline
    assert "Kan dere sende den?" in timeline
    inbox = client.get("/backoffice/?kind=partner", headers=EN).text
    assert inbox.count("From the collection partner") >= 2  # the contact details and the message wait

    # In the case file: what the partners reported, the next time it is built (a credit note, below).
    with app.test_request_context():
        issue_credit_note(invoice, [LineCredit(invoice.lines[0].id, 1000)], reason="Feil måleravlesning",
                          actor="agent:1")
        db.session.commit()
    stored = valid_case_file(db.session.get(Case, case.id).case_file)
    assert [r["type"] for r in stored["partner_reports"]] == ["costs_added", "plan_agreed", "contact_updated",
                                                              "message"]
    assert stored["partner_reports"][0]["costs"] == 35000 and stored["partner_reports"][1]["instalments"][0] == {
        "due_date": first, "amount": half}


# --- P3: case.updated --------------------------------------------------------------------------------------


def test_a_credit_and_new_contact_details_reach_the_partner_as_case_updated(app, client, partner, receiver,
                                                                          handed_off):
    invoice, case = handed_off
    deliver(app)
    assert [d.body["type"] for d in receiver.unique()] == ["case.created"]
    with app.test_request_context():
        issue_credit_note(invoice, [LineCredit(invoice.lines[0].id, 5000)], reason="Feil måleravlesning",
                          actor="agent:1")
        db.session.commit()
        update_contact_points(invoice.customer, {"email": "kari@nytt.example"})
        db.session.commit()
        update_contact_points(invoice.customer, {"preferred_channel": "email"})  # not news to the partner
        db.session.commit()
    deliver(app)
    kinds = [d.body["type"] for d in receiver.unique()]
    assert kinds == ["case.created", "case.updated", "case.updated"]
    amounts, debtor = (d.body["data"] for d in receiver.unique()[1:])
    assert amounts["changes"] == ["amounts"] and amounts["outstanding"] == invoice.balance
    assert amounts["case_id"] == case.public_id and amounts["reason"]
    valid_case_file(amounts["case_file"])
    assert amounts["case_file"]["invoice"]["credit_notes"][0]["amount"] == 5000
    assert amounts["case_file"]["amounts"]["outstanding"]["total"] == invoice.balance
    assert debtor["changes"] == ["debtor"] and debtor["case_file"]["debtor"]["email"] == "kari@nytt.example"
    assert db.session.get(Case, case.id).case_file == debtor["case_file"]  # the one last sent
    headers = {"Authorization": f"Bearer {partner.api_key}"}
    assert client.get(f"/api/partner/v1/cases/{case.public_id}", headers=headers).json["case_file"][
        "debtor"]["email"] == "kari@nytt.example"
    assert {d.webhook_id for d in receiver.unique()[1:]} and len({d.webhook_id for d in receiver.unique()}) == 3


def test_a_bill_no_partner_handles_sends_no_update(app, partner, receiver):
    creditor = creditor_with_policy(app, partner.partner)
    invoice = overdue(app, creditor)
    with app.test_request_context():
        issue_credit_note(invoice, [LineCredit(invoice.lines[0].id, 5000)], reason="Feil", actor="agent:1")
        update_contact_points(invoice.customer, {"email": "kari@nytt.example"})
        db.session.commit()
    assert db.session.scalar(select(func.count(InvoiceEvent.id)).where(InvoiceEvent.kind == "collection_updated")) == 0


# --- P4: interest -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind,points,law", [("consumer", "5", "§ 288(1) BGB"), ("business", "9", "§ 288(2) BGB")])
def test_the_case_file_carries_the_rate_its_base_and_the_day_it_runs_from(app, partner, kind, points, law):
    creditor = creditor_with_policy(app, partner.partner, kind="DE")
    customer = {"external_ref": f"C-{kind}", "name": "Max Muster GmbH", "kind": kind,
                "address": {"line1": "Hauptstr. 1", "postcode": "10115", "city": "Berlin", "country": "DE"}}
    if kind == "business":
        customer["org_number"] = "HRB 12345 B"
    _invoice, case = hand_off(app, creditor, customer=customer)
    assert case is not None
    file = valid_case_file(case.case_file)
    interest = file["interest"]
    assert interest["points_above"] == points and interest["law"] == law and interest["day_count"] == "actual/365"
    assert float(interest["rate"]) == pytest.approx(float(interest["rates"][-1]["rate"]))
    assert float(interest["rate"]) >= float(points) - 1  # base rate + points (the base rate is near 2 %)
    assert interest["base"] == file["amounts"]["outstanding"]["principal"] > 0
    assert interest["runs_from"] <= local_today("DE", utcnow()).isoformat() == interest["accrued_until"]
    assert interest["accrued"] > 0 and interest["charged"] == 0
    assert file["debtor"]["org_number"] == ("HRB 12345 B" if kind == "business" else None)


# --- P5: organisation numbers --------------------------------------------------------------------------------


def test_business_customers_carry_a_checked_organisation_number_through_the_api(app, client, session):
    from app.creditors.services import create_api_key
    from tests.factories import invoice_payload, make_creditor

    creditor = make_creditor("NO")
    headers = {"Authorization": f"Bearer {create_api_key(creditor)}"}
    db.session.commit()

    def create(number, **customer):
        payload = invoice_payload("NOK", number=number)
        payload["customer"].update(customer)
        return client.post("/api/v1/invoices", json=payload, headers=headers)

    wrong = create("1", kind="business", org_number="923 609 017")  # the check digit is 6
    assert wrong.status_code == 422 and "customer.org_number" in wrong.json["errors"]
    consumer = create("2", org_number="923609016")
    assert consumer.status_code == 422 and "business" in consumer.json["errors"]["customer.org_number"]
    made = create("3", kind="business", org_number="NO 923 609 016 MVA")
    assert made.status_code == 201, made.text
    assert made.json["customer"]["org_number"] == "923609016"
    assert client.get("/api/v1/invoices/3", headers=headers).json["customer"]["org_number"] == "923609016"
    german = create("4", external_ref="C-2", kind="business", org_number="DE136695976",
                    address={"line1": "Hauptstr. 1", "postcode": "10115", "city": "Berlin", "country": "DE"})
    assert german.status_code == 201 and german.json["customer"]["org_number"] == "DE136695976"
    assert create("5", external_ref="C-3", kind="business", org_number="DE136695977",
                  address={"line1": "Hauptstr. 1", "postcode": "10115", "city": "Berlin",
                           "country": "DE"}).status_code == 422


# --- P6: the bill page after the hand-off -------------------------------------------------------------------


def test_the_bill_page_states_what_was_handed_over_and_the_partners_figure(app, client, partner, handed_off):
    invoice, case = handed_off
    url = open_bill(client, app, invoice)
    page = client.get(url, headers=EN).text
    headline = page.split('id="h-amount"')[1].split("</h1>")[0]
    assert "Handed over to Nord Collect AS on" in headline and "Amount due" not in headline
    assert "can tell you what you owe now" in page
    assert event(client, partner, case, id="pay", type="payment_received", amount=10000).status_code == 201
    assert event(client, partner, case, id="c1", type="costs_added", costs=35000,
                 claim=invoice.balance + 35000).status_code == 201
    page = client.get(url, headers=EN).text
    assert "Paid since: NOK" in page or "Paid since:" in page
    assert "Nord Collect AS&#39;s figure on" in page or "Nord Collect AS's figure on" in page
    assert "their costs and interest included" in page
