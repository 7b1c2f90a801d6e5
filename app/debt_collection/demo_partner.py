"""A collection partner to try the hand-off with, on this machine (development only): it listens at
the demo partner's endpoint, verifies each delivery's Standard Webhooks signature as a partner
would, prints what arrives, acknowledges each new case through the partner API and, with
`pay`, reports the whole outstanding amount as paid, which settles the bill.

`flask collection demo-partner`; `make demo` creates the partner."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import requests
from standardwebhooks import Webhook, WebhookVerificationError

DEMO_PARTNER = "nordcollect-demo"
DEMO_PARTNER_ENDPOINT = "http://127.0.0.1:5055/cases"


def make_handler(secrets: list[str], act: Callable[[dict], None], say: Callable[[str], None]):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {k.lower(): v for k, v in self.headers.items()}
            event = None
            for secret in secrets:
                try:
                    event = Webhook(secret).verify(raw, headers)
                    break
                except WebhookVerificationError:
                    continue
            if event is None:
                say("refused a delivery: its signature does not verify")
                self._answer(401)
                return
            self._answer(202)
            say(f"{event['type']} (webhook-id {headers['webhook-id']})")
            threading.Thread(target=act, args=(event,), daemon=True).start()

        def _answer(self, status: int):
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

    return Handler


def serve(endpoint_url: str, secrets: list[str], api_base: str, api_key: str, *, pay: bool,
          say: Callable[[str], None]) -> None:
    """Listen until interrupted."""
    auth = {"Authorization": f"Bearer {api_key}"}

    def act(event: dict) -> None:
        if event["type"] != "case.created":
            return
        case_file = event["data"]
        case_id = case_file["case_id"]
        outstanding = case_file["amounts"]["outstanding"]["total"]
        say(f"  case {case_id}: invoice {case_file['invoice']['number']} of {case_file['creditor']['name']}, "
            f"{outstanding} {case_file['amounts']['currency']} (minor units) outstanding")
        answer = requests.post(f"{api_base}/cases/{case_id}/ack", json={"reference": "NC-" + case_id[-6:]},
                               headers=auth, timeout=10)
        say(f"  acknowledged: {answer.status_code}")
        if pay:
            answer = requests.post(f"{api_base}/cases/{case_id}/events", headers=auth, timeout=30, json={
                "id": f"demo-pay-{case_id}", "type": "closed_paid", "amount": outstanding})
            say(f"  paid in full and closed: {answer.status_code} {json.dumps(answer.json().get('case', {}))}")

    parts = urlsplit(endpoint_url)
    server = ThreadingHTTPServer((parts.hostname or "", parts.port or 80), make_handler(secrets, act, say))
    say(f"Listening at {endpoint_url} (Ctrl-C to stop).")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
