"""The creditor API v1 through the test client: create (idempotent), read, links, cancel,
isolation between creditors, authentication, and errors that change nothing."""

from __future__ import annotations

import copy
import json
import re
from datetime import UTC, date, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from app.billing.models import Customer, Invoice, InvoiceEvent, InvoiceLine
from app.billing.services import record_payment
from app.creditors.services import create_api_key, revoke_api_keys
from app.extensions import db
from app.links.models import AccessLink
from tests.factories import invoice_payload, make_creditor

API = "/api/v1"
TABLES = (Customer, Invoice, InvoiceLine, InvoiceEvent, AccessLink)


def api_creditor(kind: str = "NO", **overrides):
    """A creditor with an API key, committed (an error answer rolls back what is not)."""
    creditor = make_creditor(kind, **overrides)
    headers = {"Authorization": f"Bearer {create_api_key(creditor)}"}
    db.session.commit()
    return creditor, headers


def counts() -> dict[str, int]:
    return {m.__tablename__: db.session.scalar(select(func.count()).select_from(m)) for m in TABLES}


def create(client, headers, payload):
    return client.post(f"{API}/invoices", json=payload, headers=headers)


def stored(creditor, number) -> Invoice:
    db.session.expire_all()
    return db.session.scalar(select(Invoice).where(Invoice.creditor_id == creditor.id, Invoice.number == number))


def assert_json_error(response, status: int, code: str):
    assert response.status_code == status, response.text
    assert response.is_json, response.text
    assert response.json["error"] == code and response.json["message"]
    assert response.headers["Cache-Control"] == "no-store"


# --- create ------------------------------------------------------------------------------------


def test_create_answers_201_with_the_invoice(client, session):
    creditor, headers = api_creditor("NO")
    payload = invoice_payload("NOK", lines=2, number="2026-1", summary="Electricity, October")
    response = create(client, headers, payload)
    assert response.status_code == 201, response.text
    assert response.headers["Location"] == f"{API}/invoices/2026-1"
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json
    assert body["number"] == "2026-1" and body["status"] == "open" and body["currency"] == "NOK"
    assert body["total"] == payload["total"] and body["balance"] == payload["total"] and body["amount_paid"] == 0
    assert body["subtotal"] + body["vat_total"] == body["total"]
    assert [line["description"] for line in body["lines"]] == ["Service 1", "Service 2"]
    assert body["lines"][0] == {
        "position": 1, "kind": "product", "description": "Service 1", "note": None, "quantity": "1", "unit": None,
        "product_code": None, "unit_price": 10001, "vat_rate": 2500, "net": 10001, "vat": 2500, "gross": 12501,
        "period_start": None, "period_end": None,
    }
    assert body["customer"]["external_ref"] == "C-1" and body["customer"]["address"]["city"] == "Oslo"
    assert [e["kind"] for e in body["events"]] == ["created"]
    assert body["events"][0]["actor"] == "api" and body["events"][0]["created_at"].endswith("Z")

    invoice = stored(creditor, "2026-1")
    assert invoice is not None and body["payment_reference"] == invoice.payment_reference
    assert invoice.public_id not in response.text
    assert "date_of_birth" not in response.text and "1980-12-31" not in response.text


def test_repeating_the_same_request_answers_200_with_the_same_invoice(client, session):
    _creditor, headers = api_creditor("NO")
    payload = invoice_payload("NOK", lines=2, number="2026-2")
    first = create(client, headers, payload)
    before = counts()
    reordered = dict(reversed(list(copy.deepcopy(payload).items())))
    again = create(client, headers, reordered)
    assert first.status_code == 201 and again.status_code == 200
    assert again.json["number"] == first.json["number"]
    assert again.json["payment_reference"] == first.json["payment_reference"]
    assert again.json["created_at"] == first.json["created_at"]
    assert counts() == before


def test_same_number_with_other_content_answers_409_and_changes_nothing(client, session):
    creditor, headers = api_creditor("NO")
    payload = invoice_payload("NOK", number="2026-3", summary="first")
    assert create(client, headers, payload).status_code == 201
    before = counts()
    response = create(client, headers, dict(payload, summary="second"))
    assert_json_error(response, 409, "conflict")
    assert "2026-3" in response.json["message"]
    assert counts() == before
    assert stored(creditor, "2026-3").summary == "first"


