"""A local stand-in for Twilio's Programmable Messaging API, good enough for the official Python SDK.

It serves `POST /2010-04-01/Accounts/{AccountSid}/Messages.json` as Twilio's API reference
describes it: form-encoded To, From and Body; HTTP Basic authentication with the account SID and
auth token (else 401, error 20003, with a WWW-Authenticate challenge); Twilio's error shape
(`{code, message, more_info, status}`); the checks Twilio makes before queueing (a required
parameter missing: 21604 To, 21603 From, 21602 Body; a body over 1600 characters: 21617; a To
that is not E.164 or is listed in `invalid_numbers`: 21211; one in `opted_out`: 21610). An
accepted message is answered 201 with the Message resource (sid "SM" + 32 hex digits, status
"queued", num_segments counted as GSM-7 or UCS-2, dates in RFC 2822).

The `I-Twilio-Idempotency-Token` header is honoured: the same token again gets the first answer
again, and no second message is queued, so a test can show a resend does not send twice.

    with TwilioServer() as twilio:
        ...                                   # point the app at twilio.config()
        twilio.messages[0]["body"], twilio.messages[0]["idempotency_token"]

Knobs: `fail_next(status, times=n, code=..., retry_after=...)` answers the next n message
requests with that error (500, 429 with Retry-After, or any status and Twilio code) before any
other check; `delay` holds every answer that many seconds (a timeout); `stop()` then `start()`
again on the same port plays an outage. `requests` records every request the server received.

Status callbacks, as Twilio sends them: for each accepted message with a `StatusCallback`, a signed
form POST ("sent", then "delivered"; "undelivered" with error 30003 for a number in `undelivered`,
"failed" with 30008 for one in `failed`) carrying MessageSid, MessageStatus, AccountSid, From, To,
ApiVersion (and ErrorCode), signed in X-Twilio-Signature with the SDK's own algorithm
(`RequestValidator.compute_signature`, keyed by the auth token). They wait in `pending_callbacks`
until `send_callbacks()` (a test decides when they arrive; `shuffle`/`repeat` play out-of-order and
repeated ones), or go out at once from a background thread with `auto_callbacks = True`. `transport`
delivers them (default: an HTTP POST with requests; a test may post through Flask's test client).
`reply(number, body, url)` sends a customer's signed inbound SMS (STOP, START) to our webhook.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from twilio.request_validator import RequestValidator

from tests.support.serving import serve_in_thread, stop_serving
from tests.support.smtp import free_port

HOST = "127.0.0.1"
API_VERSION = "2010-04-01"
MESSAGES_PATH = re.compile(rf"/{API_VERSION}/Accounts/(?P<account>[^/]+)/Messages\.json")
E164 = re.compile(r"\+[1-9][0-9]{7,14}")
MAX_BODY = 1600
# The GSM 03.38 alphabet: basic characters take one septet, extension characters two.
GSM_BASIC = set("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                "ÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
GSM_EXTENSION = set("^{}\\[~]|€\f")

ERROR_MESSAGES = {
    20003: "Authenticate",
    20404: "The requested resource was not found",
    20429: "Too Many Requests",
    20500: "An internal server error has occurred",
    21211: "The 'To' number is not a valid phone number.",
    21602: "Message body is required.",
    21603: "A 'From' phone number is required.",
    21604: "A 'To' phone number is required.",
    21610: "Attempt to send to unsubscribed recipient",
    21614: "'To' number is not a valid mobile number",
    21617: "The concatenated message body exceeds the 1600 character limit.",
}


@dataclass(frozen=True)
class Received:
    """One request as the server saw it."""

    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    form: dict[str, str]


class TwilioError(Exception):
    """A Twilio error answer."""

    def __init__(self, status: int, code: int, message: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code = status, code
        self.message = message or ERROR_MESSAGES.get(code, "Error")
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message,
                "more_info": f"https://www.twilio.com/docs/errors/{self.code}", "status": self.status}


@dataclass
class _State:
    account_sid: str
    auth_token: str
    lock: threading.Lock = field(default_factory=threading.Lock)
    requests: list[Received] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    by_token: dict[str, dict[str, Any]] = field(default_factory=dict)
    failures: list[TwilioError] = field(default_factory=list)
    invalid_numbers: set[str] = field(default_factory=set)
    opted_out: set[str] = field(default_factory=set)
    delay: float = 0
    undelivered: set[str] = field(default_factory=set)
    failed: set[str] = field(default_factory=set)
    pending_callbacks: list[Callback] = field(default_factory=list)
    auto_callbacks: bool = False
    callback_delay: float = 0.5  # auto_callbacks: after the answer, so that the sender has recorded the SID
    transport: Transport | None = None
    callback_answers: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class Callback:
    """One signed request Twilio makes to our hooks."""

    url: str
    params: dict[str, str]
    signature: str


#: Delivers one callback: (url, form, headers) -> the HTTP status it was answered with.
Transport = Callable[[str, dict[str, str], dict[str, str]], int]


def _http_transport(url: str, params: dict[str, str], headers: dict[str, str]) -> int:
    return requests.post(url, data=params, headers=headers, timeout=10).status_code


class TwilioServer:
    """The fake Messaging API on 127.0.0.1, on a free port, in a background thread."""

    def __init__(self, account_sid: str | None = None, auth_token: str | None = None, port: int | None = None):
        self.state = _State(account_sid=account_sid or "AC" + secrets.token_hex(16),
                            auth_token=auth_token or secrets.token_hex(16))
        self.host, self.port = HOST, port or free_port()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def account_sid(self) -> str:
        return self.state.account_sid

    @property
    def auth_token(self) -> str:
        return self.state.auth_token

    def start(self) -> TwilioServer:
        self._httpd = ThreadingHTTPServer((self.host, self.port), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.state = self.state  # type: ignore[attr-defined]
        self._thread = serve_in_thread(self._httpd)
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            stop_serving(self._httpd, self._thread)
            self._httpd = self._thread = None

    def __enter__(self) -> TwilioServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def config(self, sender: str = "+15005550006") -> dict[str, Any]:
        """The app settings that send to this server."""
        return {"SMS_PROVIDER": "twilio", "TWILIO_ACCOUNT_SID": self.account_sid, "TWILIO_AUTH_TOKEN": self.auth_token,
                "SMS_FROM": sender, "TWILIO_BASE_URL": self.base_url, "SMS_TIMEOUT_SECONDS": 5}

    # --- status callbacks and replies -------------------------------------------------------------

    @property
    def undelivered(self) -> set[str]:
        """Numbers whose messages end "undelivered" (error 30003, unreachable handset)."""
        return self.state.undelivered

    @property
    def failed(self) -> set[str]:
        """Numbers whose messages end "failed" (error 30008)."""
        return self.state.failed

    @property
    def auto_callbacks(self) -> bool:
        return self.state.auto_callbacks

    @auto_callbacks.setter
    def auto_callbacks(self, on: bool) -> None:
        self.state.auto_callbacks = on

    @property
    def transport(self) -> Transport:
        return self.state.transport or _http_transport

    @transport.setter
    def transport(self, transport: Transport | None) -> None:
        self.state.transport = transport

    @property
    def pending_callbacks(self) -> list[Callback]:
        with self.state.lock:
            return list(self.state.pending_callbacks)

    @property
    def callback_answers(self) -> list[int]:
        """The HTTP status our hooks answered each callback sent with."""
        with self.state.lock:
            return list(self.state.callback_answers)

    def send_callbacks(self, *, order: Callable[[list[Callback]], list[Callback]] | None = None) -> list[int]:
        """Send every pending callback (in `order`, if given: reversed, repeated ...) and return the answers."""
        with self.state.lock:
            due, self.state.pending_callbacks = self.state.pending_callbacks, []
        return [_deliver_callback(self.state, callback) for callback in (order(due) if order else due)]

    def reply(self, number: str, body: str, url: str, *, to: str = "+15005550006") -> int:
        """A customer's SMS to our number, posted as Twilio's "a message comes in" webhook, signed."""
        params = {"MessageSid": "SM" + secrets.token_hex(16), "AccountSid": self.account_sid, "From": number,
                  "To": to, "Body": body, "NumMedia": "0", "ApiVersion": API_VERSION}
        return _deliver_callback(self.state, sign(self.auth_token, url, params))

    # --- knobs and records ----------------------------------------------------------------------

    def fail_next(self, status: int, *, times: int = 1, code: int | None = None, message: str | None = None,
                  retry_after: int | None = None) -> None:
        """Answer the next `times` message requests with this error (429 gets Retry-After)."""
        code = code or {429: 20429, 500: 20500}.get(status, status)
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        with self.state.lock:
            self.state.failures.extend(TwilioError(status, code, message, headers) for _ in range(times))

    @property
    def invalid_numbers(self) -> set[str]:
        return self.state.invalid_numbers

    @property
    def opted_out(self) -> set[str]:
        return self.state.opted_out

    @property
    def delay(self) -> float:
        return self.state.delay

    @delay.setter
    def delay(self, seconds: float) -> None:
        self.state.delay = seconds

    @property
    def messages(self) -> list[dict[str, Any]]:
        """Every message accepted, in order: the resource as answered, plus the request's idempotency token."""
        with self.state.lock:
            return [dict(m) for m in self.state.messages]

    @property
    def requests(self) -> list[Received]:
        with self.state.lock:
            return list(self.state.requests)


