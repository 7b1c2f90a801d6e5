"""The SMS channel: render a message to a short text in its language, send it through Twilio.

Rendering happens at delivery time, like e-mail: the kind's registered renderer (`outbox.base`)
returns the text, called inside `force_locale(message.locale)`. The text is
sent with Twilio's Programmable Messaging API (`client.messages.create`) from SMS_FROM.

Before any network call, a recipient that is not E.164 and a text that is empty or longer than
Twilio's 1600 characters are refused for good: Twilio would refuse them every time.

Every request carries the outbox message's idempotency key in the `I-Twilio-Idempotency-Token`
header, the same on every resend of one message. The SDK's `messages.create()` builds its own
headers and takes none from the caller (twilio/rest/api/v2010/account/message/__init__.py,
`MessageList._create`), so the header is added by this channel's own HTTP client, a
`TwilioHttpClient` subclass: `Client(http_client=...)` is the SDK's documented way to change
how requests go out (twilio/base/client_base.py). Twilio documents this header on the webhooks it
sends; its Messages API reference does not promise to deduplicate on it, so it is sent as the
receiver-side half of at-least-once delivery (like e-mail's Message-ID), not relied on alone.

Failures become DeliveryErrors with Twilio's status, code and message, never with our
credentials: the auth token (and the Basic authorization built from it) is blanked out of every
error text. See `twilio_failure` for which answers are permanent.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import requests
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from app.core.validation import E164
from app.models import utcnow
from app.outbox.base import DeliveryError, keep_text
from app.outbox.base import render as render_message
from app.outbox.models import OutboxMessage

#: Twilio's limit on a message body (error 21617 above it).
MAX_TEXT_LENGTH = 1600
IDEMPOTENCY_HEADER = "I-Twilio-Idempotency-Token"

#: Twilio error codes that refuse this recipient or this text for good: retrying cannot help.
#: Any other 4xx (a sender the account does not own, geographic permissions, a wrong account
#: SID) is our configuration, which an operator fixes: retried, and dead after the last attempt.
PERMANENT_ERROR_CODES: dict[int, str] = {
    21211: "invalid 'To' phone number",
    21610: "the recipient has unsubscribed (replied STOP)",
    21614: "'To' is not a mobile number",
    21617: "the text is longer than 1600 characters",
}


@dataclass(frozen=True)
class SmsSettings:
    provider: str  # "twilio"; empty when SMS is off
    account_sid: str
    auth_token: str = field(repr=False)
    sender: str  # SMS_FROM: an E.164 number of the account, or an alphanumeric sender id
    base_url: str | None = None  # None: the SDK's own (https://api.twilio.com)
    timeout: float = 15
    # Where Twilio posts the message's delivery status (`outbox.feedback`): our public base URL's hook.
    status_callback: str | None = None

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> SmsSettings:
        from app.outbox.feedback import status_callback_url

        return cls(
            provider=config["SMS_PROVIDER"], account_sid=config["TWILIO_ACCOUNT_SID"],
            auth_token=config["TWILIO_AUTH_TOKEN"], sender=config["SMS_FROM"],
            base_url=config["TWILIO_BASE_URL"], timeout=config["SMS_TIMEOUT_SECONDS"],
            status_callback=status_callback_url(config),
        )

    def secrets(self) -> list[str]:
        """Every form in which the auth token could appear: itself and the Basic authorization."""
        if not self.auth_token:
            return []
        basic = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        return [self.auth_token, basic]


def render(message: OutboxMessage) -> str:
    """The message's text, in its locale (its kind's registered renderer). Raises a permanent
    DeliveryError for a kind without one."""
    return render_message(message)


def check_recipient(recipient: str) -> None:
    """Refuse for good a recipient Twilio would refuse every time; before rendering, which may
    write to the session (a link the text carries)."""
    if not E164.fullmatch(recipient):
        raise DeliveryError("the recipient is not an E.164 phone number (+ and 8 to 15 digits)", permanent=True)


def check_text(text: str) -> None:
    """Refuse for good, before any request, a text Twilio would refuse every time."""
    if not text.strip():
        raise DeliveryError("the SMS text is empty", permanent=True)
    # Twilio counts an emoji as more than one character (its error 21617); counted here in UTF-16
    # code units, where an emoji takes two. Should Twilio still find it too long, 21617 is permanent too.
    length = len(text.encode("utf-16-le")) // 2
    if length > MAX_TEXT_LENGTH:
        raise DeliveryError(f"the SMS text is {length} characters, more than {MAX_TEXT_LENGTH}", permanent=True)


class _IdempotentHttpClient(TwilioHttpClient):
    """The SDK's HTTP client, adding the idempotency token of the message being sent to its POST.

    `token` is set by SmsChannel around one `messages.create()`; a channel (and so this client)
    serves one dispatcher, one message at a time, like EmailChannel's SMTP connection."""

    token: str | None = None

    def request(self, method: str, url: str, params: dict[str, object] | None = None,
                data: dict[str, object] | None = None, headers: dict[str, str] | None = None,
                auth: tuple[str, str] | None = None, timeout: float | None = None,
                allow_redirects: bool = False) -> Response:
        if self.token and method.upper() == "POST":
            headers = {**(headers or {}), IDEMPOTENCY_HEADER: self.token}
        return super().request(method, url, params=params, data=data, headers=headers, auth=auth,
                               timeout=timeout, allow_redirects=allow_redirects)