def test_a_reference_already_used_answers_422_and_writes_no_customer(client, session):
    _creditor, headers = api_creditor("DE")
    first = create(client, headers, invoice_payload("EUR", number="A-1", payment_reference="RF18539007547034"))
    assert first.status_code == 201, first.text
    before = counts()
    payload = invoice_payload("EUR", number="A-2", payment_reference="RF18539007547034")
    payload["customer"] = dict(payload["customer"], external_ref="C-NEW")
    response = create(client, headers, payload)
    assert_json_error(response, 422, "validation_failed")
    assert "payment_reference" in response.json["errors"]
    assert counts() == before


# --- read --------------------------------------------------------------------------------------


def test_get_shows_amounts_status_and_timeline(client, session):
    creditor, headers = api_creditor("NO")
    create(client, headers, invoice_payload("NOK", number="2026-4"))
    invoice = stored(creditor, "2026-4")
    record_payment(invoice, 5000, actor="bank", paid_on=date.today(), method="bank_transfer")
    db.session.commit()

    response = client.get(f"{API}/invoices/2026-4", headers=headers)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json
    assert body["status"] == "partially_paid"
    assert body["amount_paid"] == 5000 and body["balance"] == body["total"] - 5000
    kinds = [e["kind"] for e in body["events"]]
    assert kinds == ["created", "payment_recorded", "status_changed"]
    payment = body["events"][1]
    assert payment["actor"] == "bank" and payment["data"]["amount"] == 5000
    assert datetime.fromisoformat(payment["created_at"]).utcoffset() == timedelta(0)
    assert "public_id" not in body and "date_of_birth" not in body["customer"]


def test_invoice_numbers_with_slashes_can_be_addressed(client, session):
    _creditor, headers = api_creditor("NO")
    assert create(client, headers, invoice_payload("NOK", number="2026/10/7")).status_code == 201
    assert client.get(f"{API}/invoices/2026/10/7", headers=headers).json["number"] == "2026/10/7"
    assert client.get(f"{API}/invoices/2026%2F10%2F7", headers=headers).status_code == 200
    link = client.post(f"{API}/invoices/2026/10/7/links", json={"channel": "email"}, headers=headers)
    assert link.status_code == 201
    assert client.post(f"{API}/invoices/2026/10/7/cancel", headers=headers).json["status"] == "cancelled"


def test_unknown_number_answers_404(client, session):
    _creditor, headers = api_creditor("NO")
    assert_json_error(client.get(f"{API}/invoices/nope", headers=headers), 404, "not_found")


# --- links -------------------------------------------------------------------------------------


def test_links_open_the_bill_until_revoked(client, app, session):
    _creditor, headers = api_creditor("NO")
    create(client, headers, invoice_payload("NOK", number="2026-5"))
    response = client.post(f"{API}/invoices/2026-5/links", json={"channel": "sms", "ttl_days": 7}, headers=headers)
    assert response.status_code == 201, response.text
    url = response.json["url"]
    assert url.startswith("https://pay.example.test/l/")
    token = url.rsplit("/", 1)[1]
    assert len(token) < 80 and "2026-5" not in url
    expires = datetime.fromisoformat(response.json["expires_at"])
    assert timedelta(days=7) - timedelta(minutes=1) < expires - datetime.now(UTC) <= timedelta(days=7)

    assert client.get(urlsplit(url).path).status_code == 303
    revoked = client.post(f"{API}/invoices/2026-5/links/revoke", headers=headers)
    assert revoked.status_code == 200 and revoked.json == {"revoked": 1}
    assert client.get(urlsplit(url).path).status_code == 404
    assert client.post(f"{API}/invoices/2026-5/links/revoke", headers=headers).json == {"revoked": 0}

    kinds = [e["kind"] for e in client.get(f"{API}/invoices/2026-5", headers=headers).json["events"]]
    assert kinds == ["created", "link_issued", "link_opened", "links_revoked", "links_revoked"]


def test_link_lifetime_defaults_to_the_configured_days(client, app, session):
    _creditor, headers = api_creditor("NO")
    create(client, headers, invoice_payload("NOK", number="2026-6"))
    response = client.post(f"{API}/invoices/2026-6/links", json={"channel": "letter"}, headers=headers)
    assert response.status_code == 201
    days = app.config["LINK_DEFAULT_TTL_DAYS"]
    left = datetime.fromisoformat(response.json["expires_at"]) - datetime.now(UTC)
    assert timedelta(days=days) - timedelta(minutes=1) < left <= timedelta(days=days)


