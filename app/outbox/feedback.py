"""What providers tell us after they took a message: Twilio's delivery status callbacks and inbound
replies (STOP, START), and bounces of e-mail (a permanent refusal by the relay, recorded by the
dispatcher, or a delivery status notification that came back to the bounce mailbox).

The outbox row keeps the provider's id for the message (`provider_ref`: Twilio's message SID; for
e-mail the hash part of the Message-ID we set) and the furthest status it reported
(`provider_status`, never moved backwards: callbacks arrive out of order and more than once). The
features that sent a message hear of it by blinker signals, connected by the app factory (the outbox
imports no feature):

- `message_delivered` (sender: the OutboxMessage; `status`: "queued", "sent" or "delivered"; `at`),
- `message_failed` (sender: the OutboxMessage; `reason`, `bounced`, `code`, `at`): it will not reach
  its recipient (an SMS undelivered or failed, an e-mail bounced, a message dead in the outbox),
- `sms_opt_out` (sender: the E.164 number; `stopped`: True for STOP, False for START; `receiver`: our
  number that received the reply; `at`).

Receivers run in the caller's transaction: the hook's request, the dispatcher's record of a failure,
or `flask outbox bounces`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email import message_from_bytes, policy
from email.message import Message as MimeMessage
from typing import Any

from blinker import signal
from sqlalchemy import select
from twilio.request_validator import RequestValidator, get_signature_algorithm

from app.extensions import db
from app.models import utcnow
from app.outbox.models import OutboxMessage

log = logging.getLogger(__name__)

STATUS_PATH = "/hooks/twilio/status"
INBOUND_PATH = "/hooks/twilio/inbound"

message_delivered = signal("outbox-message-delivered")
message_failed = signal("outbox-message-failed")
sms_opt_out = signal("sms-opt-out")

#: How far along a message is, by the provider's word for it. A status reported after a further one
#: (an out-of-order callback) changes nothing; the failures are final.
RANK: dict[str, int] = {"accepted": 0, "scheduled": 0, "queued": 0, "sending": 1, "sent": 1, "delivered": 2,
                        "read": 3, "undelivered": 4, "failed": 4, "bounced": 4}
FAILED = frozenset({"undelivered", "failed", "bounced"})
#: What each progress means to the sender of the message.
PROGRESS = {0: "queued", 1: "sent", 2: "delivered", 3: "delivered"}

#: Replies that stop and restart a number's SMS: Twilio's own opt-out and opt-in keywords (its
#: "Advanced Opt-Out" defaults), with the Norwegian STOPP (the German is STOP). docs/operations.md.
STOP_WORDS = frozenset({"STOP", "STOPP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE"})
START_WORDS = frozenset({"START", "UNSTOP", "YES"})


def status_callback_url(config: Mapping[str, Any]) -> str | None:
    """The URL Twilio posts an SMS's status to: the hook at our public base URL (PORTAL_BASE_URL)."""
    base = (config.get("PORTAL_BASE_URL") or "").rstrip("/")
    return f"{base}{STATUS_PATH}" if base else None


def public_url(config: Mapping[str, Any], full_path: str) -> str:
    """The URL Twilio requested, as it signed it: our public base URL (behind a proxy the request's own
    host is the proxy's) and the path with its query string."""
    path = full_path[:-1] if full_path.endswith("?") else full_path  # Werkzeug adds "?" to a bare path
    return (config.get("PORTAL_BASE_URL") or "").rstrip("/") + path


def twilio_signature_valid(auth_token: str, url: str, params: Any, signature: str | None,
                           settings_header: str | None = None) -> bool:
    """X-Twilio-Signature checked with the official SDK's validator (HMAC-SHA1 of the URL and the sorted
    form parameters, keyed by the auth token; HMAC-SHA256 where Twilio's signature settings say so)."""
    if not auth_token or not signature:
        return False
    return bool(RequestValidator(auth_token).validate(url, params, signature,
                                                      get_signature_algorithm(settings_header)))


def record_sms_status(sid: str, status: str, *, error_code: str | None = None,
                      now: datetime | None = None) -> str:
    """A Twilio status callback for message `sid`. Returns what became of it: "recorded", "stale"
    (repeated, or behind what was reported before), "ignored" (a status we do not track) or "unknown"
    (not one of our messages). Adds and flushes."""
    now = now or utcnow()
    status = (status or "").strip().lower()
    message = db.session.scalar(select(OutboxMessage).where(OutboxMessage.provider_ref == sid,
                                                            OutboxMessage.channel == "sms"))
    if message is None:
        return "unknown"
    if status not in RANK:
        return "ignored"
    before = RANK.get(message.provider_status or "", -1)
    if before >= RANK[status] or before == RANK["failed"]:
        return "stale"
    message.provider_status, message.provider_status_at = status, now
    db.session.flush()
    if status in FAILED:
        words = f"SMS {status}" + (f" (Twilio error {error_code})" if error_code else "")
        message_failed.send(message, reason=words, bounced=False, code=error_code, at=now)
    else:
        message_delivered.send(message, status=PROGRESS[RANK[status]], at=now)
    return "recorded"


