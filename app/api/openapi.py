"""The OpenAPI 3.1 document of the API, built per app on first request and kept in app.extensions.

Request schemas come from the pydantic models (the same ones that validate); response schemas
are written here and checked against the serializers' output by tests/functional/test_openapi.py.
"""

from __future__ import annotations

import json

from flask import Response, current_app
from flask.blueprints import BlueprintSetupState

from app.api.schemas import (
    BlockIn,
    CancelIn,
    ContactIn,
    CreditNoteIn,
    CustomerDunningIn,
    InvoiceDunningIn,
    LinkIn,
    ReminderIn,
    TagsIn,
)
from app.billing.models import CUSTOMER_KINDS, LINE_KINDS, InvoiceKind, InvoiceStatus
from app.billing.schemas import INVOICE_NUMBER, InvoiceIn
from app.billing.texts import text_schema
from app.events.catalogue import DATA as EVENT_DATA
from app.events.catalogue import TYPES as EVENT_TYPES
from app.i18n import SUPPORTED_LOCALES

REF = "#/components/schemas/{model}"
EXAMPLE_INVOICE = {
    "number": "2026-10001",
    "issue_date": "2026-10-01",
    "due_date": "2026-10-15",
    "currency": "NOK",
    "summary": "Electricity, September 2026",
    "customer": {
        "external_ref": "C-1001",
        "name": "Kari Nordmann",
        "email": "kari@example.com",
        "phone": "+4791234567",
        "address": {"line1": "Storgata 1", "postcode": "0150", "city": "Oslo", "country": "NO"},
        "preferred_locale": "nb",
    },
    "lines": [
        {"description": {"nb": "Strøm 412 kWh", "en": "Electricity 412 kWh"}, "quantity": "412", "unit": "kWh",
         "unit_price": 121, "vat_rate": 2500},
        {"kind": "reminder_fee", "description": "Reminder fee", "unit_price": 3500, "note": "First reminder"},
    ],
    "total": 65815,
}

_NUMBER_PARAMETER = {
    "name": "number",
    "in": "path",
    "required": True,
    "description": "The invoice number as sent when the invoice was created; it may contain '/'.",
    "schema": {"type": "string", "pattern": INVOICE_NUMBER},
    "example": EXAMPLE_INVOICE["number"],
}


_BLOCK_ID_PARAMETER = {
    "name": "block_id",
    "in": "path",
    "required": True,
    "description": "The content block's id (blk_...), as the API gave it.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 32},
}
EXAMPLE_BLOCK = {
    "name": "Fibre offer", "kind": "offer", "placements": ["bill", "receipt"], "action": "link",
    "target_url": "https://example.com/fibre", "targeting": {"statuses": ["due_soon", "not_due"], "tags": ["fibre"]},
    "texts": {"en": {"title": "Faster internet", "body": "Get **fibre** now.", "cta": "See the offer"},
              "nb": {"title": "Raskere internett", "body": "Få **fiber** nå.", "cta": "Se tilbudet"}},
}
_EXTERNAL_REF_PARAMETER = {
    "name": "external_ref",
    "in": "path",
    "required": True,
    "description": "The customer's reference as you sent it with their invoices (customer.external_ref).",
    "schema": {"type": "string", "minLength": 1, "maxLength": 64},
}
EXAMPLE_CONTACT = {
    "email": "kari@example.com",
    "phone": "+4791234567",
    "address": {"line1": "Storgata 1", "postcode": "0150", "city": "Oslo", "country": "NO"},
    "preferred_channel": "sms",
    "preferred_locale": "nb",
    "consents": {"email": True, "sms": True, "electronic_notices": False},
}
#: Why reminders (and the hand-off) wait today: the pause rule's reasons, a question of the customer
#: waiting for an answer, and a bill not yet past its due date.
PAUSED_BY = ["paid", "closed", "in_collection", "dispute", "deferral_request", "deferral", "promise", "plan",
             "plan_request", "disputed", "on_hold", "open_question", "not_due"]


def remember_url_prefix(state: BlueprintSetupState) -> None:
    """Keep the blueprint's mount point (e.g. /api/v1), for the document's server URL."""
    state.app.extensions["api_url_prefix"] = state.url_prefix or ""


def openapi_document() -> Response:
    """The document as JSON (keys in their written order), built once per app."""
    text = current_app.extensions.get("api_openapi")
    if text is None:
        server = current_app.config["PORTAL_BASE_URL"] + current_app.extensions["api_url_prefix"]
        text = current_app.extensions["api_openapi"] = json.dumps(build_document(server))
    return Response(text, mimetype="application/json")