@pytest.mark.parametrize(
    "body, field",
    [
        ({"channel": "fax"}, "channel"),
        ({}, "channel"),
        ({"channel": "sms", "ttl_days": 0}, "ttl_days"),
        ({"channel": "sms", "ttl_days": 366}, "ttl_days"),
        ({"channel": "sms", "ttl_days": "30"}, "ttl_days"),
        ({"channel": "sms", "ttl_days": 1.5}, "ttl_days"),
        ({"channel": "sms", "purpose": "admin"}, "purpose"),
        (["sms"], "body"),
    ],
)
def test_invalid_link_requests_answer_422_and_issue_nothing(client, session, body, field):
    _creditor, headers = api_creditor("NO")
    create(client, headers, invoice_payload("NOK", number="2026-7"))
    before = counts()
    response = client.post(f"{API}/invoices/2026-7/links", json=body, headers=headers)
    assert_json_error(response, 422, "validation_failed")
    assert field in response.json["errors"]
    assert counts() == before


def test_no_link_for_a_closed_invoice(client, session):
    _creditor, headers = api_creditor("NO")
    create(client, headers, invoice_payload("NOK", number="2026-8"))
    client.post(f"{API}/invoices/2026-8/cancel", headers=headers)
    before = counts()
    response = client.post(f"{API}/invoices/2026-8/links", json={"channel": "sms"}, headers=headers)
    assert_json_error(response, 422, "validation_failed")
    assert response.json["errors"] == {"invoice": "the invoice is cancelled"}
    assert counts() == before


# --- cancel ------------------------------------------------------------------------------------


