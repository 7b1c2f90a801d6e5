"""The OpenAPI document matches the routes, its schemas match the validators and the real output."""

from __future__ import annotations

import copy
import re

import pytest

from app import create_app
from app.api.openapi import EXAMPLE_INVOICE
from app.api.schemas import CancelIn, LinkIn
from app.billing.schemas import InvoiceIn, parse_invoice
from app.creditors.services import create_api_key
from app.extensions import db
from tests.factories import make_creditor

API = "/api/v1"
METHODS = {"get", "put", "post", "delete", "patch"}


@pytest.fixture
def document(client):
    response = client.get(f"{API}/openapi.json")
    assert response.status_code == 200 and response.is_json
    return response.json


def resolve(document: dict, ref: str) -> dict:
    assert ref.startswith("#/"), ref
    node = document
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def conforms(value, schema: dict, document: dict, where: str = "$") -> list[str]:
    """Problems of `value` against the subset of JSON Schema the hand-written output schemas use."""
    if "$ref" in schema:
        return conforms(value, resolve(document, schema["$ref"]), document, where)
    if "anyOf" in schema:
        attempts = [conforms(value, option, document, where) for option in schema["anyOf"]]
        return [] if any(not a for a in attempts) else [f"{where}: matches no anyOf option: {attempts}"]
    if "const" in schema and value != schema["const"]:
        return [f"{where}: {value!r} is not {schema['const']!r}"]
    if "enum" in schema and value not in schema["enum"]:
        return [f"{where}: {value!r} is not one of {schema['enum']}"]
    kind = schema.get("type")
    types = {"string": str, "integer": int, "number": (int, float), "boolean": bool, "object": dict, "array": list,
             "null": type(None)}
    if kind and (not isinstance(value, types[kind]) or (kind in ("integer", "number") and isinstance(value, bool))):
        return [f"{where}: {value!r} is not {kind}"]
    problems = []
    if kind == "integer" and "minimum" in schema and value < schema["minimum"]:
        problems.append(f"{where}: {value} < {schema['minimum']}")
    if kind == "array":
        for i, item in enumerate(value):
            problems += conforms(item, schema.get("items", {}), document, f"{where}[{i}]")
    if kind == "object":
        properties = schema.get("properties", {})
        problems += [f"{where}: missing {name}" for name in schema.get("required", []) if name not in value]
        for name, item in value.items():
            if name in properties:
                problems += conforms(item, properties[name], document, f"{where}.{name}")
            elif schema.get("additionalProperties") is False:
                problems.append(f"{where}: {name} is not in the schema")
            elif isinstance(schema.get("additionalProperties"), dict):
                problems += conforms(item, schema["additionalProperties"], document, f"{where}.{name}")
    return problems


def response_schema(document: dict, path: str, method: str, status: str) -> dict:
    answer = document["paths"][path][method]["responses"][status]
    if "$ref" in answer:
        answer = resolve(document, answer["$ref"])
    return answer["content"]["application/json"]["schema"]


def test_served_without_a_key_with_servers_and_bearer_scheme(document):
    assert document["openapi"] == "3.1.0"
    assert document["info"]["title"] and document["info"]["version"]
    assert document["servers"] == [{"url": "https://pay.example.test/api/v1"}]
    assert document["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http", "scheme": "bearer", "description": "A creditor's API key",
    }
    assert document["security"] == [{"bearerAuth": []}]


def test_paths_and_methods_are_exactly_the_routes(app, document):
    """Every api.* rule is documented with its endpoint as operationId, and nothing else is."""
    prefix = app.extensions["api_url_prefix"]
    routes = set()
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("api."):
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule.removeprefix(prefix))
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            routes.add((path, method.lower(), rule.endpoint.removeprefix("api.")))
    documented = {
        (path, method, operation["operationId"])
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    }
    assert routes == documented
    assert len(routes) == 22


def test_every_operation_declares_its_parameters_and_answers(document):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            parameters = [resolve(document, p["$ref"]) if "$ref" in p else p for p in operation.get("parameters", [])]
            names = {p["name"] for p in parameters if p["in"] == "path"}
            assert names == set(re.findall(r"{(\w+)}", path)), (path, method)
            assert all(p["in"] in ("path", "query") for p in parameters), (path, method)
            assert operation["summary"] and operation["responses"]
            if operation["operationId"] == "openapi":
                assert operation["security"] == []
            else:
                assert "security" not in operation and "401" in operation["responses"], (path, method)
            if method == "post" and "{number}" in path:
                assert "404" in operation["responses"]


def test_every_reference_resolves(document):
    def refs(node):
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                yield node["$ref"]
            for value in node.values():
                yield from refs(value)
        elif isinstance(node, list):
            for value in node:
                yield from refs(value)

    found = set(refs(document))
    assert "#/components/schemas/LineIn" in found and "#/components/schemas/Invoice" in found
    for ref in found:
        assert isinstance(resolve(document, ref), dict), ref


