"""The OpenAPI 3.1 document of the partner API (`/api/partner/v1/openapi.json`), built once per app.

Request schemas come from the pydantic models that validate the bodies (`views.api`); response
schemas are written here, and tests/functional/test_fuzz_api.py checks every answer against them
(schemathesis). The readable reference is docs/debt-collection.md, "The partner API"."""

from __future__ import annotations

import json

from flask import Response, current_app
from flask.blueprints import BlueprintSetupState

from app.debt_collection.models import CaseStatus
from app.debt_collection.services import EVENT_KINDS

REF = "#/components/schemas/{model}"
STRING = {"type": "string"}
DATE = {"type": "string", "format": "date"}
DATE_TIME = {"type": "string", "format": "date-time", "description": "UTC"}
AMOUNT = {"type": "integer", "minimum": 0, "description": "Minor units (øre, cent)"}
EXAMPLE_CASE_ID = "case_FfnwjJmRHjKxWhY9xxp--w"


def remember_url_prefix(state: BlueprintSetupState) -> None:
    state.app.extensions["partner_api_url_prefix"] = state.url_prefix or ""


def openapi_document() -> Response:
    text = current_app.extensions.get("partner_api_openapi")
    if text is None:
        server = current_app.config["PORTAL_BASE_URL"] + current_app.extensions["partner_api_url_prefix"]
        text = current_app.extensions["partner_api_openapi"] = json.dumps(build_document(server))
    return Response(text, mimetype="application/json")


def _ref(name: str) -> dict:
    return {"$ref": REF.format(model=name)}


def _nullable(schema: dict) -> dict:
    return {"anyOf": [schema, {"type": "null"}]}


def _object(properties: dict, description: str, required: list[str] | None = None) -> dict:
    return {"type": "object", "description": description, "properties": properties,
            "required": list(properties) if required is None else required, "additionalProperties": False}


def _json(schema: dict, description: str, example: dict | None = None) -> dict:
    content: dict = {"schema": schema}
    if example is not None:
        content["example"] = example
    return {"description": description, "content": {"application/json": content}}


ERRORS = {
    422: ("ValidationFailed", "Invalid fields"),
    400: ("InvalidRequest", "The body is not valid JSON, or a query parameter is wrong (error: invalid_json, "
                            "bad_status)"),
    401: ("Unauthorized", "No partner API key, or an unknown, revoked or disabled one (WWW-Authenticate: Bearer)"),
    404: ("NotFound", "No case with this id among yours"),
    409: ("Conflict", "The event id was reported before with other content, or the case's state does not allow "
                      "this (error: conflict, illegal_transition)"),
    413: ("PayloadTooLarge", "The body is larger than 1 MB"),
    415: ("UnsupportedMediaType", "The body is not sent as application/json"),
    429: ("TooManyRequests", "More than PARTNER_API_RATE_LIMIT requests (Retry-After says when to try again)"),
}


def _errors(*codes: int) -> dict:
    return {str(code): {"$ref": f"#/components/responses/{ERRORS[code][0]}"} for code in (401, 429, *codes)}


CASE_ID = {"name": "case_id", "in": "path", "required": True, "description": "The case's id (`case_…`)",
           "schema": {"type": "string", "maxLength": 40}, "example": EXAMPLE_CASE_ID}


def _operation(operation_id: str, summary: str, responses: dict, *, body: dict | None = None, case: bool = True,
               errors: tuple[int, ...] = (), parameters: list | None = None) -> dict:
    operation: dict = {"operationId": operation_id, "summary": summary}
    params = ([{"$ref": "#/components/parameters/case_id"}] if case else []) + (parameters or [])
    if params:
        operation["parameters"] = params
    if body is not None:
        operation["requestBody"] = body
    operation["responses"] = {**responses, **_errors(*errors)}
    return operation


