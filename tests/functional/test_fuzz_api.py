"""Fuzzing both JSON APIs from their OpenAPI documents (schemathesis, through the Flask app in-process):
every operation, with valid and with invalid input, authenticated, a bounded number of examples and a
fixed seed. No answer may be a server error, and every answer must be one the document lists, with its
content type, headers and body schema.

`FUZZ_EXAMPLES` (default 25) sets the examples per operation and mode, `FUZZ_SEED` the seed (to explore
further by hand); CI keeps both defaults, so this module stays within about half a minute."""

from __future__ import annotations

import os
from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app.creditors.services import create_api_key
from app.debt_collection.services import hand_off
from app.debt_collection.views.openapi import EXAMPLE_CASE_ID
from app.extensions import db, limiter
from tests.factories import make_creditor, make_invoice
from tests.functional.collection_helpers import creditor_with_policy, overdue, partner_for, today_for

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
SEED = int(os.environ.get("FUZZ_SEED", "20261206"))
CREDITOR_OPERATIONS = {"POST /invoices", "GET /invoices/{number}", "POST /invoices/{number}/links",
                       "POST /invoices/{number}/links/revoke", "POST /invoices/{number}/reminders",
                       "POST /invoices/{number}/cancel", "PUT /invoices/{number}/dunning",
                       "GET /customers/{external_ref}/contact", "PUT /customers/{external_ref}/contact",
                       "PUT /customers/{external_ref}/dunning", "POST /invoices/{number}/credit-notes",
                       "GET /invoices/{number}/credit-notes", "GET /invoices", "GET /events",
                       "GET /content/blocks", "POST /content/blocks", "GET /content/blocks/{block_id}",
                       "PUT /content/blocks/{block_id}", "POST /content/blocks/{block_id}/stop",
                       "PUT /customers/{external_ref}/tags", "GET /analytics/funnel"}
PARTNER_OPERATIONS = {"GET /cases", "GET /cases/{case_id}", "POST /cases/{case_id}/ack", "POST /cases/{case_id}/events",
                      "GET /cases/{case_id}/invoice.pdf"}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]


def fuzz(app, document: str, headers: dict[str, str]) -> dict[str, Counter]:
    """Run every operation of the document at `document` through the app; returns the statuses seen per operation."""
    schema = schemathesis.openapi.from_wsgi(document, app)
    ran: dict[str, Counter] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        strategies = [operation.as_strategy(generation_mode=mode)
                      for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)]
        strategies += schema.get_strategies_from_examples(operation)
        ran[operation.label] = Counter()
        _run(st.one_of(strategies), ran[operation.label], headers)
    return ran


def _run(strategy, statuses: Counter, headers: dict[str, str]) -> None:

    @seed(SEED)
    @settings(max_examples=EXAMPLES * 2, deadline=None, database=None, phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def run(case):
        response = case.call(headers=headers)
        statuses[response.status_code] += 1
        case.validate_response(response, checks=CHECKS, headers=headers)

    run()


@pytest.fixture
def unlimited(app, monkeypatch):
    monkeypatch.setitem(app.config, "PARTNER_API_RATE_LIMIT", "100000 per minute")
    limiter.reset(app)


def test_the_creditor_api_answers_every_input_within_its_document(app, session, unlimited):
    with app.test_request_context():
        creditor = make_creditor()
        make_invoice(creditor, number="2026-10002")
        key = create_api_key(creditor)
        db.session.commit()
    ran = fuzz(app, "/api/v1/openapi.json", {"Authorization": f"Bearer {key}"})
    assert set(ran) == CREDITOR_OPERATIONS
    assert ran["POST /invoices"][201]  # the document's example makes the invoice the others' examples name
    assert ran["GET /invoices/{number}"][200]
    assert ran["GET /invoices"][200] and ran["GET /invoices"][422]
    assert ran["GET /events"][200] and ran["GET /events"][422]
    assert ran["POST /content/blocks"][201] and ran["POST /content/blocks"][422]


def test_the_partner_api_answers_every_input_within_its_document(app, session, unlimited):
    made = partner_for(app, "https://partner.example.test/cases")
    creditor = creditor_with_policy(app, made.partner)
    bills = [overdue(app, creditor) for _ in range(2)]
    with app.test_request_context():
        case = hand_off(bills[0].id, actor="scheduler", today_for=today_for)
        case.public_id = EXAMPLE_CASE_ID  # the document's example names a case of this partner
        hand_off(bills[1].id, actor="scheduler", today_for=today_for)
        db.session.commit()
    ran = fuzz(app, "/api/partner/v1/openapi.json", {"Authorization": f"Bearer {made.api_key}"})
    assert set(ran) == PARTNER_OPERATIONS
    assert ran["GET /cases"][200] and ran["GET /cases/{case_id}"][200] and ran["GET /cases/{case_id}/invoice.pdf"][200]