def build_document(server_url: str) -> dict:
    """The whole document, for the API served at `server_url`."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Payment portal creditor API",
            "version": "1.0.0",
            "description": (
                "Create invoices (customer, invoice and lines in one idempotent request), read them with "
                "their timeline and what happens next by their dunning plan, issue and revoke signed links to "
                "the bill page, cancel; keep customers' contact points and preferences, choose the dunning plan "
                "of an invoice and exclude an invoice or a customer from the portal's reminders. Amounts are "
                "integer minor units; VAT rates are basis points (2500 = 25 %). See docs/api.md."
            ),
        },
        "servers": [{"url": server_url}],
        "security": [{"bearerAuth": []}],
        "paths": _paths(),
        "components": {
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "description": "A creditor's API key"},
            },
            "parameters": {"number": _NUMBER_PARAMETER, "external_ref": _EXTERNAL_REF_PARAMETER,
                           "block_id": _BLOCK_ID_PARAMETER},
            "responses": _error_responses(),
            "schemas": {**_request_schemas(), **_response_schemas()},
        },
    }


def _ref(name: str) -> dict:
    return {"$ref": REF.format(model=name)}


def _json(schema: dict, description: str, example: dict | None = None) -> dict:
    content = {"schema": schema}
    if example is not None:
        content["example"] = example
    return {"description": description, "content": {"application/json": content}}


def _errors(*codes: int) -> dict:
    names = {400: "InvalidJson", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 409: "Conflict",
             413: "PayloadTooLarge", 415: "UnsupportedMediaType", 422: "ValidationFailed"}
    return {str(code): {"$ref": f"#/components/responses/{names[code]}"} for code in codes}


def _operation(operation_id: str, summary: str, responses: dict, body: dict | None = None,
               number: bool = True, errors: tuple[int, ...] = (), parameter: str | None = None) -> dict:
    operation = {"operationId": operation_id, "summary": summary}
    if number or parameter:
        operation["parameters"] = [{"$ref": f"#/components/parameters/{parameter or 'number'}"}]
    if body is not None:
        operation["requestBody"] = body
    operation["responses"] = {**responses, **_errors(401, *errors)}
    return operation


def _query(name: str, schema: dict, description: str) -> dict:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


def _paths() -> dict:
    invoice = _ref("Invoice")
    return {
        "/invoices": {
            "post": _operation(
                "create_invoice",
                "Create an invoice with its customer and lines (idempotent on the invoice number). 422, naming the "
                "field, with nothing saved: a currency you cannot be paid in (not your bank account's and no payment "
                "provider you configured takes it), an issue_date after today where you are, a due_date before the "
                "issue_date",
                {
                    "201": {
                        **_json(invoice, "Created"),
                        "headers": {"Location": {"description": "The invoice's URL", "schema": {"type": "string"}}},
                    },
                    "200": _json(invoice, "The same request was made before: the stored invoice, unchanged"),
                },
                body={"required": True, **_json(_ref("InvoiceIn"), "The invoice", EXAMPLE_INVOICE)},
                number=False, errors=(400, 409, 413, 415, 422),
            ),
            "get": {
                **_operation("list_invoices", "Your invoices, oldest first, filtered, a page at a time",
                             {"200": _json(_ref("InvoiceList"), "A page of invoices")}, number=False,
                             errors=(400, 422)),
                "parameters": [
                    _query("status", {"type": "string"}, "Only these statuses (comma-separated, or the "
                                                         "parameter repeated): " + ", ".join(InvoiceStatus.values())),
                    _query("due_from", DATE, "Due on or after this day"),
                    _query("due_to", DATE, "Due on or before this day"),
                    _query("customer", {"type": "string", "maxLength": 64}, "Only this customer's (external_ref)"),
                    _query("updated_since", {"type": "string", "format": "date-time"},
                           "Only invoices changed at or after this time (with its offset)"),
                    _query("after", {"type": "string", "maxLength": 200}, "next_cursor of the previous page"),
                    _query("limit", {"type": "integer", "minimum": 1, "maximum": 200}, "At most this many (50)"),
                ],
            },
        },
        "/events": {
            "get": {
                **_operation("list_events", "Your events, oldest first, each once (the events feed)",
                             {"200": _json(_ref("EventList"), "The next events")}, number=False, errors=(400, 422)),
                "parameters": [
                    _query("after", {"type": "string", "maxLength": 200},
                           "next_cursor of the previous answer; none: from the first event"),
                    _query("limit", {"type": "integer", "minimum": 1, "maximum": 500}, "At most this many (100)"),
                ],
            },
        },
        "/analytics/funnel": {
            "get": {
                **_operation("analytics_funnel", "Your reminders' funnel (sent, delivered, opened, paid) and your "
                             "bills' outcomes, split by one dimension (live keys; docs/analytics.md)",
                             {"200": _json(_ref("Funnel"), "The funnel of the period")}, number=False,
                             errors=(400, 403, 422)),
                "parameters": [
                    _query("from", DATE, "First day (moved to its week's Monday); default: 11 weeks before this week"),
                    _query("to", DATE, "Last day (its whole week counts); default: this week"),
                    _query("by", {"type": "string", "enum": ["week", "channel", "step", "plan", "language", "variant"]},
                           "The dimension the rows split by (week)"),
                    _query("channel", {"type": "string", "enum": ["sms", "email", "letter"]}, "Only this channel"),
                    _query("step", {"type": "integer", "minimum": 0}, "Only this reminder step (its position)"),
                    _query("plan", {"type": "integer", "minimum": 0}, "Only this plan version (its id)"),
                    _query("language", {"type": "string", "maxLength": 40}, "Only messages in this language"),
                    _query("variant", {"type": "string", "maxLength": 40},
                           "Only this text variant; '-': messages without a variant"),
                ],
            },
        },
        "/invoices/{number}": {
            "get": _operation(
                "get_invoice", "An invoice with its customer, lines, amounts and timeline",
                {"200": _json(invoice, "The invoice")}, errors=(404,),
            ),
        },
        "/invoices/{number}/links": {
            "post": _operation(
                "issue_link", "Issue a signed link to the invoice's bill page",
                {"201": _json(_ref("Link"), "The link to send to the customer")},
                body={"required": True,
                      **_json(_ref("LinkIn"), "Channel and lifetime", {"channel": "sms", "ttl_days": 30})},
                errors=(400, 404, 413, 415, 422),
            ),
        },
        "/invoices/{number}/links/revoke": {
            "post": _operation(
                "revoke_links", "Revoke every live link of the invoice",
                {"200": _json(_ref("RevokedLinks"), "How many links were revoked")}, errors=(404,),
            ),
        },
        "/invoices/{number}/dunning": {
            "put": _operation(
                "set_invoice_dunning",
                "Remind the invoice by one of your dunning plans, or exclude it from the portal's reminders",
                {"200": _json(_ref("Dunning"), "The invoice's reminders now")},
                body={"required": True, **_json(_ref("InvoiceDunningIn"), "The plan (by name), or the exclusion",
                                                {"plan": "standard", "excluded": False})},
                errors=(400, 404, 409, 413, 415, 422),
            ),
        },
        "/customers/{external_ref}/contact": {
            "get": _operation(
                "get_contact", "A customer's contact points and preferences for reminders",
                {"200": _json(_ref("Contact"), "The customer's contact points")}, number=False,
                parameter="external_ref", errors=(404,),
            ),
            "put": _operation(
                "update_contact",
                "Change a customer's contact points and preferences (the fields given; null clears one)",
                {"200": _json(_ref("Contact"), "The customer's contact points now")},
                body={"required": True, **_json(_ref("ContactIn"), "What changes", EXAMPLE_CONTACT)},
                number=False, parameter="external_ref", errors=(400, 404, 413, 415, 422),
            ),
        },
        "/customers/{external_ref}/tags": {
            "put": _operation(
                "set_tags", "Set the tags content blocks may target for a customer (replacing those before)",
                {"200": _json(_ref("CustomerTags"), "The customer's tags now")},
                body={"required": True, **_json(_ref("TagsIn"), "The tags", {"tags": ["fibre", "vip"]})},
                number=False, parameter="external_ref", errors=(400, 404, 413, 415, 422),
            ),
        },
        "/content/blocks": {
            "get": _operation("list_blocks", "Your content blocks in the key's mode (docs/content.md)",
                              {"200": _json(_ref("BlockList"), "The blocks")}, number=False),
            "post": _operation(
                "create_block", "Write a content block for the bill page, the receipt or reminder e-mails",
                {"201": _json(_ref("Block"), "The block, made")},
                body={"required": True, **_json(_ref("BlockIn"), "The block", EXAMPLE_BLOCK)},
                number=False, errors=(400, 413, 415, 422),
            ),
        },
        "/content/blocks/{block_id}": {
            "get": _operation("get_block", "One content block", {"200": _json(_ref("Block"), "The block")},
                              number=False, parameter="block_id", errors=(404,)),
            "put": _operation(
                "update_block", "Replace a content block's settings and texts",
                {"200": _json(_ref("Block"), "The block now")},
                body={"required": True, **_json(_ref("BlockIn"), "The block", EXAMPLE_BLOCK)},
                number=False, parameter="block_id", errors=(400, 404, 413, 415, 422),
            ),
        },
        "/content/blocks/{block_id}/stop": {
            "post": _operation("stop_block", "Stop a content block: shown nowhere from the next request",
                               {"200": _json(_ref("Block"), "The block, stopped")}, number=False,
                               parameter="block_id", errors=(404,)),
        },
        "/customers/{external_ref}/dunning": {
            "put": _operation(
                "set_customer_dunning", "Exclude every bill of a customer from the portal's reminders, or not",
                {"200": _json(_ref("CustomerDunning"), "The customer's exclusion now")},
                body={"required": True, **_json(_ref("CustomerDunningIn"), "Excluded or not", {"excluded": True})},
                number=False, parameter="external_ref", errors=(400, 404, 413, 415, 422),
            ),
        },
        "/invoices/{number}/reminders": {
            "post": _operation(
                "record_reminder",
                "Record a reminder your dunning system sent (a final one only after the due date)",
                {"201": _json(_ref("Reminder"), "The reminder, recorded"),
                 "200": _json(_ref("Reminder"), "The same id was recorded before: nothing new")},
                body={"required": True, **_json(_ref("ReminderIn"), "The reminder",
                                                {"channel": "sms", "final": True, "id": "rem-2026-11-0042",
                                                 "sent_at": "2026-11-20T08:00:00Z"})},
                errors=(400, 404, 413, 415, 422),
            ),
        },
        "/invoices/{number}/credit-notes": {
            "post": _operation(
                "issue_credit_note",
                "Issue a credit note: some lines by position, or everything still open to a credit (the invoice "
                "stays as issued; what was paid beyond the new total is owed back)",
                {"201": _json(_ref("CreditNote"), "The credit note, issued"),
                 "200": _json(_ref("CreditNote"), "The same id was issued before: nothing new")},
                body={"required": True, **_json(_ref("CreditNoteIn"), "The credit note",
                                                {"reason": "Meter read wrongly", "id": "cn-2026-0007",
                                                 "lines": [{"position": 1, "amount": 12500}]})},
                errors=(400, 404, 409, 413, 415, 422),
            ),
            "get": _operation(
                "list_credit_notes", "The invoice's credit notes, oldest first",
                {"200": _json(_ref("CreditNotes"), "The credit notes")}, errors=(404,),
            ),
        },
        "/invoices/{number}/cancel": {
            "post": _operation(
                "cancel_invoice", "Cancel an invoice that has no payments",
                {"200": _json(invoice, "The cancelled invoice")},
                body={"required": False, **_json(_ref("CancelIn"), "An optional reason", {"reason": "Sent in error"})},
                errors=(400, 404, 409, 413, 415, 422),
            ),
        },
        "/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This document",
                "security": [],
                "responses": {"200": {"description": "The OpenAPI 3.1 document",
                                      "content": {"application/json": {"schema": {"type": "object"}}}}},
            },
        },
    }


def _request_schemas() -> dict:
    """The pydantic models' JSON schemas (draft 2020-12, as OpenAPI 3.1 uses), nested models included."""
    schemas: dict = {}
    for model in (InvoiceIn, LinkIn, ReminderIn, CancelIn, ContactIn, InvoiceDunningIn, CustomerDunningIn,
                  CreditNoteIn, BlockIn, TagsIn):
        schema = model.model_json_schema(ref_template=REF)
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    return schemas


