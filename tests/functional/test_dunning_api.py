"""The creditor API and the reminder dialogue: `dunning` in the invoice gives the plan's next step, its
day, channel and fee, and may_remind false before the due date; a final reminder reported before the
due date is refused; a plan per invoice (by name, on import and on its own endpoint) and exclusions;
customers' contact points and preferences, on import and on their own endpoint, each bad field a 422
naming it and nothing changed; another creditor's customer is unknown."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.billing.models import Customer, Invoice
from app.dunning import services
from app.dunning.settings import save_settings
from app.extensions import db
from tests.factories import creditor_today, invoice_payload
from tests.functional.test_api import API, api_creditor, create, stored


@pytest.fixture
def norway(session):
    creditor, headers = api_creditor("NO")
    save_settings(creditor, languages=["en", "nb", "de"])
    services.save_plan(creditor, services.shipped_plan("NO"), actor="test", today=creditor_today("NO"))
    gentle = services.shipped_plan("NO")
    gentle["name"] = "gentle"
    gentle["steps"] = gentle["steps"][:2]
    services.save_plan(creditor, gentle, actor="test", today=creditor_today("NO"))
    db.session.commit()
    return creditor, headers


def payload(number: str, *, due_in: int = 13, **changes) -> dict:
    today = creditor_today("NO")
    due = today + timedelta(days=due_in)
    body = invoice_payload("NOK", number=number, issue_date=min(today - timedelta(days=10),
                                                                due - timedelta(days=14)).isoformat(),
                           due_date=due.isoformat())
    body.update(changes)
    return body


def test_dunning_gives_the_next_step_and_no_reminder_before_the_due_date(client, norway):
    creditor, headers = norway
    today = creditor_today("NO")
    assert create(client, headers, payload("SM-900001", dunning_plan="standard")).status_code == 201
    dunning = client.get(f"{API}/invoices/SM-900001", headers=headers).json["dunning"]
    assert (dunning["may_remind"], dunning["may_hand_off"], dunning["paused_by"]) == (False, False, "not_due")
    assert dunning["plan"] == {"name": "standard", "version": 1, "jurisdiction": "NO"}
    assert dunning["next_step"] == {"position": 1, "kind": "pre_due", "date": (today + timedelta(days=10)).isoformat(),
                                    "channel": "sms", "channels": ["sms", "email"], "fee": 0, "deadline_days": 0}

    # A final reminder reported before the due date is refused, naming the field; nothing is recorded.
    early = client.post(f"{API}/invoices/SM-900001/reminders", headers=headers,
                        json={"channel": "letter", "final": True})
    assert early.status_code == 422 and "final" in early.json["errors"]
    assert client.post(f"{API}/invoices/SM-900001/reminders", headers=headers,
                       json={"channel": "sms"}).status_code == 201  # an ordinary one is the creditor's business

    overdue = payload("SM-900002", due_in=-20)
    assert create(client, headers, overdue).status_code == 201
    dunning = client.get(f"{API}/invoices/SM-900002", headers=headers).json["dunning"]
    assert (dunning["may_remind"], dunning["paused_by"], dunning["plan"]) == (True, None, None)  # not enrolled yet
    services.assign_plan(stored(creditor, "SM-900002"), services.default_plan(creditor.id), actor="test", today=today)
    db.session.commit()
    step = client.get(f"{API}/invoices/SM-900002", headers=headers).json["dunning"]["next_step"]
    assert (step["kind"], step["date"], step["fee"], step["deadline_days"]) == ("reminder", today.isoformat(), 3500, 14)
    # the hand-off waits for the plan's collection warning
    assert client.get(f"{API}/invoices/SM-900002", headers=headers).json["dunning"]["may_hand_off"] is False


def test_a_plan_per_invoice_by_name_on_import_and_on_its_endpoint(client, norway):
    _creditor, headers = norway
    made = create(client, headers, payload("P-1", dunning_plan="gentle"))
    assert made.status_code == 201 and made.json["dunning"]["plan"]["name"] == "gentle"
    assert create(client, headers, payload("P-1", dunning_plan="gentle")).status_code == 200  # the same again

    unknown = create(client, headers, payload("P-2", dunning_plan="harsh"))
    assert unknown.status_code == 422
    assert "no plan named 'harsh' (your plans: gentle, standard)" in unknown.json["errors"]["dunning_plan"]
    assert db.session.scalar(select(func.count()).select_from(Invoice).where(Invoice.number == "P-2")) == 0

    excluded = create(client, headers, payload("P-3", dunning_excluded=True))
    assert excluded.json["dunning"]["excluded"] is True and excluded.json["dunning"]["next_step"] is None

    moved = client.put(f"{API}/invoices/P-3/dunning", headers=headers,
                       json={"plan": "standard", "version": 1, "excluded": False})
    assert moved.status_code == 200, moved.json
    assert moved.json["plan"]["name"] == "standard" and moved.json["excluded"] is False
    assert moved.json["next_step"]["kind"] == "pre_due"
    bad = client.put(f"{API}/invoices/P-3/dunning", headers=headers, json={"plan": "standard", "version": 9})
    assert bad.status_code == 422 and "version 9" in bad.json["errors"]["plan"]
    assert client.put(f"{API}/invoices/P-3/dunning", headers=headers, json={"planned": 1}).status_code == 422
    assert client.put(f"{API}/invoices/NOPE/dunning", headers=headers, json={"excluded": True}).status_code == 404


def test_contact_points_and_preferences_on_import(client, norway):
    creditor, headers = norway
    body = payload("C-1")
    body["customer"] = dict(body["customer"], preferred_channel="email", time_zone="Europe/Oslo",
                            consents={"sms": False, "electronic_notices": True})
    made = create(client, headers, body)
    assert made.status_code == 201, made.json
    assert made.json["customer"]["preferred_channel"] == "email"
    assert made.json["customer"]["consents"] == {"email": True, "sms": False, "electronic_notices": True}
    # A later invoice that leaves the preferences out keeps them.
    assert create(client, headers, payload("C-2")).status_code == 201
    customer = db.session.scalar(select(Customer).where(Customer.creditor_id == creditor.id,
                                                        Customer.external_ref == "C-1"))
    assert (customer.preferred_channel, customer.sms_allowed, customer.electronic_notices_allowed) == (
        "email", False, True)
    wrong = payload("C-3")
    wrong["customer"] = dict(wrong["customer"], preferred_channel="pigeon", time_zone="Mars/Olympus",
                             consents={"sms": "yes"})
    refused = create(client, headers, wrong)
    assert refused.status_code == 422
    assert {"customer.preferred_channel", "customer.time_zone", "customer.consents.sms"} <= set(refused.json["errors"])


def test_the_contact_endpoint_changes_what_is_given_and_names_each_bad_field(client, norway):
    _creditor, headers = norway
    create(client, headers, payload("K-1"))
    url = f"{API}/customers/C-1/contact"
    assert client.get(url, headers=headers).json["email"] == "kari@example.test"
    changed = client.put(url, headers=headers, json={
        "email": "kari.new@example.test", "phone": "+47 912 34 568", "preferred_channel": "letter",
        "address": {"line1": "Kirkegata 2", "postcode": "0153", "city": "Oslo", "country": "no"},
        "consents": {"email": False}})
    assert changed.status_code == 200, changed.json
    contact = changed.json
    assert (contact["email"], contact["phone"], contact["preferred_channel"]) == (
        "kari.new@example.test", "+4791234568", "letter")
    assert contact["address"] == {"line1": "Kirkegata 2", "line2": None, "postcode": "0153", "city": "Oslo",
                                  "country": "NO"}
    assert contact["consents"] == {"email": False, "sms": True, "electronic_notices": False}
    assert contact["preferred_locale"] is None and contact["dunning_excluded"] is False

    bad = client.put(url, headers=headers, json={
        "email": "not-an-address", "phone": "12345", "preferred_channel": "pigeon",
        "address": {"line1": "Kirkegata 2", "postcode": "ABC", "city": "Oslo", "country": "NO"},
        "preferred_locale": "xx", "time_zone": "Mars/Olympus", "consents": {"sms": "yes"}})
    assert bad.status_code == 422
    assert set(bad.json["errors"]) >= {"preferred_channel", "consents.sms"}  # the body's types first
    bad = client.put(url, headers=headers, json={
        "email": "not-an-address", "phone": "12345",
        "address": {"line1": "Kirkegata 2", "postcode": "ABC", "city": "Oslo", "country": "NO"},
        "preferred_locale": "xx", "time_zone": "Mars/Olympus"})
    assert bad.status_code == 422
    assert set(bad.json["errors"]) == {"email", "phone", "address.postcode", "preferred_locale", "time_zone"}
    assert client.get(url, headers=headers).json == contact  # nothing changed

    cleared = client.put(url, headers=headers, json={"phone": None})
    assert cleared.json["phone"] is None and cleared.json["email"] == "kari.new@example.test"
    assert client.put(url, headers=headers, json={"fax": "1"}).status_code == 422
    assert client.get(f"{API}/customers/NOPE/contact", headers=headers).status_code == 404


def test_another_creditors_customer_is_unknown(client, norway):
    _creditor, headers = norway
    _other, other_headers = api_creditor("NO")
    create(client, headers, payload("X-1"))
    for answer in (client.get(f"{API}/customers/C-1/contact", headers=other_headers),
                   client.put(f"{API}/customers/C-1/contact", headers=other_headers, json={"email": "x@example.test"}),
                   client.put(f"{API}/customers/C-1/dunning", headers=other_headers, json={"excluded": True})):
        assert answer.status_code == 404 and answer.json["error"] == "not_found"


def test_a_customer_is_excluded_and_included_again(client, norway):
    _creditor, headers = norway
    create(client, headers, payload("E-1", dunning_plan="standard"))
    create(client, headers, payload("E-2", dunning_plan="standard"))
    out = client.put(f"{API}/customers/C-1/dunning", headers=headers, json={"excluded": True})
    assert out.json == {"external_ref": "C-1", "excluded": True, "invoices": 2}
    for number in ("E-1", "E-2"):
        dunning = client.get(f"{API}/invoices/{number}", headers=headers).json["dunning"]
        assert dunning["excluded"] is True and dunning["next_step"] is None
    back = client.put(f"{API}/customers/C-1/dunning", headers=headers, json={"excluded": False})
    assert back.json["excluded"] is False
    assert client.get(f"{API}/invoices/E-1", headers=headers).json["dunning"]["next_step"]["kind"] == "pre_due"
    assert client.put(f"{API}/customers/C-1/dunning", headers=headers, json={}).status_code == 422


@pytest.mark.parametrize("due_in", [13, -20])  # before its due date; overdue, the plan's steps begun
def test_a_new_invoices_answer_is_what_reading_it_answers_without_reading_what_it_cannot_have(
        client, norway, due_in):
    """The 201 of a new invoice gives the timeline and the dunning state a GET gives, and reads none of the
    resolutions, questions and hand-off notice a bill made a moment ago cannot have."""
    from tests.support.database import recorded_statements

    _creditor, headers = norway
    with client.application.app_context():
        engine = db.engine
    with recorded_statements(engine) as statements:
        made = create(client, headers, payload(f"N-{due_in}", due_in=due_in, dunning_plan="standard"))
    assert made.status_code == 201, made.text
    read = client.get(f"{API}/invoices/N-{due_in}", headers=headers)
    assert made.json == read.json
    assert made.json["events"] and made.json["dunning"]["plan"]["name"] == "standard"
    reads = " ".join(" ".join(s.split()) for s in statements if s.lstrip().upper().startswith("SELECT"))
    for table in ("resolutions", "support_requests"):
        assert f"FROM {table}" not in reads, table
    assert "starts_hand_off IS" not in reads  # the hand-off clock's notice (the import's own reads of notices stay)
