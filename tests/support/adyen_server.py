"""A local stand-in for Adyen's Checkout API (v71), good enough for the official Python SDK.

It serves, under `/v71`: POST /sessions, GET /sessions/{id}?sessionResult=..., POST
/paymentLinks, GET /paymentLinks/{id} and POST /payments/{pspReference}/refunds, with
Adyen's authentication (X-API-Key, else 401), required fields (else 422) and error shape
(`{status, errorCode, message, errorType}`), and idempotency: the same Idempotency-Key with
the same request replays the first answer; with another request it is refused (422, 704).

A payment link's URL serves a plain hosted page (pay or refuse) that notifies `webhook` (when
set) and sends the shopper back to the returnUrl, for end-to-end tests in a browser.

Test helpers: `complete(id)` plays the shopper paying a session or link, `notification()`
builds a standard notification signed with the SDK's own HMAC function, and `requests`
records what the server received.

    with AdyenServer(api_key="key") as adyen:
        gateway = AdyenGateway(AdyenConfig(..., checkout_base_url=adyen.base_url))
"""

from __future__ import annotations

import json
import secrets
import threading
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from Adyen import util

from tests.support.serving import serving_thread, stop_serving

VERSION = "/v71"
SESSION_LIFETIME = timedelta(hours=1)
LINK_LIFETIME = timedelta(hours=24)


@dataclass(frozen=True)
class Received:
    """One request as the server saw it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: dict[str, Any] | None


@dataclass(frozen=True)
class Completion:
    """What `complete()` made: the payment's pspReference, and the sessionResult Drop-in would hand over."""

    psp_reference: str
    session_result: str


class ApiError(Exception):
    """An Adyen error answer."""

    def __init__(self, status: int, error_code: str, message: str, error_type: str = "validation",
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.error_code, self.message, self.error_type = status, error_code, message, error_type
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"status": self.status, "errorCode": self.error_code, "message": self.message,
                "errorType": self.error_type, "pspReference": _psp()}


@dataclass
class _State:
    api_key: str
    base_url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)
    requests: list[Received] = field(default_factory=list)
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    links: dict[str, dict[str, Any]] = field(default_factory=dict)
    payments: dict[str, dict[str, Any]] = field(default_factory=dict)  # pspReference -> payment
    refunds: dict[str, dict[str, Any]] = field(default_factory=dict)
    idempotency: dict[str, tuple[str, int, dict[str, Any]]] = field(default_factory=dict)
    webhook: tuple[str, str] | None = None  # (our notification URL, HMAC key): where the hosted page notifies


class AdyenServer:
    """The fake Checkout API on 127.0.0.1, on a free port, in a background thread."""

    def __init__(self, api_key: str = "test_api_key"):
        self.state = _State(api_key=api_key)
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.state = self.state  # type: ignore[attr-defined]
        self._httpd.owner = self  # type: ignore[attr-defined]
        self.base_url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self.state.base_url = self.base_url
        self._thread = serving_thread(self._httpd)

    def __enter__(self) -> AdyenServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        stop_serving(self._httpd, self._thread)

    @property
    def requests(self) -> list[Received]:
        with self.state.lock:
            return list(self.state.requests)

    @property
    def sessions(self) -> dict[str, dict[str, Any]]:
        return self.state.sessions

    @property
    def links(self) -> dict[str, dict[str, Any]]:
        return self.state.links

    def complete(self, ref_id: str, success: bool = True, payment_method: str = "visa",
                 refusal_reason: str = "Refused") -> Completion:
        """The shopper pays session or link `ref_id`: a payment (authorised or refused, with Adyen's refusal
        reason: "Refused", "Not enough balance", "Expired Card"...) and a new status."""
        with self.state.lock:
            resource = self.state.sessions.get(ref_id) or self.state.links[ref_id]
            psp = _psp()
            self.state.payments[psp] = {
                "pspReference": psp, "merchantReference": resource["reference"],
                "merchantAccount": resource["merchantAccount"], "amount": dict(resource["amount"]),
                "success": success, "paymentMethod": payment_method, "refId": ref_id,
                "refusalReason": None if success else refusal_reason,
            }
            resource["pspReferences"].append(psp)
            if ref_id in self.state.sessions:
                resource["status"] = "completed" if success else "refused"
            elif success:
                resource["status"] = "completed"
            resource["sessionResult"] = f"X3XtfGC9!{secrets.token_urlsafe(24)}+/="
            return Completion(psp_reference=psp, session_result=resource["sessionResult"])

    def notification_item(self, ref_id: str, hmac_key: str, *, event_code: str = "AUTHORISATION",
                          success: bool | None = None) -> dict[str, Any]:
        """One signed NotificationRequestItem about the last payment of session or link `ref_id`.

        AUTHORISATION is about the payment itself; any other code (REFUND, CANCELLATION...) is a
        modification of it: a new pspReference with the payment's as originalReference."""
        with self.state.lock:
            resource = self.state.sessions.get(ref_id) or self.state.links[ref_id]
            payment = self.state.payments[resource["pspReferences"][-1]]
        item: dict[str, Any] = {
            "eventCode": event_code,
            "success": "true" if (payment["success"] if success is None else success) else "false",
            "eventDate": datetime.now(UTC).isoformat(timespec="seconds"),
            "merchantAccountCode": payment["merchantAccount"],
            "merchantReference": payment["merchantReference"],
            "amount": dict(payment["amount"]),
            "paymentMethod": payment["paymentMethod"],
            "pspReference": payment["pspReference"],
            "reason": "" if payment["success"] else payment["refusalReason"],
        }
        if event_code != "AUTHORISATION":
            item["originalReference"], item["pspReference"] = payment["pspReference"], _psp()
        item["additionalData"] = {"hmacSignature": util.generate_notification_sig(item, hmac_key).decode()}
        return item

    def notification(self, ref_id: str, hmac_key: str, *, event_code: str = "AUTHORISATION",
                     success: bool | None = None) -> bytes:
        """A standard notification body with one signed item (see `notification_item`)."""
        return notification_body(self.notification_item(ref_id, hmac_key, event_code=event_code, success=success))