class SmsChannel:
    """Sends through one Twilio client per dispatcher run, with this instance's own credentials."""

    def __init__(self, settings: SmsSettings):
        self.settings = settings
        self._http = _IdempotentHttpClient(timeout=settings.timeout)
        # ClientBase falls back to os.environ for whatever it is not given, and an empty mapping
        # counts as not given (`environment or os.environ`): TWILIO_EDGE or TWILIO_REGION there
        # would rewrite the API host. The settings come from our config alone.
        self._client = Client(settings.account_sid, settings.auth_token, http_client=self._http,
                              environment={"TWILIO_EDGE": "", "TWILIO_REGION": ""})
        if settings.base_url:
            # Every Api request URL is `Domain.base_url` + the path, read at request time
            # (twilio/base/domain.py, Domain.absolute_url; set in twilio/rest/api/ApiBase.py).
            self._client.api.base_url = settings.base_url

    def send(self, message: OutboxMessage) -> None:
        check_recipient(message.recipient)
        text = render(message)
        check_text(text)
        self._http.token = message.idempotency_key
        options: dict[str, Any] = {}
        if self.settings.status_callback:
            options["status_callback"] = self.settings.status_callback
        try:
            sent = self._client.messages.create(to=message.recipient, from_=self.settings.sender, body=text, **options)
            # Twilio's id for it: its status callbacks name it (committed with the delivery, by the dispatcher).
            message.provider_ref = sent.sid
            message.provider_status = str(getattr(sent.status, "value", sent.status) or "queued")
            message.provider_status_at = utcnow()
        except (TwilioException, requests.RequestException) as exc:
            raise twilio_failure(exc, self.settings.secrets()) from None
        finally:
            self._http.token = None
        keep_text(message, None, text)

    def close(self) -> None:
        if self._http.session is not None:
            self._http.session.close()


def twilio_failure(exc: Exception, secrets: list[str]) -> DeliveryError:
    """What went wrong, for last_error and the log. Permanent only for a 4xx whose code says this
    recipient or this text can never be sent (PERMANENT_ERROR_CODES). Retried: 401/403 (our
    credentials, fixed by an operator), 429 (the dispatcher's backoff stands in for Retry-After,
    which the SDK does not hand over), 5xx, connection errors and timeouts, other 4xx."""
    if isinstance(exc, (TwilioRestException, TwilioServiceException)):
        detail = exc.msg if isinstance(exc, TwilioRestException) else "; ".join(filter(None, [exc.title, exc.detail]))
        permanent = 400 <= exc.status < 500 and exc.code in PERMANENT_ERROR_CODES
        reason = f" ({PERMANENT_ERROR_CODES[exc.code]})" if permanent else ""
        return DeliveryError(_redact(f"Twilio answered {exc.status}, error {exc.code}{reason}: {detail}", secrets),
                             permanent=permanent, code=str(exc.code) if exc.code is not None else None)
    return DeliveryError(_redact(f"{type(exc).__name__}: {exc}", secrets))


def _redact(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return text
