"""What the outbox's service and its channels share: the failure a channel reports, the channel's
interface, and the renderers that turn a message into what its channel sends.

Renderers are registered when the app is created (`app._register_renderers`), each kind's by the
first dotted part of its name ("support.reply" -> support's e-mail renderer), one function per
channel and kind. So a misspelt renderer fails at start-up, and `enqueue` refuses a kind nothing
renders instead of leaving a dead letter to find later. The registry is one per process (like a
blinker signal's receivers): renderers are code, the same for every app the process creates.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any, Protocol

from flask_babel import force_locale

from app.i18n import DEFAULT_LOCALE
from app.models import utcnow
from app.outbox.models import OutboxMessage
from app.security import redact_tokens


class DeliveryError(Exception):
    """A delivery failed. `permanent`: trying again cannot help (the recipient was refused, the
    data to render is gone); the message goes straight to the dead letters. `retry_after`: the
    receiver asked us to wait at least this long (HTTP Retry-After). `after`: a change to record
    with the failure, in its transaction (what the channel's own work wrote is rolled back), such
    as disabling an endpoint that answered 410 Gone. `code`: the provider's own code for the failure
    (Twilio's error code, "21610"; the SMTP reply code, "550"), for those who hear of a dead message
    (`outbox.feedback.message_failed`); `bounced`: an e-mail the receiving server refused for good."""

    def __init__(self, reason: str, *, permanent: bool = False, retry_after: timedelta | None = None,
                 after: Callable[[], None] | None = None, code: str | None = None, bounced: bool = False):
        super().__init__(reason)
        self.permanent = permanent
        self.retry_after = retry_after
        self.after = after
        self.code = code
        self.bounced = bounced


class Channel(Protocol):
    """Delivers one message (rendering it first) or raises DeliveryError. May write to the
    session (e.g. issue a link the message carries): that is committed only with its success."""

    def send(self, message: OutboxMessage) -> None: ...

    def close(self) -> None: ...


Renderer = Callable[[OutboxMessage], Any]
#: Reads what a batch of one kind's messages needs, in a few statements for all of them, and leaves it on
#: each message (`OutboxMessage.prepared`) for its renderer; a renderer reads for itself what is not there.
Preparer = Callable[[list[OutboxMessage]], None]

#: What each channel's renderers return, for the error of a kind without one.
WHAT = {"email": "e-mail template", "sms": "SMS text", "webhook": "webhook"}


class Renderers:
    """Channel and kind prefix -> the function that renders such a message."""

    def __init__(self) -> None:
        self._by: dict[tuple[str, str], Renderer] = {}
        self._preparers: dict[str, Preparer] = {}

    def register(self, channel: str, prefix: str, renderer: Renderer) -> None:
        if not callable(renderer):
            raise TypeError(f"the renderer of {channel} {prefix!r} is not a function")
        known = self._by.get((channel, prefix))
        if known is not None and known is not renderer:
            raise ValueError(f"{channel} {prefix!r} has a renderer already ({known.__module__}.{known.__name__})")
        self._by[(channel, prefix)] = renderer

    def register_preparer(self, prefix: str, preparer: Preparer) -> None:
        """A kind prefix's batch reader (see `Preparer`), whatever the channel."""
        if not callable(preparer):
            raise TypeError(f"the preparer of {prefix!r} is not a function")
        known = self._preparers.get(prefix)
        if known is not None and known is not preparer:
            raise ValueError(f"{prefix!r} has a preparer already ({known.__module__}.{known.__name__})")
        self._preparers[prefix] = preparer

    def prepare(self, messages: list[OutboxMessage]) -> None:
        """Let each kind's preparer read for its messages of the batch at once (the dispatcher, after a claim)."""
        by_prefix: dict[str, list[OutboxMessage]] = {}
        for message in messages:
            prefix = message.kind.split(".", 1)[0]
            if prefix in self._preparers:
                by_prefix.setdefault(prefix, []).append(message)
        for prefix, batch in by_prefix.items():
            self._preparers[prefix](batch)

    def find(self, channel: str, kind: str) -> Renderer | None:
        return self._by.get((channel, kind.split(".", 1)[0]))

    def render(self, message: OutboxMessage) -> Any:
        """The message rendered in its locale. A kind without a renderer (written by a release that
        had one) is a permanent DeliveryError ("no e-mail template for ...")."""
        renderer = self.find(message.channel, message.kind)
        if renderer is None:
            raise DeliveryError(f"no {WHAT.get(message.channel, 'renderer')} for {message.kind!r}", permanent=True)
        with force_locale(message.locale or DEFAULT_LOCALE):
            return renderer(message)


#: Kinds whose text is not kept once sent: an agent's sign-in code is a secret; a reminder keeps its
#: own (dunning's message records its words).
TEXT_NOT_KEPT = ("agent.", "dunning.")


#: `provider_status` of a test bill's message to a customer: rendered and kept, never sent
TEST_NOT_SENT = "test_not_sent"
#: the channels that reach a customer (a webhook reaches a creditor's or partner's system)
CUSTOMER_CHANNELS = frozenset({"email", "sms"})


def withheld(message: OutboxMessage) -> bool:
    """Whether the dispatcher keeps this message instead of sending it: a test bill's, to a customer."""
    return message.livemode is False and message.channel in CUSTOMER_CHANNELS


def withhold(message: OutboxMessage) -> None:
    """A test bill's message to a customer: rendered (so the back office shows what would have gone out)
    and kept, never handed to the SMTP server or the SMS provider; recorded as delivered with the
    provider status "test_not_sent" (docs/api.md, "Test mode")."""
    rendered = render(message)
    subject, text = (None, rendered) if isinstance(rendered, str) else (rendered.subject, rendered.text)
    message.provider_status, message.provider_status_at = TEST_NOT_SENT, utcnow()
    keep_text(message, subject, text)


def keep_text(message: OutboxMessage, subject: str | None, text: str) -> None:
    """Keep what was sent to the customer (subject and plain text), every link's token redacted, on the
    message: written with the delivery, in its transaction (nothing is kept for a failed one)."""
    if message.kind.startswith(TEXT_NOT_KEPT):
        return
    message.sent_subject = redact_tokens(subject)[:300] if subject else None
    message.sent_text = redact_tokens(text)


_RENDERERS = Renderers()


def renderers() -> Renderers:
    """The process's renderers (filled by the app factory)."""
    return _RENDERERS


def render(message: OutboxMessage) -> Any:
    """Render `message` with the renderer registered for its channel and kind."""
    return _RENDERERS.render(message)