def notification_body(*items: dict[str, Any], live: bool = False) -> bytes:
    """Adyen's standard notification envelope around the items."""
    return json.dumps({
        "live": "true" if live else "false",
        "notificationItems": [{"NotificationRequestItem": item} for item in items],
    }).encode()


class _Handler(BaseHTTPRequestHandler):
    server_version = "FakeAdyen/71"

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def _handle(self, method: str) -> None:
        state: _State = self.server.state  # type: ignore[attr-defined]
        url = urlsplit(self.path)
        headers = {k.lower(): v for k, v in self.headers.items()}
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        body = body if isinstance(body, dict) else None
        with state.lock:
            state.requests.append(Received(method, url.path, parse_qs(url.query), headers, body))
        if url.path == "/payByLink.shtml":  # the shopper's side: no API key
            self._hosted_page(state, method, parse_qs(url.query), raw)
            return
        try:
            if headers.get("x-api-key") != state.api_key:
                raise ApiError(401, "000", "HTTP Status Response - Unauthorized", "security")
            key = headers.get("idempotency-key")
            if method == "POST" and key:
                status, answer = self._idempotent(state, key, method, url.path, body or {})
            else:
                status, answer = _route(state, method, url.path, parse_qs(url.query), body or {})
            self._send(status, answer, {"Idempotency-Key": key} if key else {})
        except ApiError as error:
            self._send(error.status, error.body(), error.headers)

    def _hosted_page(self, state: _State, method: str, query: dict[str, list[str]], raw: bytes) -> None:
        """A payment link's page, as plain as can be: pay or refuse, then Adyen's notification to the
        configured webhook (signed with the SDK's utility) and the shopper back at the returnUrl."""
        link_id = (query.get("d") or [""])[0]
        link = state.links.get(link_id)
        if link is None:
            self._send_html(404, "<h1>Link not found</h1>")
            return
        if link["status"] == "expired":
            self._send_html(410, "<h1>This payment link has expired</h1>")
            return
        if method == "GET":
            value, currency = link["amount"]["value"], link["amount"]["currency"]
            self._send_html(200, (
                f'<h1>Adyen test payment link</h1><p>{currency} {value / 100:.2f} for {link.get("description", "")}</p>'
                f'<form method="post"><button name="outcome" value="pay">Pay with test card</button>'
                f'<button name="outcome" value="refuse">Refuse</button></form>'))
            return
        outcome = parse_qs(raw.decode()).get("outcome", ["pay"])[0]
        server: AdyenServer = self.server.owner  # type: ignore[attr-defined]
        server.complete(link_id, success=outcome == "pay")
        if state.webhook is not None:
            url, hmac_key = state.webhook
            request = urllib.request.Request(url, data=server.notification(link_id, hmac_key),
                                             headers={"Content-Type": "application/json"})
            opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
            with opener.open(request, timeout=10) as answer:
                assert answer.read() == b"[accepted]"
        self.send_response(303)
        self.send_header("Location", link["returnUrl"])
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _send_html(self, status: int, body: str) -> None:
        data = f'<!doctype html><html lang="en"><title>Adyen</title><main>{body}</main></html>'.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html;charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _idempotent(self, state: _State, key: str, method: str, path: str,
                    body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Replay the stored answer for the same request; refuse the key for another one."""
        fingerprint = json.dumps([method, path, body], sort_keys=True)
        with state.lock:
            stored = state.idempotency.get(key)
        if stored is not None:
            if stored[0] != fingerprint:
                raise ApiError(422, "704", "request already processed or in progress", "validation",
                               {"transient-error": "false"})
            return stored[1], stored[2]
        status, answer = _route(state, method, path, {}, body)
        with state.lock:
            state.idempotency.setdefault(key, (fingerprint, status, answer))
            return state.idempotency[key][1:]

    def _send(self, status: int, body: dict[str, Any], headers: dict[str, str]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json;charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


def _route(state: _State, method: str, path: str, query: dict[str, list[str]],
           body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """Dispatch one authenticated request to its endpoint."""
    if not path.startswith(VERSION + "/"):
        raise ApiError(404, "404", "Not found", "validation")
    parts = [unquote(p) for p in path[len(VERSION) + 1:].split("/")]
    match method, parts:
        case "POST", ["sessions"]:
            return 201, _create_session(state, body)
        case "GET", ["sessions", session_id]:
            return 200, _session_result(state, session_id, query)
        case "POST", ["paymentLinks"]:
            return 201, _create_link(state, body)
        case "GET", ["paymentLinks", link_id]:
            with state.lock:
                link = state.links.get(link_id)
                if link is None:
                    raise ApiError(404, "000", "Not found", "validation")
                return 200, _public(link)
        case "PATCH", ["paymentLinks", link_id]:
            return 200, _update_link(state, link_id, body)
        case "POST", ["payments", psp, "refunds"]:
            return 201, _refund(state, psp, body)
    raise ApiError(404, "404", "Not found", "validation")


def _require(body: dict[str, Any], *fields: str) -> None:
    """Adyen's 422 for the first missing required field (objects and strings worded as Adyen does)."""
    for name in fields:
        if name == "amount":
            amount = body.get("amount")
            if not isinstance(amount, dict):
                raise ApiError(422, "100", "Required object 'amount' is not provided.")
            if not isinstance(amount.get("value"), int) or not amount.get("currency"):
                raise ApiError(422, "100", "Required field 'amount.value' or 'amount.currency' is not provided.")
        elif not body.get(name):
            raise ApiError(422, "100", f"Required field '{name}' is not provided.")


def _create_session(state: _State, body: dict[str, Any]) -> dict[str, Any]:
    _require(body, "amount", "merchantAccount", "reference", "returnUrl")
    session_id = "CS" + secrets.token_hex(8).upper()
    session = {
        **body, "id": session_id, "sessionData": "Ab02b4c0!" + secrets.token_urlsafe(48),
        "expiresAt": _iso(datetime.now(UTC) + SESSION_LIFETIME), "mode": "embedded",
        "status": "active", "pspReferences": [], "sessionResult": None,
    }
    with state.lock:
        state.sessions[session_id] = session
    return _public(session, "status", "sessionResult")


def _session_result(state: _State, session_id: str, query: dict[str, list[str]]) -> dict[str, Any]:
    result = (query.get("sessionResult") or [None])[0]
    if not result:
        raise ApiError(422, "100", "Required field 'sessionResult' is not provided.")
    with state.lock:
        session = state.sessions.get(session_id)
        if session is None or session["sessionResult"] != result:
            raise ApiError(422, "14_030", "Invalid sessionResult for this session.")
        return {"id": session_id, "status": session["status"]}


def _create_link(state: _State, body: dict[str, Any]) -> dict[str, Any]:
    _require(body, "amount", "merchantAccount", "reference")
    link_id = "PL" + secrets.token_hex(8).upper()
    link = {
        **body, "id": link_id, "url": f"{state.base_url}/payByLink.shtml?d={link_id}",
        "expiresAt": _iso(datetime.now(UTC) + LINK_LIFETIME), "status": "active",
        "reusable": False, "pspReferences": [],
    }
    with state.lock:
        state.links[link_id] = link
    return _public(link)


def _update_link(state: _State, link_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """PATCH /paymentLinks/{linkId}: the only change Adyen takes is `status: expired`, of a link that
    was not paid."""
    if body.get("status") != "expired":
        raise ApiError(422, "702", "Only the status 'expired' can be set")
    with state.lock:
        link = state.links.get(link_id)
        if link is None:
            raise ApiError(404, "000", "Not found", "validation")
        if link["status"] in ("completed", "paymentPending"):
            raise ApiError(422, "14_030", f"Payment link in status {link['status']} cannot be expired")
        link["status"] = "expired"
        return _public(link)


def _refund(state: _State, psp: str, body: dict[str, Any]) -> dict[str, Any]:
    _require(body, "amount", "merchantAccount")
    with state.lock:
        payment = state.payments.get(psp)
        if payment is None or not payment["success"]:
            raise ApiError(422, "167", "Original pspReference required for this operation")
        if body["amount"]["currency"] != payment["amount"]["currency"]:
            raise ApiError(422, "128", "Currency of modification does not match currency of payment")
        refund = {
            "merchantAccount": body["merchantAccount"], "paymentPspReference": psp, "pspReference": _psp(),
            "reference": body.get("reference"), "status": "received", "amount": body["amount"],
        }
        state.refunds[refund["pspReference"]] = refund
    return {k: v for k, v in refund.items() if v is not None}


def _public(resource: dict[str, Any], *hidden: str) -> dict[str, Any]:
    """A resource as the API shows it: without the server's own bookkeeping."""
    private = {"pspReferences", "sessionResult", *hidden}
    return {k: v for k, v in resource.items() if k not in private}


def _psp() -> str:
    return secrets.token_hex(8).upper()


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")
