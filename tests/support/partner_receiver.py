"""A collection partner's receiving end on 127.0.0.1, as a partner would write it: a real HTTP
server that verifies every delivery's Standard Webhooks signature with the `standardwebhooks`
package (the secrets it was given; two during a rotation), refuses what does not verify, and
recognises a repeat by its `webhook-id`.

    with PartnerReceiver(secrets=[secret]) as partner:
        partner.url                  # the endpoint to register
        partner.deliveries           # every verified delivery, repeats included, in order
        partner.unique()             # the first delivery of each webhook-id

Knobs, to play failures: `answers` is a list of (status, headers) answered to the next requests
before the deliveries are accepted (500, 429 with Retry-After, 410); `on_request` runs on each
verified request before the answer (a test can kill the dispatcher there); `stop()` then
`start()` on the same port plays an outage.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError

from tests.support.serving import serve_in_thread, stop_serving
from tests.support.smtp import HOST, free_port


@dataclass(frozen=True)
class Delivery:
    webhook_id: str
    timestamp: str
    signature: str
    idempotency_key: str
    body: dict[str, Any]
    raw: bytes
    repeat: bool  # this webhook-id was seen before


@dataclass
class PartnerReceiver:
    secrets: list[str]
    port: int = field(default_factory=free_port)
    path: str = "/cases"
    answers: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    on_request: Callable[[Delivery], None] | None = None
    deliveries: list[Delivery] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # why requests were refused (bad signature...)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}{self.path}"

    def unique(self) -> list[Delivery]:
        return [d for d in self.deliveries if not d.repeat]

    def verify(self, body: bytes, headers: dict[str, str]) -> None:
        """As a partner does: any of its secrets may have signed it (rotation)."""
        problems = []
        for secret in self.secrets:
            try:
                Webhook(secret).verify(body, headers)
                return
            except WebhookVerificationError as exc:
                problems.append(str(exc))
        raise WebhookVerificationError("; ".join(problems))

    # --- the server -------------------------------------------------------------------------------

    def start(self) -> PartnerReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                if self.path != receiver.path:
                    return self._answer(404)
                try:
                    receiver.verify(raw, headers)
                except WebhookVerificationError as exc:
                    with receiver.lock:
                        receiver.refused.append(str(exc))
                    return self._answer(401)
                with receiver.lock:
                    if receiver.answers:
                        status, extra = receiver.answers.pop(0)
                        return self._answer(status, extra)
                    seen = {d.webhook_id for d in receiver.deliveries}
                    delivery = Delivery(
                        webhook_id=headers["webhook-id"], timestamp=headers["webhook-timestamp"],
                        signature=headers["webhook-signature"], idempotency_key=headers.get("idempotency-key", ""),
                        body=json.loads(raw), raw=raw, repeat=headers["webhook-id"] in seen)
                    receiver.deliveries.append(delivery)
                if receiver.on_request is not None:
                    receiver.on_request(delivery)
                self._answer(204 if delivery.repeat else 202)

            def _answer(self, status: int, extra: dict[str, str] | None = None):
                self.send_response(status)
                for name, value in (extra or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._server = ThreadingHTTPServer((HOST, self.port), Handler)
        self._server.daemon_threads = True
        self._thread = serve_in_thread(self._server)
        return self

    def stop(self) -> None:
        stop_serving(self._server, self._thread)

    def __enter__(self) -> PartnerReceiver:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