def _error_responses() -> dict:
    plain = [
        ("InvalidJson", "The body is not valid JSON", "invalid_json"),
        ("Unauthorized", "No API key, or an unknown or revoked one (WWW-Authenticate: Bearer)", "unauthorized"),
        ("Forbidden", "The key may not ask this: analytics need a live key", "live_only"),
        ("NotFound", "No invoice with this number (no customer with this reference) for your account", "not_found"),
        ("Conflict", "Another invoice has this number, or the state does not allow the change",
         "conflict | illegal_transition"),
        ("PayloadTooLarge", "The body is larger than 1 MB", "payload_too_large"),
        ("UnsupportedMediaType", "The body is not sent as application/json", "unsupported_media_type"),
    ]
    responses = {
        name: {"description": f"{description} (error: {codes})",
               "content": {"application/json": {"schema": _ref("Error")}}}
        for name, description, codes in plain
    }
    responses["ValidationFailed"] = _json(
        _ref("ValidationError"), "Invalid fields, every problem by field path",
        {"error": "validation_failed", "message": "Some fields are invalid; see errors.",
         "errors": {"lines.0.unit_price": "Input should be greater than or equal to 0",
                    "total": "total is 65816 but the lines add up to 65815"}},
    )
    return responses


def _nullable(schema: dict) -> dict:
    return {"anyOf": [schema, {"type": "null"}]}


