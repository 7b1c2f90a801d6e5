"""What a collection partner may report, and see, through the partner API: payments bounded by what the
case owes, no events on a closed or recalled case but the recall's confirmation, access that ends with
the recall (the case, its file and its PDF), and never a 500 whatever the body says."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.billing.models import InvoiceEvent, InvoiceStatus
from app.debt_collection.models import Case, CaseEvent, CaseStatus
from app.debt_collection.services import recall
from app.debt_collection.worker import run
from app.extensions import db
from app.payments.models import Payment
from tests.functional.collection_helpers import creditor_with_policy, overdue, partner_for, today_for
from tests.support.partner_receiver import PartnerReceiver


@pytest.fixture
def receiver():
    with PartnerReceiver(secrets=[]) as server:
        yield server


@pytest.fixture
def partner(app, session, receiver):
    made = partner_for(app, receiver.url)
    receiver.secrets.append(made.signing_secret)
    return made


@pytest.fixture
def handed_off(app, partner):
    """A bill handed off to the partner: (invoice, case)."""
    creditor = creditor_with_policy(app, partner.partner)
    invoice = overdue(app, creditor)
    with app.app_context():
        run(today_for)
    return invoice, db.session.scalar(select(Case).where(Case.invoice_id == invoice.id))


def api(client, partner, method, path, body=None, **kw):
    return client.open(f"/api/partner/v1{path}", method=method, json=body,
                       headers={"Authorization": f"Bearer {partner.api_key}"}, **kw)


def event(client, partner, case, **body):
    return api(client, partner, "POST", f"/cases/{case.public_id}/events", body)


def recorded() -> tuple[int, int]:
    """(partner events, payments) recorded so far."""
    return (db.session.scalar(select(func.count(CaseEvent.id))), db.session.scalar(select(func.count(Payment.id))))


def test_a_payment_above_what_the_case_owes_is_refused_with_the_outstanding_amount(app, client, partner, handed_off):
    invoice, case = handed_off
    owed = invoice.balance
    for amount in (owed + 1, 2 ** 62, 2 ** 63, 2 ** 64, 10 ** 30):
        answer = event(client, partner, case, id=f"big-{amount}", type="payment_received", amount=amount)
        assert answer.status_code == 422, (amount, answer.status_code, answer.text)
        assert answer.json["errors"]["amount"] and answer.json["outstanding"] == owed
    assert recorded() == (0, 0) and invoice.balance == owed
    exact = event(client, partner, case, id="all", type="payment_received", amount=owed)
    assert exact.status_code == 201 and invoice.balance == 0 and exact.json["case"]["outstanding"] == 0
    after = event(client, partner, case, id="more", type="payment_received", amount=1)
    assert after.status_code == 422 and after.json["outstanding"] == 0  # nothing is owed any more
    closing = event(client, partner, case, id="close", type="closed_paid", amount=1)
    assert closing.status_code == 422  # closing may carry the last payment, not more
    assert event(client, partner, case, id="close", type="closed_paid").status_code == 201


@pytest.mark.parametrize("kind", ["payment_received", "closed_paid", "closed_uncollectable", "recall_acknowledged"])
def test_a_closed_case_takes_no_event(app, client, partner, handed_off, kind):
    invoice, case = handed_off
    assert event(client, partner, case, id="done", type="closed_uncollectable").status_code == 201
    assert case.status == CaseStatus.CLOSED_UNCOLLECTABLE and invoice.status == InvoiceStatus.WRITTEN_OFF
    before = recorded()
    body = {"id": f"late-{kind}", "type": kind}
    if kind in ("payment_received", "closed_paid"):
        body["amount"] = 100
    answer = api(client, partner, "POST", f"/cases/{case.public_id}/events", body)
    assert answer.status_code == 422 and answer.json["errors"]["type"], answer.text
    assert recorded() == before and case.status == CaseStatus.CLOSED_UNCOLLECTABLE
    # the case stays readable: it was the partner's until it closed
    assert api(client, partner, "GET", f"/cases/{case.public_id}").status_code == 200
    # a repeat of an event it reported before still gets its answer
    assert event(client, partner, case, id="done", type="closed_uncollectable").status_code == 200


def test_after_a_recall_request_only_its_confirmation_is_taken_and_the_case_is_gone(app, client, partner, handed_off):
    invoice, case = handed_off
    half = invoice.balance // 2
    assert event(client, partner, case, id="p1", type="payment_received", amount=half).status_code == 201
    pdf_url = case.case_file["documents"]["invoice_pdf"]["url"]
    signed_path = pdf_url.split("://", 1)[1].split("/", 1)[1]
    assert client.get(f"/{signed_path}").status_code == 200
    with app.test_request_context():
        recall(case, actor="agent:1", reason="Settled with the customer")
        db.session.commit()
    before = recorded()
    for body in ({"id": "p2", "type": "payment_received", "amount": 100},
                 {"id": "c1", "type": "closed_paid", "amount": invoice.balance},
                 {"id": "u1", "type": "closed_uncollectable"}):
        answer = event(client, partner, case, **body)
        assert answer.status_code == 422 and answer.json["errors"]["type"], answer.text
    assert recorded() == before
    # the case, its file and its PDF (through the API and by the signed address) are no longer the partner's
    for path in (f"/cases/{case.public_id}", f"/cases/{case.public_id}/invoice.pdf"):
        assert api(client, partner, "GET", path).status_code == 404, path
    assert api(client, partner, "POST", f"/cases/{case.public_id}/ack", {}).status_code == 404
    assert client.get(f"/{signed_path}").status_code == 404
    listed = api(client, partner, "GET", "/cases?status=open").json["cases"]
    assert listed == [{"case_id": case.public_id, "status": "recall_requested",
                       "recalled_at": listed[0]["recalled_at"]}]  # to find the recall, nothing of the bill
    # a repeat of an event reported before the recall gets its answer, without the bill's figures
    repeat = event(client, partner, case, id="p1", type="payment_received", amount=half)
    assert repeat.status_code == 200 and "outstanding" not in repeat.json["case"]
    # money collected before the recall is reported with the confirmation, up to what is owed
    too_much = event(client, partner, case, id="r1", type="recall_acknowledged", amount=invoice.balance + 1)
    assert too_much.status_code == 422 and case.status == CaseStatus.RECALL_REQUESTED
    confirmed = event(client, partner, case, id="r1", type="recall_acknowledged", amount=100)
    assert confirmed.status_code == 201 and confirmed.json["case"] == {
        "case_id": case.public_id, "status": "recalled", "recalled_at": confirmed.json["case"]["recalled_at"]}
    assert case.status == CaseStatus.RECALLED and invoice.amount_paid == half + 100
    # recalled: nothing more, not even a second confirmation
    assert event(client, partner, case, id="r2", type="recall_acknowledged").status_code == 422
    assert event(client, partner, case, id="p3", type="payment_received", amount=1).status_code == 422
    assert api(client, partner, "GET", f"/cases/{case.public_id}").status_code == 404
    assert client.get(f"/{signed_path}").status_code == 404


MALFORMED = [
    {"id": "m", "type": "payment_received", "amount": 1.5},
    {"id": "m", "type": "payment_received", "amount": "100"},
    {"id": "m", "type": "payment_received", "amount": -5},
    {"id": "m", "type": "payment_received", "amount": 0},
    {"id": "m", "type": "payment_received", "amount": True},
    {"id": "m", "type": "payment_received", "amount": None},
    {"id": "m", "type": "payment_received", "amount": -(2 ** 63)},
    {"id": "m", "type": "payment_received", "amount": 1e300},
    {"id": "m", "type": "payment_received", "amount": 100, "currency": "EUR"},
    {"id": "m", "type": "payment_received", "amount": 100, "currency": "nok"},
    {"id": "m", "type": "payment_received", "amount": 100, "currency": "N\u0000K"},
    {"id": "m", "type": "payment_received", "amount": 100, "currency": 578},
    {"id": "m", "type": "payment_received", "amount": 100, "occurred_on": "2026-13-45"},
    {"id": "m", "type": "payment_received", "amount": 100, "occurred_on": "0001-01-01"},
    {"id": "m", "type": "payment_received", "amount": 100, "occurred_on": "9999-12-31"},
    {"id": "m", "type": "payment_received", "amount": 100, "occurred_on": 20260101},
    {"id": "m\u0000x", "type": "payment_received", "amount": 100},
    {"id": "m", "type": "payment_received", "amount": 100, "note": "a\u0000b"},
    {"id": "m", "type": "payment_received", "amount": 100, "note": "x" * 501},
    {"id": "", "type": "payment_received", "amount": 100},
    {"id": "x" * 101, "type": "payment_received", "amount": 100},
    {"id": 7, "type": "payment_received", "amount": 100},
    {"id": "m", "type": "paid", "amount": 100},
    {"id": "m", "type": None},
    {"id": "m", "type": ["payment_received"]},
    {"id": "m", "type": "payment_received", "amount": 100, "extra": 1},
    {"type": "payment_received", "amount": 100},
    [],
    ["payment_received"],
    "payment_received",
    17,
    None,
]


def test_no_number_or_malformed_body_makes_a_500_or_changes_anything(app, client, partner, handed_off):
    invoice, case = handed_off
    owed = invoice.balance
    for body in MALFORMED:
        answer = event(client, partner, case, **body) if isinstance(body, dict) else api(
            client, partner, "POST", f"/cases/{case.public_id}/events", body)
        assert answer.status_code in (400, 415, 422), (body, answer.status_code, answer.text[:300])
        assert answer.is_json and answer.json["error"]
    huge = b'{"id": "m", "type": "payment_received", "amount": 1' + b"0" * 5000 + b"}"  # past int()'s digit limit
    for raw, content_type in ((b"{", "application/json"), (b"\xff\xfe", "application/json"), (huge, "application/json"),
                              (b"[" * 5000, "application/json"), (b"id=m", "application/x-www-form-urlencoded")):
        answer = client.post(f"/api/partner/v1/cases/{case.public_id}/events", data=raw,
                             headers={"Authorization": f"Bearer {partner.api_key}", "Content-Type": content_type})
        assert answer.status_code in (400, 413, 415, 422), (raw[:40], answer.status_code, answer.text[:300])
    for bad in ("x" * 41, "case_\u0000", "%00"):
        answer = api(client, partner, "POST", f"/cases/{bad}/events", {"id": "m", "type": "closed_paid"})
        assert answer.status_code == 404, bad
    ack = api(client, partner, "POST", f"/cases/{case.public_id}/ack", {"reference": "a\u0000b"})
    assert ack.status_code == 400 and ack.json["error"] == "invalid_json", ack.text  # no NUL reaches a field
    assert recorded() == (0, 0) and invoice.balance == owed
    assert db.session.scalar(select(func.count(InvoiceEvent.id)).where(InvoiceEvent.kind == "payment_recorded",
                                                                        InvoiceEvent.invoice_id == invoice.id)) == 0