def test_request_schemas_are_the_pydantic_models(document):
    schemas = document["components"]["schemas"]
    for model in (InvoiceIn, LinkIn, CancelIn):
        expected = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, nested in expected.pop("$defs", {}).items():
            assert schemas[name] == nested
        assert schemas[model.__name__] == expected
    body = document["paths"]["/invoices"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"] == {"$ref": "#/components/schemas/InvoiceIn"}


def test_the_documented_examples_are_valid_requests(document):
    invoice = document["paths"]["/invoices"]["post"]["requestBody"]["content"]["application/json"]["example"]
    assert invoice == EXAMPLE_INVOICE
    parsed = parse_invoice(copy.deepcopy(invoice), "kid_mod10")
    assert parsed.total == invoice["total"]
    link = document["paths"]["/invoices/{number}/links"]["post"]["requestBody"]["content"]["application/json"]
    LinkIn.model_validate(link["example"])
    cancel = document["paths"]["/invoices/{number}/cancel"]["post"]["requestBody"]["content"]["application/json"]
    CancelIn.model_validate(cancel["example"])


def test_real_answers_conform_to_the_documented_schemas(client, session, document):
    creditor = make_creditor("NO")
    headers = {"Authorization": f"Bearer {create_api_key(creditor)}"}
    db.session.commit()
    number = EXAMPLE_INVOICE["number"]

    def check(response, path, method, status):
        assert response.status_code == int(status), response.text
        problems = conforms(response.json, response_schema(document, path, method, status), document)
        assert problems == [], problems

    check(client.post(f"{API}/invoices", json=EXAMPLE_INVOICE, headers=headers), "/invoices", "post", "201")
    check(client.post(f"{API}/invoices", json=EXAMPLE_INVOICE, headers=headers), "/invoices", "post", "200")
    check(client.post(f"{API}/invoices/{number}/links", json={"channel": "sms"}, headers=headers),
          "/invoices/{number}/links", "post", "201")
    check(client.get(f"{API}/invoices/{number}", headers=headers), "/invoices/{number}", "get", "200")
    check(client.post(f"{API}/invoices/{number}/links/revoke", headers=headers),
          "/invoices/{number}/links/revoke", "post", "200")
    check(client.post(f"{API}/invoices/{number}/cancel", json={"reason": "test"}, headers=headers),
          "/invoices/{number}/cancel", "post", "200")
    # Errors, too.
    check(client.post(f"{API}/invoices", json=dict(EXAMPLE_INVOICE, summary="other"), headers=headers),
          "/invoices", "post", "409")
    check(client.post(f"{API}/invoices", json=dict(EXAMPLE_INVOICE, number="2", total=1), headers=headers),
          "/invoices", "post", "422")
    check(client.post(f"{API}/invoices/{number}/cancel", headers=headers), "/invoices/{number}/cancel", "post", "409")
    check(client.get(f"{API}/invoices/nope", headers=headers), "/invoices/{number}", "get", "404")
    check(client.get(f"{API}/invoices/nope"), "/invoices/{number}", "get", "401")
    # The lists: invoices, and the events feed with an event of each kind of data (a bill's, a customer's).
    check(client.get(f"{API}/invoices", query_string={"limit": 1}, headers=headers), "/invoices", "get", "200")
    check(client.get(f"{API}/invoices", query_string={"status": "lost"}, headers=headers), "/invoices", "get", "422")
    assert client.post(f"{API}/invoices", json=dict(EXAMPLE_INVOICE, number="E-2"), headers=headers).status_code == 201
    assert client.get(issued_path(client, "E-2", headers)).status_code == 303  # the customer opens the link
    ref = EXAMPLE_INVOICE["customer"]["external_ref"]
    client.put(f"{API}/customers/{ref}/contact", json={"email": "n@example.test"}, headers=headers)
    feed = client.get(f"{API}/events", headers=headers)
    assert [e["type"] for e in feed.json["data"]] == ["invoice.opened", "contact_details.changed"]
    check(feed, "/events", "get", "200")
    check(client.get(f"{API}/events", query_string={"after": "x"}, headers=headers), "/events", "get", "422")


def issued_path(client, number: str, headers: dict) -> str:
    """A new link of the invoice, as a path to open."""
    url = client.post(f"{API}/invoices/{number}/links", json={"channel": "email"}, headers=headers).json["url"]
    return url.replace("https://pay.example.test", "")


def test_output_schemas_refuse_undocumented_fields(document):
    """additionalProperties is false on the output schemas, so a new field must be documented."""
    invoice = document["components"]["schemas"]["Invoice"]
    assert invoice["additionalProperties"] is False and set(invoice["required"]) == set(invoice["properties"])
    assert conforms({**dict.fromkeys(invoice["properties"]), "public_id": "x"}, invoice, document)


def test_built_per_app_from_its_configuration(tmp_path, monkeypatch):
    monkeypatch.setenv("PORTAL_INSTANCE_PATH", str(tmp_path))
    other = create_app({
        "TESTING": True, "PORTAL_ENV": "testing", "SECRET_KEY": "s" * 40,
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/other.db", "PORTAL_BASE_URL": "https://other.example",
    })
    response = other.test_client().get(f"{API}/openapi.json")
    assert response.json["servers"] == [{"url": "https://other.example/api/v1"}]
    assert response.headers["Cache-Control"] == "no-store"
