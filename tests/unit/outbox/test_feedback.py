"""What providers tell us after they took a message (`outbox.feedback`): the order of statuses, the
STOP and START words, Twilio's signature over the public URL, the DSNs that are bounces of ours, and
the signal a dead message and a refused recipient send."""

from __future__ import annotations

import pytest
from twilio.request_validator import RequestValidator

from app.extensions import db
from app.outbox import feedback
from app.outbox.dispatcher import run_once
from app.outbox.email import message_id
from app.outbox.services import enqueue

pytestmark = pytest.mark.usefixtures("ctx")

TOKEN = "12345678901234567890123456789012"


@pytest.mark.parametrize(("body", "stopped"), [
    ("STOP", True), ("stop", True), ("  Stopp \n", True), ("STOPALL", True), ("Unsubscribe", True),
    ("cancel", True), ("END", True), ("quit!", True), ("START", False), ("unstop", False), ("Yes", False),
    ("please stop", None), ("", None), (None, None), ("STOP STOP", None), ("stopper", None),
])
def test_the_keywords_are_the_whole_trimmed_text_in_any_case(body, stopped):
    assert feedback.opt_out_keyword(body) is stopped


def test_the_signature_is_checked_over_the_public_url_and_the_form():
    url = "https://pay.example.test/hooks/twilio/status"
    params = {"MessageSid": "SM1", "MessageStatus": "delivered"}
    signature = RequestValidator(TOKEN).compute_signature(url, params)
    assert feedback.twilio_signature_valid(TOKEN, url, params, signature)
    assert not feedback.twilio_signature_valid(TOKEN, url, {**params, "MessageStatus": "failed"}, signature)
    assert not feedback.twilio_signature_valid(TOKEN, "http://10.0.0.5:8000/hooks/twilio/status", params, signature)
    assert not feedback.twilio_signature_valid(TOKEN, url, params, None)
    assert not feedback.twilio_signature_valid("", url, params, signature)
    sha256 = RequestValidator(TOKEN).compute_signature(url, params, "HMAC_SHA256")
    assert feedback.twilio_signature_valid(TOKEN, url, params, sha256, "algorithm=HMAC_SHA256")
    assert not feedback.twilio_signature_valid(TOKEN, url, params, sha256)


def test_the_public_url_is_the_configured_base_and_the_path():
    config = {"PORTAL_BASE_URL": "https://pay.example.test/"}
    assert feedback.public_url(config, "/hooks/twilio/status?") == "https://pay.example.test/hooks/twilio/status"
    assert feedback.public_url(config, "/hooks/twilio/status?a=1") == "https://pay.example.test/hooks/twilio/status?a=1"
    assert feedback.status_callback_url(config) == "https://pay.example.test/hooks/twilio/status"
    assert feedback.status_callback_url({"PORTAL_BASE_URL": ""}) is None


def report(original: str, *, content_type: str = "multipart/report; report-type=delivery-status",
           per_recipient: str = "Final-Recipient: rfc822; kari@example.test\nAction: failed\nStatus: 5.1.1\n"
                                "Diagnostic-Code: smtp; 550 5.1.1 unknown user\n") -> bytes:
    return (f'MIME-Version: 1.0\nContent-Type: {content_type}; boundary="X"\n\n'
            "--X\nContent-Type: text/plain\n\nUndeliverable.\n"
            "--X\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.test\n\n"
            f"{per_recipient}\n"
            f"--X\n{original}--X--\n").encode()


OURS = message_id("dunning.message:1", "pay.example.test")


def test_a_dsn_names_our_message_by_its_message_id_in_headers_or_the_whole_message():
    headers = report(f"Content-Type: text/rfc822-headers\n\nMessage-ID: {OURS}\nSubject: x\n\n")
    whole = report(f"Content-Type: message/rfc822\n\nMessage-ID: {OURS}\nSubject: x\n\nbody\n")
    for raw in (headers, whole):
        (bounce,) = feedback.parse_bounce(raw)
        assert (bounce.key, bounce.recipient, bounce.status) == (OURS[1:41], "kari@example.test", "5.1.1")
        assert "550 5.1.1 unknown user" in bounce.diagnostic


@pytest.mark.parametrize("raw", [
    report(f"Content-Type: text/rfc822-headers\n\nMessage-ID: {OURS}\n\n",
           per_recipient="Final-Recipient: rfc822; kari@example.test\nAction: delayed\nStatus: 4.4.7\n"),
    report(f"Content-Type: text/rfc822-headers\n\nMessage-ID: {OURS}\n\n",
           content_type="multipart/report; report-type=disposition-notification"),
    report("Content-Type: text/rfc822-headers\n\nMessage-ID: <abc@elsewhere.test>\n\n"),
    b"Subject: hello\n\nnot a report",
    b"\xff\xfe\x00garbage",
])
def test_delays_read_receipts_others_mail_and_garbage_are_no_bounce(raw):
    assert feedback.parse_bounce(raw) == []


def test_a_recipient_refused_for_good_is_reported_as_a_bounce(smtp):

    heard = []

    def listen(message, **news):
        heard.append((message.id, news["bounced"], news["code"], news["reason"]))

    feedback.message_failed.connect(listen)
    try:
        smtp.refuse["gone@example.test"] = "550 5.1.1 No such user"
        refused = enqueue("email", "test_note", "gone@example.test", payload={"n": 1}, idempotency_key="k:1",
                          creditor_id=None, locale="en")
        fine = enqueue("email", "test_note", "kari@example.test", payload={"n": 2}, idempotency_key="k:2",
                       creditor_id=None, locale="en")
        db.session.commit()
        report_ = run_once()
    finally:
        feedback.message_failed.disconnect(listen)
    assert (report_.delivered, report_.dead) == (1, 1)
    assert heard == [(refused.id, True, "550", "bounced")]
    assert (refused.provider_status, fine.provider_status) == ("bounced", "sent")
    assert fine.provider_ref == smtp.messages[0]["Message-ID"][1:41]


def test_a_message_dead_after_its_last_try_is_reported_as_failed(app, smtp, monkeypatch):

    heard = []
    monkeypatch.setitem(app.config, "OUTBOX_MAX_ATTEMPTS", 1)
    smtp.data_answer = "451 4.3.0 Try later"

    def listen(message, **news):
        heard.append((news["bounced"], news["code"]))

    feedback.message_failed.connect(listen)
    try:
        enqueue("email", "test_note", "kari@example.test", payload={"n": 1}, idempotency_key="k:3", creditor_id=None,
                locale="en")
        db.session.commit()
        assert run_once().dead == 1
    finally:
        feedback.message_failed.disconnect(listen)
    assert heard == [(False, "451")]