STRING = {"type": "string"}
DATE = {"type": "string", "format": "date"}
AMOUNT = {"type": "integer", "minimum": 0, "description": "Minor units (øre, cent)"}
BALANCE = {"type": "integer", "description": "total - amount_paid, minor units"}
LIVEMODE = {"type": "boolean",
            "description": "false: a test invoice, made with a test key (docs/api.md, \"Test mode\")"}


def _object(properties: dict, description: str) -> dict:
    return {"type": "object", "description": description, "properties": properties,
            "required": list(properties), "additionalProperties": False}


def _event_data() -> dict:
    """An event's `data`: the bill and its customer's reference (every bill's event), and the type's own
    object; `x-event-types` lists each type's object and keys (docs/events.md)."""
    objects: dict[str, dict[str, list[str]]] = {}
    for event_type, own in EVENT_DATA.items():
        for name, keys in own.items():
            found = objects.setdefault(name, {"types": [], "keys": []})
            found["types"].append(event_type)
            found["keys"] += [key for key in keys if key not in found["keys"]]
    properties: dict = {
        "invoice": _ref("EventInvoice"),
        "customer": {"type": "object", "properties": {"external_ref": STRING},
                     "description": "Your customer's reference; no other personal data"},
    }
    for name, found in objects.items():
        properties[name] = {"type": "object", "description": f"Of {', '.join(found['types'])}",
                            "properties": {key: {} for key in found["keys"]}}
    return {"type": "object", "description": "invoice and customer (a bill's event), and one object by type",
            "properties": properties,
            "x-event-types": {event_type: {name: list(keys) for name, keys in own.items()}
                              for event_type, own in EVENT_DATA.items()}}