class _Handler(BaseHTTPRequestHandler):
    server_version = "FakeTwilio/2010-04-01"
    protocol_version = "HTTP/1.1"  # keep-alive, as Twilio's API: the SDK's requests Session reuses its connection
    # TCP_NODELAY, as production HTTP servers set it: an answer goes out as two writes (the headers, then
    # the body), and with Nagle's algorithm the body waited for the client's delayed ACK of the headers
    # (40 ms on Linux) on a kept-alive connection: every SMS took 60 ms, the stand-in's wait, not ours.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:  # only sending is served
        self._send(404, TwilioError(404, 20404, f"The requested resource {self.path} was not found").body())

    def do_POST(self) -> None:
        state: _State = self.server.state  # type: ignore[attr-defined]
        path = urlsplit(self.path).path
        headers = {k.lower(): v for k, v in self.headers.items()}
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        form = {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}
        with state.lock:
            state.requests.append(Received("POST", path, headers, form))
        if state.delay:
            time.sleep(state.delay)
        try:
            self._authenticate(state, headers.get("authorization", ""))
            match = MESSAGES_PATH.fullmatch(path)
            if match is None or match["account"] != state.account_sid:
                raise TwilioError(404, 20404, f"The requested resource {path} was not found")
            with state.lock:
                failure = state.failures.pop(0) if state.failures else None
            if failure is not None:
                raise failure
            self._send(201, _create_message(state, form, headers.get("i-twilio-idempotency-token")))
        except TwilioError as error:
            self._send(error.status, error.body(), error.headers)
            return
        if state.auto_callbacks:  # after the answer, as Twilio does: the message exists on our side first
            threading.Thread(target=_send_pending, args=(state,), daemon=True).start()

    def _authenticate(self, state: _State, authorization: str) -> None:
        scheme, _, encoded = authorization.partition(" ")
        try:
            given = base64.b64decode(encoded, validate=True).decode() if scheme.lower() == "basic" else ""
        except ValueError:
            given = ""
        if given != f"{state.account_sid}:{state.auth_token}":
            raise TwilioError(401, 20003, headers={"WWW-Authenticate": 'Basic realm="Twilio API"'})

    def _send(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up waiting (`delay`)
            self.close_connection = True


def _create_message(state: _State, form: dict[str, str], token: str | None) -> dict[str, Any]:
    """Validate as Twilio does before queueing, then queue: the Message resource, or the first
    answer again for a token seen before."""
    with state.lock:
        if token and token in state.by_token:
            return _public(state.by_token[token])
    to, sender, body = form.get("To", ""), form.get("From", ""), form.get("Body", "")
    if not to:
        raise TwilioError(400, 21604)
    if not sender and not form.get("MessagingServiceSid"):
        raise TwilioError(400, 21603)
    if not body and not form.get("MediaUrl"):
        raise TwilioError(400, 21602)
    if len(body.encode("utf-16-le")) // 2 > MAX_BODY:
        raise TwilioError(400, 21617)
    if not E164.fullmatch(to) or to in state.invalid_numbers:
        raise TwilioError(400, 21211, f"The 'To' number {to} is not a valid phone number.")
    if to in state.opted_out:
        raise TwilioError(400, 21610)
    sid = "SM" + secrets.token_hex(16)
    now = format_datetime(datetime.now(UTC), usegmt=True)
    uri = f"/{API_VERSION}/Accounts/{state.account_sid}/Messages/{sid}.json"
    message = {
        "account_sid": state.account_sid, "api_version": API_VERSION, "body": body, "date_created": now,
        "date_sent": None, "date_updated": now, "direction": "outbound-api", "error_code": None,
        "error_message": None, "from": sender, "messaging_service_sid": form.get("MessagingServiceSid"),
        "num_media": "0", "num_segments": str(segments(body)), "price": None, "price_unit": "USD", "sid": sid,
        "status": "queued", "subresource_uris": {"media": uri.replace(".json", "/Media.json")}, "to": to, "uri": uri,
        "idempotency_token": token,
    }
    with state.lock:
        if token and token in state.by_token:  # the same token twice at once: the first one wins
            return _public(state.by_token[token])
        state.messages.append(message)
        if token:
            state.by_token[token] = message
        if form.get("StatusCallback"):
            state.pending_callbacks.extend(_callbacks(state, message, form["StatusCallback"]))
    return _public(message)


def sign(auth_token: str, url: str, params: dict[str, str]) -> Callback:
    """A request to `url` signed as Twilio signs it (the SDK's own algorithm, HMAC-SHA1)."""
    return Callback(url, params, RequestValidator(auth_token).compute_signature(url, params))


def _callbacks(state: _State, message: dict[str, Any], url: str) -> list[Callback]:
    to = message["to"]
    final, error = ("undelivered", "30003") if to in state.undelivered else \
        ("failed", "30008") if to in state.failed else ("delivered", None)
    callbacks = []
    for status in ("sent", final):
        params = {"MessageSid": message["sid"], "SmsSid": message["sid"], "MessageStatus": status,
                  "SmsStatus": status, "AccountSid": state.account_sid, "From": message["from"], "To": to,
                  "ApiVersion": API_VERSION}
        if status != "sent" and error:
            params["ErrorCode"] = error
        callbacks.append(sign(state.auth_token, url, params))
    return callbacks


def _deliver_callback(state: _State, callback: Callback) -> int:
    transport = state.transport or _http_transport
    try:
        answer = transport(callback.url, callback.params, {"X-Twilio-Signature": callback.signature})
    except requests.RequestException:
        answer = 0
    with state.lock:
        state.callback_answers.append(answer)
    return answer


def _send_pending(state: _State) -> None:
    time.sleep(state.callback_delay)
    with state.lock:
        due, state.pending_callbacks = state.pending_callbacks, []
    for callback in due:
        _deliver_callback(state, callback)


def segments(body: str) -> int:
    """How many SMS a body takes: GSM-7 (160, or 153 a part when split) or UCS-2 (70, or 67 a part)."""
    if all(c in GSM_BASIC or c in GSM_EXTENSION for c in body):
        septets = sum(2 if c in GSM_EXTENSION else 1 for c in body)
        return 1 if septets <= 160 else -(-septets // 153)
    units = len(body.encode("utf-16-le")) // 2
    return 1 if units <= 70 else -(-units // 67)


def _public(message: dict[str, Any]) -> dict[str, Any]:
    """The resource as the API shows it: without the server's own bookkeeping."""
    return {k: v for k, v in message.items() if k != "idempotency_token"}