def opt_out_keyword(body: str | None) -> bool | None:
    """True for a STOP reply, False for a START one, None for anything else: the whole text, trimmed,
    in any case (a full stop or exclamation mark after the word is forgiven)."""
    word = (body or "").strip().rstrip(".!").strip().upper()
    if word in STOP_WORDS:
        return True
    if word in START_WORDS:
        return False
    return None


def record_sms_reply(number: str, receiver: str, body: str, *, now: datetime | None = None) -> str | None:
    """An SMS a customer sent to our number: "stop" or "start" when it was one of the keywords (its
    receivers record it), None otherwise. The text itself is not kept."""
    stopped = opt_out_keyword(body)
    if stopped is None:
        return None
    sms_opt_out.send(number, stopped=stopped, receiver=receiver, at=now or utcnow())
    return "stop" if stopped else "start"


def report_dead(message: OutboxMessage, reason: str, *, code: str | None, bounced: bool,
                now: datetime | None = None) -> None:
    """The dispatcher gave up on `message` (refused for good, or out of tries): tell its sender."""
    now = now or utcnow()
    if bounced:
        message.provider_status, message.provider_status_at = "bounced", now
    message_failed.send(message, reason="bounced" if bounced else reason, bounced=bounced, code=code, at=now)


# --- bounces: delivery status notifications (RFC 3464) ---------------------------------------------------


@dataclass(frozen=True)
class Bounce:
    key: str  # the Message-ID's hash part (`email.message_key`): the outbox row's provider_ref
    recipient: str
    status: str  # the DSN's status code, "5.1.1"
    diagnostic: str


OUR_MESSAGE_ID = re.compile(r"<([0-9a-f]{40})@[^>]+>")


def _original_headers(report: MimeMessage) -> MimeMessage | None:
    for part in report.walk():
        kind = part.get_content_type()
        if kind in ("message/rfc822", "message/global"):
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], MimeMessage):
                return inner[0]
        if kind in ("text/rfc822-headers", "text/global-headers"):
            raw = part.get_payload(decode=True)
            return message_from_bytes(raw if isinstance(raw, bytes) else b"", policy=policy.default)
    return None


def _recipient_fields(report: MimeMessage) -> list[MimeMessage]:
    for part in report.walk():
        if part.get_content_type() in ("message/delivery-status", "message/global-delivery-status"):
            blocks = part.get_payload()
            if isinstance(blocks, list):
                return [block for block in blocks[1:] if isinstance(block, MimeMessage)]  # after the per-message one
    return []


def parse_bounce(raw: bytes) -> list[Bounce]:
    """The permanent failures a DSN reports for one of our e-mails: each recipient whose Action is
    "failed" with a 5.x.x Status. Delays (4.x.x, "delayed") and anything that is not a
    multipart/report of report-type delivery-status, or whose original Message-ID is not ours, give
    nothing."""
    try:
        report = message_from_bytes(raw, policy=policy.default)
    except (ValueError, TypeError, IndexError):
        return []
    report_type = report.get_param("report-type")
    if report.get_content_type() != "multipart/report" or str(report_type or "").lower() != "delivery-status":
        return []
    original = _original_headers(report)
    found = OUR_MESSAGE_ID.search(str(original.get("Message-ID", "")) if original is not None else "")
    if found is None:
        return []
    bounces = []
    for fields in _recipient_fields(report):
        action = str(fields.get("Action", "")).strip().lower()
        status = str(fields.get("Status", "")).strip()
        if action == "failed" and status.startswith("5."):
            recipient = str(fields.get("Final-Recipient", "")).partition(";")[2].strip()
            bounces.append(Bounce(found.group(1), recipient, status,
                                  " ".join(str(fields.get("Diagnostic-Code", "")).split())[:200]))
    return bounces


def record_bounce(bounce: Bounce, *, now: datetime | None = None) -> str:
    """A permanent bounce of one of our e-mails: "recorded", "repeat" (known already) or "unknown".
    Adds and flushes."""
    now = now or utcnow()
    message = db.session.scalar(select(OutboxMessage).where(OutboxMessage.provider_ref == bounce.key,
                                                            OutboxMessage.channel == "email"))
    if message is None:
        return "unknown"
    if message.provider_status == "bounced":
        return "repeat"
    message.provider_status, message.provider_status_at = "bounced", now
    db.session.flush()
    message_failed.send(message, reason="bounced", bounced=True, code=bounce.status, at=now)
    return "recorded"