def test_cancel_with_a_reason_then_again_is_409(client, session):
    _creditor, headers = api_creditor("NO")
    create(client, headers, invoice_payload("NOK", number="2026-9"))
    response = client.post(f"{API}/invoices/2026-9/cancel", json={"reason": "Sent in error"}, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json["status"] == "cancelled"
    change = response.json["events"][-1]
    assert change["kind"] == "status_changed"
    assert change["data"] == {"from": "open", "to": "cancelled", "reason": "Sent in error"}

    before = counts()
    again = client.post(f"{API}/invoices/2026-9/cancel", headers=headers)
    assert_json_error(again, 409, "illegal_transition")
    assert counts() == before


def test_an_invoice_with_payments_cannot_be_cancelled(client, session):
    creditor, headers = api_creditor("NO")
    create(client, headers, invoice_payload("NOK", number="2026-10"))
    record_payment(stored(creditor, "2026-10"), 100, actor="bank", paid_on=date.today(), method="bank_transfer")
    db.session.commit()
    before = counts()
    response = client.post(f"{API}/invoices/2026-10/cancel", headers=headers)
    assert_json_error(response, 409, "illegal_transition")
    assert "payments" in response.json["message"]
    assert counts() == before and stored(creditor, "2026-10").status == "partially_paid"


@pytest.mark.parametrize(
    "kwargs, status, code",
    [
        ({"data": "reason=oops", "content_type": "application/x-www-form-urlencoded"}, 415, "unsupported_media_type"),
        ({"data": "{oops", "content_type": "application/json"}, 400, "invalid_json"),
        ({"json": {"reason": "x" * 501}}, 422, "validation_failed"),
        ({"json": {"why": "no"}}, 422, "validation_failed"),
    ],
)
def test_bad_cancel_bodies_change_nothing(client, session, kwargs, status, code):
    creditor, headers = api_creditor("NO")
    create(client, headers, invoice_payload("NOK", number="2026-11"))
    before = counts()
    assert_json_error(client.post(f"{API}/invoices/2026-11/cancel", headers=headers, **kwargs), status, code)
    assert counts() == before and stored(creditor, "2026-11").status == "open"


# --- isolation between creditors ---------------------------------------------------------------


def test_one_creditor_never_sees_another_creditors_invoice(client, session):
    creditor_a, headers_a = api_creditor("NO")
    _creditor_b, headers_b = api_creditor("NO")
    payload = invoice_payload("NOK", number="SAME-1")
    payload["customer"] = dict(payload["customer"], name="Alice Secret")
    assert create(client, headers_a, payload).status_code == 201
    before = counts()

    unknown = client.get(f"{API}/invoices/NOPE-1", headers=headers_b)
    attempts = [
        client.get(f"{API}/invoices/SAME-1", headers=headers_b),
        client.post(f"{API}/invoices/SAME-1/links", json={"channel": "sms"}, headers=headers_b),
        client.post(f"{API}/invoices/SAME-1/links/revoke", headers=headers_b),
        client.post(f"{API}/invoices/SAME-1/cancel", json={"reason": "mine now"}, headers=headers_b),
    ]
    for response in attempts:
        assert_json_error(response, 404, "not_found")
        assert response.json == unknown.json
        assert "Alice" not in response.text
    assert counts() == before
    # The lists (invoices, the events feed) show B nothing of A's.
    for path in (f"{API}/invoices", f"{API}/events", f"{API}/invoices?customer={payload['customer']['external_ref']}"):
        listed = client.get(path, headers=headers_b)
        assert listed.status_code == 200 and listed.json["data"] == [], path
        assert "SAME-1" in client.get(path, headers=headers_a).text or path.endswith("/events"), path
    assert stored(creditor_a, "SAME-1").status == "open"

    # B has its own namespace of numbers and customers: the same number and customer ref are B's own.
    own = invoice_payload("NOK", number="SAME-1")
    own["customer"] = dict(own["customer"], name="Bob Own")
    mine = create(client, headers_b, own)
    assert mine.status_code == 201 and mine.json["customer"]["name"] == "Bob Own"
    assert client.get(f"{API}/invoices/SAME-1", headers=headers_a).json["customer"]["name"] == "Alice Secret"
    assert "Alice" not in client.get(f"{API}/invoices/SAME-1", headers=headers_b).text


# --- authentication ----------------------------------------------------------------------------


def _api_requests(app):
    """One request per API route that needs a key (the OpenAPI document does not)."""
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("api.") or rule.endpoint == "api.openapi":
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield method, re.sub(r"<(?:\w+:)?(?:number|external_ref|block_id)>", "X-1", rule.rule)


@pytest.mark.parametrize(
    "authorization, challenge",
    [
        (None, "Bearer"),
        ("Basic dXNlcjpwYXNz", "Bearer"),
        ("Bearer", "Bearer"),
        ("Bearer pk_unknown_key", 'Bearer error="invalid_token"'),
        ("Bearer not-even-our-format", 'Bearer error="invalid_token"'),
    ],
)
def test_every_route_but_the_document_needs_a_valid_key(client, app, session, authorization, challenge):
    _creditor, _headers = api_creditor("NO")
    headers = {"Authorization": authorization} if authorization else {}
    before = counts()
    requests = list(_api_requests(app))
    assert len(requests) == 21
    for method, path in requests:
        response = client.open(path, method=method, headers=headers, json=invoice_payload("NOK"))
        assert_json_error(response, 401, "unauthorized")
        assert response.headers["WWW-Authenticate"] == challenge
    assert counts() == before


def test_a_revoked_key_is_refused(client, session):
    creditor, headers = api_creditor("NO")
    assert create(client, headers, invoice_payload("NOK", number="2026-12")).status_code == 201
    revoke_api_keys(creditor)
    db.session.commit()
    response = client.get(f"{API}/invoices/2026-12", headers=headers)
    assert_json_error(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_the_key_is_accepted_with_any_case_of_the_scheme(client, session):
    _creditor, headers = api_creditor("NO")
    key = headers["Authorization"].split(" ", 1)[1]
    response = create(client, {"Authorization": f"bearer {key}"}, invoice_payload("NOK"))
    assert response.status_code == 201


# --- validation and bad bodies -----------------------------------------------------------------


def _set(payload: dict, path: str, value) -> dict:
    """A copy of `payload` with the value at a dotted path ('lines.0.unit_price') replaced."""
    payload = copy.deepcopy(payload)
    *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
    target = payload
    for key in parents:
        target = target[key]
    target[last] = value
    return payload


def _due_before_issue(payload):
    return dict(payload, due_date=(date.fromisoformat(payload["issue_date"]) - timedelta(days=1)).isoformat())


@pytest.mark.parametrize(
    "kind, change, field",
    [
        ("NO", lambda p: _set(p, "lines.0.unit_price", -100), "lines.0.unit_price"),
        ("NO", lambda p: _set(p, "total", -1), "total"),
        ("NO", lambda p: _set(p, "currency", "ABC"), "currency"),
        ("NO", lambda p: _set(p, "total", p["total"] + 1), "total"),
        ("DE", lambda p: _set(p, "payment_reference", "RF00 1234 5678"), "payment_reference"),
        ("NO", lambda p: _set(p, "payment_reference", "12345678"), "payment_reference"),
        ("NO", lambda p: _set(p, "lines.0.net", 9999), "lines.0.net"),
        ("NO", _due_before_issue, "due_date"),
        ("NO", lambda p: _set(p, "issue_date", "2026-02-30"), "issue_date"),
        ("NO", lambda p: _set(p, "lines", []), "lines"),
        ("NO", lambda p: _set(p, "lines.0.quantity", "many"), "lines.0.quantity"),
        ("NO", lambda p: _set(p, "lines.0.unit_price", 100.5), "lines.0.unit_price"),
        ("NO", lambda p: _set(p, "customer", "Kari"), "customer"),
        ("NO", lambda p: _set(p, "customer.phone", "91234567"), "customer.phone"),
        ("NO", lambda p: _set(p, "number", "../etc"), "number"),
        ("NO", lambda p: _set(p, "discount", 10), "discount"),
        ("NO", lambda p: {k: v for k, v in p.items() if k != "total"}, "total"),
    ],
)
def test_invalid_invoices_answer_422_by_field_and_write_nothing(client, session, kind, change, field):
    creditor, headers = api_creditor(kind)
    payload = change(invoice_payload(creditor.currency, lines=2))
    before = counts()
    response = create(client, headers, payload)
    assert_json_error(response, 422, "validation_failed")
    assert field in response.json["errors"], response.json
    assert counts() == before


def test_every_problem_is_listed_at_once(client, session):
    _creditor, headers = api_creditor("NO")
    payload = invoice_payload("ABC", lines=3)
    payload = _set(payload, "lines.1.unit_price", -5)
    payload = _set(payload, "lines.2.net", 1)
    payload = _set(payload, "customer.email", "not-an-address")
    response = create(client, headers, _due_before_issue(payload))
    assert response.status_code == 422
    assert set(response.json["errors"]) >= {
        "currency", "due_date", "lines.1.unit_price", "lines.2.net", "customer.email",
    }


@pytest.mark.parametrize(
    "kwargs, status, code",
    [
        ({"data": "number=1", "content_type": "application/x-www-form-urlencoded"}, 415, "unsupported_media_type"),
        ({"data": json.dumps(invoice_payload("NOK")), "content_type": "text/plain"}, 415, "unsupported_media_type"),
        ({"data": json.dumps(invoice_payload("NOK"))}, 415, "unsupported_media_type"),
        ({"data": '{"number": "1",', "content_type": "application/json"}, 400, "invalid_json"),
        ({"data": b"\xff\xfe{}", "content_type": "application/json"}, 400, "invalid_json"),
        ({"data": "", "content_type": "application/json"}, 400, "invalid_json"),
        ({"data": "[" * 100_000 + "]" * 100_000, "content_type": "application/json"}, 400, "invalid_json"),
        ({"json": [invoice_payload("NOK")]}, 422, "validation_failed"),
        ({"data": "null", "content_type": "application/json"}, 422, "validation_failed"),
    ],
)
def test_bodies_that_are_not_an_invoice_object_change_nothing(client, session, kwargs, status, code):
    _creditor, headers = api_creditor("NO")
    before = counts()
    response = client.post(f"{API}/invoices", headers=headers, **kwargs)
    assert_json_error(response, status, code)
    assert counts() == before


def test_a_body_over_one_megabyte_answers_413_json(client, app, session):
    _creditor, headers = api_creditor("NO")
    payload = invoice_payload("NOK", summary="x")
    payload["lines"][0]["note"] = "y" * app.config["MAX_CONTENT_LENGTH"]
    before = counts()
    response = create(client, headers, payload)
    assert_json_error(response, 413, "payload_too_large")
    assert counts() == before


def test_unknown_api_routes_and_methods_answer_json(client, session):
    _creditor, headers = api_creditor("NO")
    missing = client.get(f"{API}/customers", headers=headers)
    assert missing.status_code == 404 and missing.is_json
    not_allowed = client.delete(f"{API}/invoices/X-1", headers=headers)
    assert not_allowed.status_code == 405 and not_allowed.is_json


def test_the_dunning_answer_tells_the_creditors_reminders_to_wait_for_a_promise(client, app, session):
    from app.core.dates import local_today
    from app.resolutions.promises import make_promise

    creditor, headers = api_creditor("NO")
    today = local_today("NO", datetime.now(UTC))
    quiet = {"hand_off_not_before": None, "plan": None, "excluded": False, "next_step": None}
    # Not yet due: neither a reminder nor the hand-off (the issue's SM-900001, due in 13 days).
    create(client, headers, invoice_payload("NOK", number="2026-8"))
    assert client.get(f"{API}/invoices/2026-8", headers=headers).json["dunning"] == {
        "may_remind": False, "may_hand_off": False, "paused_by": "not_due",
        "paused_until": (today + timedelta(days=5)).isoformat(), **quiet}
    create(client, headers, invoice_payload("NOK", number="2026-9", issue_date=(today - timedelta(days=30)).isoformat(),
                                            due_date=(today - timedelta(days=10)).isoformat()))
    assert client.get(f"{API}/invoices/2026-9", headers=headers).json["dunning"] == {
        "may_remind": True, "may_hand_off": True, "paused_by": None, "paused_until": None, **quiet}
    invoice = stored(creditor, "2026-9")
    with app.test_request_context():
        make_promise(invoice, today + timedelta(days=5), locale="nb", submission_key="k", today=today)
    db.session.commit()
    assert client.get(f"{API}/invoices/2026-9", headers=headers).json["dunning"] == {
        "may_remind": False, "may_hand_off": False, "paused_by": "promise",
        "paused_until": (today + timedelta(days=5 + creditor.grace_days)).isoformat(), **quiet}


# --- a key's last use ----------------------------------------------------------------------------


def _api_key_writes(client, headers, path) -> list[str]:
    from tests.support.database import recorded_statements

    with client.application.app_context():
        engine = db.engine
    with recorded_statements(engine) as statements:
        assert client.get(path, headers=headers).status_code == 200
    return [s for s in statements if s.lstrip().upper().startswith("UPDATE API_KEYS")]


def test_a_keys_last_use_is_written_at_most_once_a_minute(client, session):
    """Written on every call, the key's row would be locked by each call until it commits: an integration's
    calls with one key at once would wait in turn. Kept to the minute, a call within it writes nothing."""
    from app.creditors.models import ApiKey

    creditor, headers = api_creditor("NO")
    assert create(client, headers, invoice_payload("NOK", number="2026-9")).status_code == 201
    path = f"{API}/invoices/2026-9"
    key = db.session.scalar(select(ApiKey).where(ApiKey.creditor_id == creditor.id))
    db.session.refresh(key)
    assert key.last_used_at is not None
    assert _api_key_writes(client, headers, path) == []  # within the minute
    key.last_used_at -= timedelta(minutes=2)
    db.session.commit()
    before = key.last_used_at
    assert len(_api_key_writes(client, headers, path)) == 1
    db.session.refresh(key)
    assert key.last_used_at > before + timedelta(minutes=1)


@pytest.fixture
def key_race_app(app):
    from tests.support.races import racing_app

    yield from racing_app(app, 4)


def test_two_calls_with_one_key_at_once_do_not_wait_for_each_other(key_race_app):
    """PostgreSQL: a call in progress (its transaction open, the key used) does not hold the key's row,
    so a second call with the same key goes on at once (a lock wait would end in lock_timeout)."""
    from sqlalchemy import delete, text

    from app.creditors.models import ApiKey, Creditor
    from app.creditors.services import api_key_for

    with key_race_app.app_context():
        creditor = make_creditor("NO")
        key = create_api_key(creditor)
        db.session.commit()
        creditor_id = creditor.id
        assert api_key_for(key) is not None  # the first use is recorded
        db.session.commit()
        db.session.remove()
    try:
        with key_race_app.app_context():
            assert api_key_for(key) is not None
            db.session.flush()  # the first call's work so far, its transaction open
            with key_race_app.app_context():  # a second call, on a connection of its own
                db.session.execute(text("SET LOCAL lock_timeout = '2s'"))
                assert api_key_for(key) is not None
                db.session.flush()
                db.session.commit()
                db.session.remove()
            db.session.commit()
            db.session.remove()
    finally:
        with key_race_app.app_context(), db.engine.begin() as conn:
            conn.execute(delete(ApiKey).where(ApiKey.creditor_id == creditor_id))
            conn.execute(delete(Creditor).where(Creditor.id == creditor_id))
