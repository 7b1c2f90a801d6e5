"""Twilio's hooks: an SMS's delivery status (`POST /hooks/twilio/status`, the StatusCallback the SMS
channel sends) and the replies customers send to our number (`POST /hooks/twilio/inbound`, the
number's "A message comes in" webhook): STOP and START.

Each request must carry a valid X-Twilio-Signature over the public URL (PORTAL_BASE_URL and the
path: behind a proxy the request's own host is not the one Twilio signed) and the form parameters,
checked with the official SDK's validator and the auth token: else 403 and nothing changes. Not
found (404) while SMS is off. Neither the text of a reply nor the token is logged.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, abort, current_app, request

from app.extensions import csrf, db
from app.outbox.feedback import (
    INBOUND_PATH,
    STATUS_PATH,
    public_url,
    record_sms_reply,
    record_sms_status,
    twilio_signature_valid,
)

log = logging.getLogger(__name__)
bp = Blueprint("outbox_hooks", __name__)

SIGNATURE = "X-Twilio-Signature"
SIGNATURE_SETTINGS = "X-Twilio-Webhooks-Signature-Settings"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def _verified() -> None:
    config = current_app.config
    if config["SMS_PROVIDER"] != "twilio":
        abort(404)
    url = public_url(config, request.full_path)
    if not twilio_signature_valid(config["TWILIO_AUTH_TOKEN"], url, request.form, request.headers.get(SIGNATURE),
                                  request.headers.get(SIGNATURE_SETTINGS)):
        log.warning("a Twilio hook without a valid signature was refused (%s)", request.path)
        abort(403)


@bp.post(STATUS_PATH)
@csrf.exempt  # Twilio cannot send our CSRF token; its signature is checked instead
def sms_status():
    _verified()
    sid, status = request.form.get("MessageSid", ""), request.form.get("MessageStatus", "")
    if not sid or not status:
        return Response("MessageSid and MessageStatus are required\n", 400, mimetype="text/plain")
    outcome = record_sms_status(sid, status, error_code=request.form.get("ErrorCode") or None)
    db.session.commit()
    log.info("Twilio status %s for %s: %s", status[:20], sid[:40], outcome)
    return Response(status=204)


@bp.post(INBOUND_PATH)
@csrf.exempt
def sms_inbound():
    _verified()
    number, receiver = request.form.get("From", ""), request.form.get("To", "")
    if not number:
        return Response("From is required\n", 400, mimetype="text/plain")
    outcome = record_sms_reply(number, receiver, request.form.get("Body", ""))
    db.session.commit()
    if outcome:
        log.info("an SMS %s reply was recorded", outcome)
    # No reply of our own: Twilio answers the keywords itself (its opt-out confirmations).
    return Response(EMPTY_TWIML, mimetype="text/xml")
