"""Test mode (issue 17, item 1): an API key is live or test, chosen in the console and the CLI and
shown in the console's list; a test key sees and makes only test data and a live key never sees it
(a 404, as for another creditor's); the same invoice number, payment reference, customer reference
or credit note id lives in both modes; the events feed by mode. Test bills' payment, reminders and
hand-off: test_test_bills.py."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from app.audit import AuditEntry
from app.billing.models import CreditNote, Customer, Invoice
from app.creditors.models import ApiKey
from app.creditors.services import api_key_for, create_api_key, hash_api_key
from app.errors import InvalidData
from app.extensions import db
from tests.factories import invoice_payload, make_creditor, make_invoice
from tests.functional.agents import EN
from tests.functional.test_api import API, assert_json_error, create
from tests.functional.test_console import form_post, sign_in


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def two_keys(kind: str = "NO"):
    """A creditor with a live key and a test key, committed."""
    creditor = make_creditor(kind)
    live, test = bearer(create_api_key(creditor, "billing", mode="live")), bearer(
        create_api_key(creditor, "integration tests", mode="test"))
    db.session.commit()
    return creditor, live, test


def count(model, *where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


# --- the key's mode ----------------------------------------------------------------------------------


def test_a_key_says_its_mode_and_a_key_made_before_test_mode_stays_live(session):
    creditor = make_creditor("NO")
    live, test = create_api_key(creditor, mode="live"), create_api_key(creditor, mode="test")
    assert live.startswith(f"pk_live_{creditor.slug[:8]}_") and test.startswith(f"pk_test_{creditor.slug[:8]}_")
    assert api_key_for(live).livemode is True and api_key_for(test).livemode is False
    assert api_key_for(test).prefix == test[:16] and api_key_for(test).creditor.id == creditor.id
    old = f"pk_{creditor.slug[:8]}_" + "o" * 43  # the shape keys had before: no mode in it
    db.session.add(ApiKey(creditor_id=creditor.id, prefix=old[:12], key_hash=hash_api_key(old), label="old"))
    db.session.flush()
    assert api_key_for(old).livemode is True
    before = count(ApiKey, ApiKey.creditor_id == creditor.id)
    with pytest.raises(InvalidData) as refused:
        create_api_key(creditor, mode="sandbox")
    assert "mode" in refused.value.errors and count(ApiKey, ApiKey.creditor_id == creditor.id) == before


def test_the_console_makes_a_test_key_lists_its_mode_and_refuses_an_unknown_mode(app, client, session):
    creditor = make_creditor("NO")
    db.session.commit()
    agent = sign_in(app, client, creditor)
    page = f"/backoffice/console/{creditor.id}/api-keys"
    assert 'name="mode" value="test"' in client.get(page, headers=EN).text
    refused = form_post(client, page, page, {"label": "Sandbox", "mode": "sandbox"})
    assert refused.status_code == 422 and "Choose a live key or a test key." in refused.text
    assert count(ApiKey, ApiKey.creditor_id == creditor.id) == 0
    made = form_post(client, page, page, {"label": "Integration tests", "mode": "test"})
    assert made.status_code == 200
    key = made.text.split('id="new-key">')[1].split("<")[0]
    assert key.startswith("pk_test_")
    live = form_post(client, page, page, {"label": "Billing system"})  # the form's default: live
    assert live.text.split('id="new-key">')[1].split("<")[0].startswith("pk_live_")
    listing = client.get(page, headers=EN).text
    row = listing.split("Integration tests")[1].split("</tr>")[0]
    assert ">test</span>" in row and key[:16] in row and key not in listing
    assert ">live</span>" in listing.split("Billing system")[1].split("</tr>")[0]
    stored = db.session.scalar(select(ApiKey).where(ApiKey.creditor_id == creditor.id,
                                                    ApiKey.label == "Integration tests"))
    assert stored.livemode is False
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.agent_id == agent.id,
                                                       AuditEntry.action == "console_api_key_created",
                                                       AuditEntry.record_id == str(stored.id)))
    assert entry.detail["mode"] == "test" and key not in str(entry.detail)


def test_the_cli_makes_a_test_key_and_refuses_an_unknown_mode(app, session):
    creditor = make_creditor("IE")
    db.session.commit()
    runner = app.test_cli_runner()
    made = runner.invoke(args=["creditors", "api-key", creditor.slug, "--label", "ci", "--mode", "test"])
    assert made.exit_code == 0, made.output
    key = made.stdout.strip()
    assert key.startswith("pk_test_") and api_key_for(key).livemode is False
    default = runner.invoke(args=["creditors", "api-key", creditor.slug])
    assert default.exit_code == 0 and default.stdout.strip().startswith("pk_live_")
    refused = runner.invoke(args=["creditors", "api-key", creditor.slug, "--mode", "sandbox"])
    assert refused.exit_code != 0 and "sandbox" in refused.output
    db.session.expire_all()
    assert count(ApiKey, ApiKey.creditor_id == creditor.id) == 2


# --- test data through the API -------------------------------------------------------------------------


def test_a_test_key_sees_only_test_data_and_a_live_key_only_live_data(client, session):
    creditor, live, test = two_keys()
    payload = invoice_payload("NOK", number="2026-7")
    made_live, made_test = create(client, live, payload), create(client, test, payload)  # same number, same customer
    assert made_live.status_code == 201 and made_live.json["livemode"] is True
    assert made_test.status_code == 201 and made_test.json["livemode"] is False, made_test.json
    assert create(client, test, payload).status_code == 200  # idempotent within its mode
    test_only = invoice_payload("NOK", number="T-1")
    test_only["customer"] = {**test_only["customer"], "external_ref": "C-T"}
    assert create(client, test, test_only).status_code == 201
    assert create(client, live, invoice_payload("NOK", number="L-2")).status_code == 201

    rows = {(i.number, i.livemode) for i in db.session.scalars(
        select(Invoice).where(Invoice.creditor_id == creditor.id))}
    assert rows == {("2026-7", True), ("2026-7", False), ("T-1", False), ("L-2", True)}
    customers = {(c.external_ref, c.livemode) for c in db.session.scalars(
        select(Customer).where(Customer.creditor_id == creditor.id))}
    assert customers == {("C-1", True), ("C-1", False), ("C-T", False)}
    tested = db.session.scalar(select(Invoice).where(Invoice.number == "2026-7", Invoice.livemode.is_(False),
                                                     Invoice.creditor_id == creditor.id))
    assert tested.customer.livemode is False

    assert client.get(f"{API}/invoices/2026-7", headers=live).json["livemode"] is True
    assert client.get(f"{API}/invoices/2026-7", headers=test).json["livemode"] is False
    for path in ("/invoices/T-1", "/invoices/T-1/credit-notes", "/customers/C-T/contact"):
        assert_json_error(client.get(f"{API}{path}", headers=live), 404, "not_found")
    for path in ("/invoices/L-2", "/invoices/L-2/credit-notes"):
        assert_json_error(client.get(f"{API}{path}", headers=test), 404, "not_found")
    assert_json_error(client.post(f"{API}/invoices/L-2/cancel", json={}, headers=test), 404, "not_found")
    assert_json_error(client.post(f"{API}/invoices/L-2/links", json={"channel": "sms"}, headers=test), 404,
                      "not_found")
    db.session.expire_all()
    assert db.session.scalar(select(Invoice.status).where(Invoice.number == "L-2")) == "open"

    listed_live = client.get(f"{API}/invoices", headers=live).json["data"]
    listed_test = client.get(f"{API}/invoices", headers=test).json["data"]
    assert [(i["number"], i["livemode"]) for i in listed_live] == [("2026-7", True), ("L-2", True)]
    assert [(i["number"], i["livemode"]) for i in listed_test] == [("2026-7", False), ("T-1", False)]
    assert client.get(f"{API}/invoices", query_string={"customer": "C-T"}, headers=live).json["data"] == []

    # The contact of C-1 changed with the test key is the test customer's; the live one stays as it was.
    changed = client.put(f"{API}/customers/C-1/contact", json={"email": "test@example.test"}, headers=test)
    assert changed.status_code == 200, changed.json
    assert client.get(f"{API}/customers/C-1/contact", headers=live).json["email"] == "kari@example.test"
    assert client.get(f"{API}/customers/C-1/contact", headers=test).json["email"] == "test@example.test"


def test_credit_notes_of_test_bills_keep_out_of_the_creditors_series(client, session):
    creditor, live, test = two_keys()
    for headers in (live, test):
        assert create(client, headers, invoice_payload("NOK", number="2026-9")).status_code == 201
    first_test = client.post(f"{API}/invoices/2026-9/credit-notes", json={"reason": "Goodwill", "id": "note-1",
                                                                         "lines": [{"position": 1, "amount": 100}]},
                             headers=test)
    assert first_test.status_code == 201, first_test.json
    assert first_test.json["number"].startswith("CN-TEST-")
    made_live = client.post(f"{API}/invoices/2026-9/credit-notes", json={"reason": "Goodwill", "id": "note-1",
                                                                        "lines": [{"position": 1, "amount": 100}]},
                            headers=live)
    assert made_live.status_code == 201, made_live.json  # the same id in the other mode: its own note
    assert made_live.json["number"] == "CN-000001"  # the live series starts where it would have without test notes
    assert count(CreditNote, CreditNote.creditor_id == creditor.id) == 2
    assert [n["number"] for n in client.get(f"{API}/invoices/2026-9/credit-notes", headers=live).json[
        "credit_notes"]] == ["CN-000001"]


def test_the_events_feed_shows_each_key_its_own_modes_events(client, session):
    _creditor, live, test = two_keys()
    for headers in (live, test):
        assert create(client, headers, invoice_payload("NOK", number="E-1")).status_code == 201
    for headers, email in ((live, "live@example.test"), (test, "test@example.test")):
        assert client.put(f"{API}/customers/C-1/contact", json={"email": email}, headers=headers).status_code == 200
    live_events = client.get(f"{API}/events", headers=live).json["data"]
    test_events = client.get(f"{API}/events", headers=test).json["data"]
    assert [e["type"] for e in live_events] == ["contact_details.changed"] and live_events[0]["livemode"] is True
    assert [e["type"] for e in test_events] == ["contact_details.changed"] and test_events[0]["livemode"] is False
    assert live_events[0]["id"] != test_events[0]["id"]


def test_the_unique_constraints_hold_within_a_mode_not_across(session):
    creditor = make_creditor("NO")
    live = make_invoice(creditor, number="N-1")
    test = make_invoice(creditor, number="N-1", livemode=False, payment_reference=live.payment_reference)
    other = make_invoice(creditor, number="N-2", livemode=False,
                         customer={**invoice_payload()["customer"], "external_ref": "C-2"})
    assert live.id != test.id and live.payment_reference == test.payment_reference
    assert live.customer_id != test.customer_id
    for change in (update(Invoice).where(Invoice.id == other.id).values(number="N-1"),
                   update(Invoice).where(Invoice.id == other.id).values(payment_reference=test.payment_reference),
                   update(Customer).where(Customer.id == other.customer_id).values(external_ref="C-1")):
        with pytest.raises(IntegrityError), db.session.begin_nested():
            db.session.execute(change)
    # across modes the same values are no conflict
    db.session.execute(update(Invoice).where(Invoice.id == other.id).values(livemode=True, number="N-3"))
    db.session.flush()
