"""A NUL character (`\\x00`, `%00`, `\\u0000`) anywhere a request can carry one is refused before any query:
PostgreSQL's text cannot hold it, and the query would fail as a server error (found by fuzzing the
partner API on PostgreSQL: `GET /cases?after=%F2%B7%9E%96%00`)."""

from __future__ import annotations

import json
import re

from app.creditors.services import create_api_key
from app.debt_collection import partners as partner_service
from app.extensions import db
from tests.factories import invoice_payload, make_creditor


def test_nul_in_a_path_is_not_found_and_in_a_query_is_a_bad_request(app, client):
    with app.test_request_context():
        made = partner_service.add_partner("nul-collect", "Nul Collect", "https://partner.example.test/cases")
        db.session.commit()
    headers = {"Authorization": f"Bearer {made.api_key}"}
    listed = client.get("/api/partner/v1/cases?after=%F2%B7%9E%96%00&status=all", headers=headers)
    assert listed.status_code == 400 and listed.get_json()["error"] == "bad_request"
    case = client.get("/api/partner/v1/cases/case_%00", headers=headers)
    assert case.status_code == 404 and case.get_json()["error"] == "not_found"
    assert client.get("/b/abc%00def").status_code == 404
    assert client.get("/backoffice/?q=%00").status_code == 400


def test_nul_in_a_json_body_is_refused_as_invalid(app, client):
    with app.test_request_context():
        creditor = make_creditor()
        key = create_api_key(creditor)
        db.session.commit()
    payload = invoice_payload(creditor.currency, 1, number="NUL-1")
    payload["customer"]["name"] = "Kari\u0000 Nordmann"
    answer = client.post("/api/v1/invoices", data=json.dumps(payload), content_type="application/json",
                         headers={"Authorization": f"Bearer {key}"})
    assert answer.status_code == 400 and answer.get_json()["error"] == "invalid_json"
    assert "NUL" in answer.get_json()["message"]


def test_nul_in_a_form_field_is_a_bad_request(client):
    page = client.get("/backoffice/sign-in").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    answer = client.post("/backoffice/sign-in", data={"csrf_token": token, "email": "a@example.test\x00",
                                                       "password": "x"})
    assert answer.status_code == 400