def _response_schemas() -> dict:
    return {
        "VatRate": _object(
            {
                "rate": {"type": "integer", "minimum": 0, "maximum": 10000, "description": "Basis points: 2500 = 25 %"},
                "net": {"type": "integer", "description": "What is taxed at the rate, minor units"},
                "vat": {"type": "integer", "description": "The sum of the lines' VAT at the rate, minor units"},
            },
            "One VAT rate of an invoice",
        ),
        "Invoice": _object(
            {
                "number": STRING,
                "livemode": LIVEMODE,
                "status": {"type": "string", "enum": list(InvoiceStatus.values())},
                "currency": {"type": "string", "description": "ISO 4217"},
                "issue_date": DATE,
                "due_date": DATE,
                "period_start": _nullable(DATE),
                "period_end": _nullable(DATE),
                "summary": _nullable(text_schema(300)),
                "kind": {"type": "string", "enum": list(InvoiceKind.values()),
                         "description": "standard, on_account (a regular on-account payment) or prepayment"},
                "payment_reference": {"type": "string", "description": "KID or RF reference for bank transfers"},
                "subtotal": {**AMOUNT, "description": "Sum of the lines' net amounts, minor units"},
                "vat_total": {**AMOUNT, "description": "Sum of the lines' VAT, minor units"},
                "vat_rates": {"type": "array", "items": _ref("VatRate"),
                              "description": "The VAT per rate, highest rate first, credit notes taken off: the "
                                             "rates' net and VAT add up to subtotal and vat_total"},
                "total": {**AMOUNT, "description": "Gross total, minor units"},
                "amount_paid": AMOUNT,
                "credited": {**AMOUNT, "description": "What credit notes took off the total"},
                "balance": BALANCE,
                "customer": _ref("Customer"),
                "lines": {"type": "array", "items": _ref("InvoiceLine")},
                "events": {"type": "array", "items": _ref("InvoiceEvent"), "description": "The timeline, oldest first"},
                "dunning": _ref("Dunning"),
                "created_at": {"type": "string", "format": "date-time"},
                "updated_at": {"type": "string", "format": "date-time"},
            },
            "An invoice",
        ),
        "Dunning": _object(
            {
                "may_remind": {"type": "boolean", "description": "May a reminder go out today? Not before the due date "
                                                                 "has passed, nor while paused"},
                "may_hand_off": {"type": "boolean", "description": "May the invoice go to debt collection today? Also "
                                                                   "not before the plan's collection warning's "
                                                                   "deadline has passed"},
                "paused_by": _nullable({"type": "string", "enum": PAUSED_BY,
                                        "description": "Why reminders wait: what the customer arranged on the bill "
                                                       "page, an agent's hold, an open question, or not_due"}),
                "paused_until": _nullable({**DATE, "description": "The last day of the pause (not_due: the due "
                                                                  "date); null while it waits for someone (a "
                                                                  "dispute, a request, a plan, a question)"}),
                "hand_off_not_before": _nullable({**DATE, "description": "After the plan's collection warning: the "
                                                                         "first day of a hand-off"}),
                "plan": _nullable(_ref("DunningPlan")),
                "excluded": {"type": "boolean", "description": "You excluded the invoice or its customer from the "
                                                               "portal's reminders"},
                "next_step": _nullable(_ref("DunningStep")),
            },
            "Whether reminders and the hand-off may go ahead today, and the portal's next step by the invoice's "
            "dunning plan",
        ),
        "DunningPlan": _object(
            {"name": STRING, "version": {"type": "integer", "minimum": 1},
             "jurisdiction": {"type": "string", "enum": ["NO", "DE", "none"],
                              "description": "The rules the plan was checked against (none: no rules)"}},
            "The dunning plan (a version) the portal reminds the invoice by",
        ),
        "DunningStep": _object(
            {
                "position": {"type": "integer", "minimum": 1},
                "kind": {"type": "string", "enum": ["pre_due", "reminder", "final_reminder", "collection_warning"]},
                "date": {**DATE, "description": "The day it is due by the plan (it may wait for quiet hours, a "
                                                "holiday or the cap across the customer's bills)"},
                "channel": _nullable({"type": "string", "enum": ["sms", "email", "letter"],
                                      "description": "How it would go today, by the customer's contact points and "
                                                     "consents; null: no way to reach them"}),
                "channels": {"type": "array", "items": {"type": "string", "enum": ["sms", "email", "letter"]},
                             "description": "The step's channels, in order of preference"},
                "fee": {**AMOUNT, "description": "The fee it adds, minor units"},
                "deadline_days": {"type": "integer", "minimum": 0, "description": "The payment deadline it gives"},
            },
            "The next step of the invoice's dunning plan",
        ),
        "Contact": _object(
            {
                "external_ref": STRING,
                "email": _nullable(STRING),
                "phone": _nullable(STRING),
                "address": _nullable(_ref("Address")),
                "preferred_channel": _nullable({"type": "string", "enum": ["sms", "email", "letter"]}),
                "preferred_locale": _nullable({"type": "string", "enum": list(SUPPORTED_LOCALES)}),
                "time_zone": _nullable(STRING),
                "consents": _ref("Consents"),
                "email_unsubscribed_at": _nullable({"type": "string", "format": "date-time",
                                                    "description": "The customer unsubscribed from reminders by "
                                                                   "e-mail (UTC)"}),
                "sms_stopped_at": _nullable({"type": "string", "format": "date-time",
                                             "description": "The customer replied STOP to an SMS (UTC)"}),
                "dunning_excluded": {"type": "boolean"},
            },
            "A customer's contact points and preferences for reminders",
        ),
        "Consents": _object(
            {"email": {"type": "boolean"}, "sms": {"type": "boolean"},
             "electronic_notices": {"type": "boolean", "description": "Legally required notices electronically"}},
            "What the customer agreed to (letters are always allowed)",
        ),
        "CustomerTags": _object({"external_ref": STRING, "tags": {"type": "array", "items": STRING}},
                                "A customer's tags for content blocks"),
        "Block": _object(
            {
                "id": STRING, "livemode": {"type": "boolean"}, "name": STRING,
                "kind": {"type": "string", "enum": ["information", "engagement", "offer"]},
                "placements": {"type": "array", "items": {"type": "string", "enum": ["bill", "receipt", "email"]}},
                "priority": {"type": "integer"}, "starts_on": _nullable(DATE), "ends_on": _nullable(DATE),
                "action": {"type": "string", "enum": ["none", "link", "interest"]},
                "target_url": _nullable(STRING), "cap_days": _nullable({"type": "integer"}),
                "targeting": {"type": "object", "description": "The rules given (empty ones left out)"},
                "texts": {"type": "object", "additionalProperties": {
                    "type": "object", "properties": {"title": STRING, "body": STRING, "cta": STRING},
                    "required": ["title", "body", "cta"], "additionalProperties": False}},
                "variants": {"type": "array", "items": {
                    "type": "object", "properties": {"name": STRING, "weight": {"type": "integer"},
                                                     "stopped": {"type": "boolean"}},
                    "required": ["name", "weight", "stopped"], "additionalProperties": False}},
                "stopped": {"type": "boolean"},
            },
            "A content block (docs/content.md)",
        ),
        "BlockList": _object({"data": {"type": "array", "items": _ref("Block")}}, "Content blocks"),
        "CustomerDunning": _object(
            {"external_ref": STRING, "excluded": {"type": "boolean"},
             "invoices": {"type": "integer", "minimum": 0, "description": "How many of their bills changed"}},
            "A customer's exclusion from the portal's reminders",
        ),
        "Customer": _object(
            {
                "external_ref": STRING,
                "name": STRING,
                "kind": {"type": "string", "enum": list(CUSTOMER_KINDS)},
                "email": _nullable(STRING),
                "phone": _nullable(STRING),
                "address": _nullable(_ref("Address")),
                "preferred_locale": _nullable({"type": "string", "enum": list(SUPPORTED_LOCALES)}),
                "preferred_channel": _nullable({"type": "string", "enum": ["sms", "email", "letter"]}),
                "time_zone": _nullable(STRING),
                "consents": _ref("Consents"),
                "org_number": _nullable({"type": "string", "description": "A business's organisation number, in its "
                                                                          "country's normal form"}),
                "vat_id": _nullable({"type": "string", "description": "A business's VAT id, compact with its country "
                                                                      "prefix (DE136695976, NO923609016MVA)"}),
            },
            "The invoice's customer (the date of birth is never returned)",
        ),
        "Address": _object(
            {name: _nullable(STRING) for name in ("line1", "line2", "postcode", "city", "country")},
            "A postal address",
        ),
        "InvoiceLine": _object(
            {
                "position": {"type": "integer", "minimum": 1},
                "kind": {"type": "string", "enum": list(LINE_KINDS)},
                "description": text_schema(300),
                "note": _nullable(text_schema(500)),
                "quantity": {"type": "string", "description": "A decimal, e.g. '1' or '412.5'"},
                "unit": _nullable(STRING),
                "product_code": _nullable(STRING),
                "unit_price": {**AMOUNT, "description": "Net of VAT, minor units"},
                "vat_rate": {"type": "integer", "minimum": 0, "maximum": 10000, "description": "Basis points"},
                "net": AMOUNT,
                "vat": AMOUNT,
                "gross": AMOUNT,
                "period_start": _nullable(DATE),
                "period_end": _nullable(DATE),
            },
            "One line of an invoice",
        ),
        "InvoiceEvent": _object(
            {
                "kind": {"type": "string", "description": "created, status_changed, link_issued, link_opened, ..."},
                "actor": {"type": "string", "description": "api, customer, an agent, ..."},
                "created_at": {"type": "string", "format": "date-time", "description": "UTC"},
                "data": {"type": "object", "description": "Details of the event, by kind"},
            },
            "One entry of the invoice's timeline",
        ),
        "Link": _object(
            {
                "url": {"type": "string", "format": "uri", "description": "Fits in an SMS; carries no invoice data"},
                "expires_at": {"type": "string", "format": "date-time", "description": "UTC"},
            },
            "A signed link to the bill page",
        ),
        "CreditNote": _object(
            {
                "number": {"type": "string", "description": "In your credit notes' own series (CN-000001, …)"},
                "id": _nullable({"type": "string", "description": "Your id of the credit note, as you sent it"}),
                "invoice_number": {"type": "string", "description": "The invoice it corrects"},
                "currency": {"type": "string", "description": "ISO 4217"},
                "reason": STRING,
                "dispute": _nullable({"type": "string", "description": "The customer's dispute it answers"}),
                "subtotal": {**AMOUNT, "description": "Net credited, minor units"},
                "vat_total": {**AMOUNT, "description": "VAT credited, minor units"},
                "total": {**AMOUNT, "description": "Gross credited, minor units"},
                "lines": {"type": "array", "items": _object(
                    {"position": _nullable({"type": "integer", "minimum": 1,
                                            "description": "The invoice line it credits"}),
                     "description": STRING, "vat_rate": {"type": "integer", "minimum": 0,
                                                         "description": "Basis points: 2500 = 25 %"},
                     "net": AMOUNT, "vat": AMOUNT, "gross": AMOUNT},
                    "What one line credits")},
                "created_at": {"type": "string", "format": "date-time"},
                "invoice": _object(
                    {"status": {"type": "string", "enum": list(InvoiceStatus.values())},
                     "total": {**AMOUNT, "description": "What the invoice asks for after its credit notes"},
                     "credited": AMOUNT, "amount_paid": AMOUNT,
                     "balance": {"type": "integer", "description": "total - amount_paid; below 0: owed back"}},
                    "The invoice after the credit note"),
            },
            "A credit note: money taken off an issued invoice, in its own document",
        ),
        "CreditNotes": _object({"credit_notes": {"type": "array", "items": _ref("CreditNote")}},
                               "An invoice's credit notes"),
        "Reminder": _object(
            {
                "id": _nullable({"type": "string", "description": "Your id of the reminder, as you sent it"}),
                "channel": {"type": "string", "enum": ["sms", "email", "letter"]},
                "sent_at": {"type": "string", "format": "date-time", "description": "UTC"},
                "final": {"type": "boolean"},
            },
            "A reminder the creditor sent",
        ),
        "InvoiceSummary": _object(
            {
                "number": STRING,
                "livemode": LIVEMODE,
                "status": {"type": "string", "enum": list(InvoiceStatus.values())},
                "currency": {"type": "string", "description": "ISO 4217"},
                "issue_date": DATE,
                "due_date": DATE,
                "total": AMOUNT,
                "amount_paid": AMOUNT,
                "credited": AMOUNT,
                "balance": BALANCE,
                "customer_ref": {"type": "string", "description": "The customer's external_ref"},
                "created_at": {"type": "string", "format": "date-time"},
                "updated_at": {"type": "string", "format": "date-time"},
            },
            "An invoice in a list (GET /invoices/{number} has the whole of it)",
        ),
        "InvoiceList": _object(
            {"data": {"type": "array", "items": _ref("InvoiceSummary")},
             "next_cursor": _nullable({"type": "string", "description": "Pass as `after` for the next page; "
                                                                        "null: this was the last"})},
            "A page of invoices, oldest first",
        ),
        "Event": _object(
            {
                "id": {"type": "string", "description": "evt_…, stable: the same in the feed and in every webhook"},
                "type": {"type": "string", "enum": list(EVENT_TYPES)},
                "timestamp": {"type": "string", "format": "date-time", "description": "When it happened (UTC)"},
                "livemode": {"type": "boolean", "description": "false: an event of test data (a test key's)"},
                "data": _ref("EventData"),
            },
            "Something that happened to one of your bills (or customers)",
        ),
        "EventData": _event_data(),
        "EventInvoice": _object(
            {"number": STRING, "currency": {"type": "string", "description": "ISO 4217"}, "total": AMOUNT,
             "amount_paid": AMOUNT, "balance": {"type": "integer", "description": "total - amount_paid, minor units"},
             "status": {"type": "string", "enum": list(InvoiceStatus.values())}, "due_date": DATE},
            "The bill, as it stood when the event was recorded",
        ),
        "FunnelRow": _object(
            {
                "key": {"anyOf": [STRING, {"type": "integer"}, {"type": "null"}],
                        "description": "The row's value: a week's Monday (YYYY-MM-DD), a channel, a step's position, "
                                       "a plan version's id, a language, a variant ('': none); null in the total"},
                **{name: {"type": "integer", "minimum": 0, "description": words} for name, words in (
                    ("sent", "Messages that left the portal (not queued)"),
                    ("delivered", "Delivered or opened"), ("opened", "Their link opened"),
                    ("failed", "Failed or bounced"), ("paid", "Messages a payment was attributed to"),
                    ("payments", "Payments attributed to them"))},
                "paid_amounts": {"type": "array", "items": _object(
                    {"currency": STRING, "amount": AMOUNT}, "An amount in one currency")},
                "median_days_to_pay": _nullable({"type": "number", "description": "Whole days from the message to "
                                                                                  "the payment, median"}),
                "rates": _object({name: _nullable({"type": "number", "minimum": 0, "maximum": 1})
                                  for name in ("delivered", "opened", "paid")}, "Shares of the messages sent"),
            },
            "One row of the funnel, or its total",
        ),
        "Funnel": _object(
            {
                "from": DATE, "to": DATE,
                "by": {"type": "string", "enum": ["week", "channel", "step", "plan", "language", "variant"]},
                "filters": {"type": "object", "description": "The filters given", "additionalProperties": True},
                "attribution_window_days": {"type": "integer", "minimum": 1},
                "computed_at": _nullable({"type": "string", "format": "date-time",
                                          "description": "When the rollups were last brought up to date"}),
                "rows": {"type": "array", "items": _ref("FunnelRow")},
                "total": _ref("FunnelRow"),
                "payments": _object({source: {"type": "array", "items": _ref("PaymentSum")}
                                     for source in ("reminder", "direct", "partner")},
                                    "Payments received in the period: after a reminder, without one, to the "
                                    "collection partner"),
                "bills": _object(
                    {"due": {"type": "integer", "minimum": 0}, "paid": {"type": "integer", "minimum": 0},
                     "paid_before_first_reminder": {"type": "integer", "minimum": 0},
                     "handed_off": {"type": "integer", "minimum": 0},
                     "promises": _object({name: {"type": "integer", "minimum": 0}
                                          for name in ("made", "kept", "broken")},
                                         "Promises to pay made in the period"),
                     "plans": _object({name: {"type": "integer", "minimum": 0}
                                       for name in ("made", "completed", "broken")},
                                      "Instalment plans agreed in the period"),
                     "days_sales_outstanding": {"type": "array", "items": _object(
                         {"currency": STRING, "days": {"type": "number"}}, "DSO in one currency")}},
                    "Bills due in the period, promises and plans made in it, and DSO now"),
                "clarity": _object(
                    {"answers": {"type": "integer", "minimum": 0}, "clear": {"type": "integer", "minimum": 0},
                     "comments": {"type": "integer", "minimum": 0},
                     "score": _nullable({"type": "number", "minimum": 0, "maximum": 1})},
                    "\"Was this bill clear?\" answered in the period: the share that said yes"),
            },
            "The reminders' funnel of a period and what became of the bills",
        ),
        "PaymentSum": _object({"currency": STRING, "count": {"type": "integer", "minimum": 0}, "amount": AMOUNT},
                              "Payments in one currency"),
        "EventList": _object(
            {"data": {"type": "array", "items": _ref("Event")},
             "next_cursor": _nullable({"type": "string", "description": "Pass as `after` next time (the same "
                                                                        "cursor again when nothing new came); "
                                                                        "null: no events yet"})},
            "The next events of the feed",
        ),
        "RevokedLinks": _object({"revoked": {"type": "integer", "minimum": 0}}, "How many links were revoked"),
        "Error": {
            "type": "object",
            "properties": {"error": {"type": "string", "description": "A stable code"},
                           "message": {"type": "string", "description": "For people"}},
            "required": ["error", "message"],
        },
        "ValidationError": {
            "type": "object",
            "properties": {
                "error": {"const": "validation_failed"},
                "message": STRING,
                "errors": {"type": "object", "additionalProperties": STRING,
                           "description": "Field path (e.g. 'lines.0.unit_price') -> its problem"},
            },
            "required": ["error", "message", "errors"],
        },
    }