def build_document(server_url: str) -> dict:
    from app.debt_collection.views.api import AckIn, EventIn

    request_schemas: dict = {}
    for model in (AckIn, EventIn):
        schema = model.model_json_schema(ref_template=REF)
        request_schemas.update(schema.pop("$defs", {}))
        request_schemas[model.__name__] = schema
    case = _ref("Case")
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Payment portal partner API",
            "version": "1.1.0",
            "description": (
                "For a creditor's debt-collection partner: list the cases handed to you, fetch a case file and "
                "the invoice's PDF, acknowledge a case, report payments, your costs, a payment plan, new contact "
                "details of the debtor, a message for the creditor, give a case back with a reason, and report the "
                "case's end. Amounts are integer minor units. See docs/debt-collection.md."
            ),
        },
        "servers": [{"url": server_url}],
        "security": [{"bearerAuth": []}],
        "paths": {
            "/cases": {"get": _operation(
                "list_cases", "Your cases, oldest first",
                {"200": _json(_ref("CaseList"), "A page of cases")}, case=False, errors=(400, 404),
                parameters=[
                    {"name": "status", "in": "query", "required": False, "description": "new (not acknowledged "
                     "yet), open (not over) or all", "schema": {"type": "string", "enum": ["new", "open", "all"],
                                                                "default": "new"}},
                    {"name": "after", "in": "query", "required": False, "description": "The `next` of the page "
                     "before: a case id (404 when it is not one of yours)", "schema": {"type": "string"}},
                    {"name": "limit", "in": "query", "required": False, "description": "Cases per page, at most "
                     "100 (anything else reads as 50)", "schema": {"type": "integer", "minimum": 1,
                                                                   "maximum": 100, "default": 50}},
                ])},
            "/cases/{case_id}": {"get": _operation(
                "get_case", "A case with its case file as it was sent",
                {"200": _json(_ref("CaseWithFile"), "The case")}, errors=(404,))},
            "/cases/{case_id}/ack": {"post": _operation(
                "acknowledge_case", "You have the case (the same call again changes nothing)",
                {"200": _json(case, "The case, acknowledged")},
                body={"required": False, **_json(_ref("AckIn"), "Your own reference, optional",
                                                 {"reference": "NC-4711"})},
                errors=(400, 404, 409, 413, 415, 422))},
            "/cases/{case_id}/events": {"post": _operation(
                "report_event", "Report what happened: a payment, costs, a plan, contact details, a message, the "
                                "case given back or closed, a recall confirmed",
                {"201": _json(_ref("EventResult"), "Recorded and carried out"),
                 "200": _json(_ref("EventResult"), "This event id was applied before: nothing new")},
                body={"required": True, **_json(_ref("EventIn"), "The event", {
                    "id": "pay-981", "type": "payment_received", "amount": 100000, "occurred_on": "2026-12-04"})},
                errors=(400, 404, 409, 413, 415, 422))},
            "/cases/{case_id}/invoice.pdf": {"get": _operation(
                "invoice_pdf", "The invoice as the customer has it, in the customer's language",
                {"200": {"description": "The PDF", "content": {"application/pdf": {
                    "schema": {"type": "string", "format": "binary"}}}}}, errors=(404,))},
            "/openapi.json": {"get": {
                "operationId": "openapi", "summary": "This document", "security": [],
                "responses": {"200": {"description": "The OpenAPI 3.1 document",
                                      "content": {"application/json": {"schema": {"type": "object"}}}}}}},
        },
        "components": {
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer",
                                               "description": "A partner's API key (pk_partner_…)"}},
            "parameters": {"case_id": CASE_ID},
            "responses": _error_responses(),
            "schemas": {**request_schemas, **_response_schemas()},
        },
    }


def _error_responses() -> dict:
    responses = {
        name: {"description": description, "content": {"application/json": {"schema": _ref("Error")}}}
        for name, description in ERRORS.values() if name != "ValidationFailed"
    }
    responses["TooManyRequests"]["headers"] = {"Retry-After": {"description": "Seconds to wait",
                                                               "schema": {"type": "string"}}}
    responses["ValidationFailed"] = _json(
        _ref("ValidationError"), "Invalid fields, every problem by field name",
        {"error": "validation_failed", "message": "Some fields are invalid; see errors.",
         "errors": {"amount": "required for a payment"}})
    return responses


def _response_schemas() -> dict:
    amounts = _object({"principal": AMOUNT, "fees": AMOUNT, "interest": AMOUNT, "total": AMOUNT},
                      "What was handed off, split")
    case_properties = {
        "case_id": STRING,
        "status": {"type": "string", "enum": CaseStatus.values()},
        "partner_reference": _nullable({"type": "string", "description": "Your reference, from the acknowledgement"}),
        "creditor": {"type": "string", "description": "The creditor's slug"},
        "invoice_number": STRING,
        "currency": {"type": "string", "description": "ISO 4217"},
        "handed_off": amounts,
        "outstanding": {**AMOUNT, "description": "What is owed on the bill now, minor units"},
        "handed_off_at": DATE_TIME,
        "acknowledged_at": _nullable(DATE_TIME),
    }
    return {
        "Case": _object(case_properties, "A case handed to you"),
        "CaseWithFile": _object({**case_properties, "case_file": {
            "type": "object", "description": "The case file as it was sent (docs/case-file-v1.schema.json)"}},
            "A case and its case file"),
        "CaseList": _object({"cases": {"type": "array", "items": _ref("Case")},
                             "next": _nullable({"type": "string", "description": "`after` for the next page"})},
                            "A page of your cases"),
        "Event": _object({
            "id": STRING,
            "type": {"type": "string", "enum": list(EVENT_KINDS)},
            "amount": _nullable({"type": "integer", "minimum": 1}),
            "currency": _nullable(STRING),
            "occurred_on": _nullable(DATE),
        }, "The event as recorded"),
        "EventResult": _object({"event": _ref("Event"), "case": _ref("Case")}, "The event and the case after it"),
        "Error": {"type": "object", "properties": {"error": {"type": "string", "description": "A stable code"},
                                                   "message": {"type": "string", "description": "For people"}},
                  "required": ["error", "message"]},
        "ValidationError": {
            "type": "object",
            "properties": {"error": {"const": "validation_failed"}, "message": STRING,
                           "errors": {"type": "object", "additionalProperties": STRING}},
            "required": ["error", "message", "errors"],
        },
    }
