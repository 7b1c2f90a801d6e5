"""The e-mail channel: render a message in its language and its creditor's brand, send it over SMTP.

Rendering happens at delivery time, from the ids in the payload, so an e-mail shows the facts
as they are stored and the templates of the running release. The message is multipart/
alternative (text, then HTML), From the creditor's name at MAIL_FROM, Reply-To the creditor's
support address. Its Message-ID is derived from the idempotency key, so every resend of one
message carries the same Message-ID (mail clients show repeats once), and `X-Idempotency-Key`
carries the key itself for receivers that deduplicate on it.

SMTP failures become DeliveryErrors with the server's answer, never with our credentials: the
password (and its base64 forms used by AUTH) is blanked out of every error text.
"""

from __future__ import annotations

import base64
import hashlib
import smtplib
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import Any

from app.models import utcnow
from app.outbox.base import DeliveryError, keep_text
from app.outbox.base import render as render_message
from app.outbox.models import OutboxMessage


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    sender: str  # the envelope sender and From address
    use_tls: bool = False  # STARTTLS after connecting
    use_ssl: bool = False  # TLS from the first byte (SMTPS, port 465)
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 30

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> SmtpSettings:
        return cls(
            host=config["MAIL_SERVER"], port=config["MAIL_PORT"], sender=parseaddr(config["MAIL_FROM"])[1],
            use_tls=config["MAIL_USE_TLS"], use_ssl=config["MAIL_USE_SSL"], username=config["MAIL_USERNAME"],
            password=config["MAIL_PASSWORD"], timeout=config["MAIL_TIMEOUT_SECONDS"],
        )

    @property
    def domain(self) -> str:
        return self.sender.rpartition("@")[2] or "localhost"

    def secrets(self) -> list[str]:
        """Every form in which the password could appear in an SMTP exchange."""
        if not self.password:
            return []
        plain = f"\0{self.username}\0{self.password}".encode()
        return [self.password, base64.b64encode(self.password.encode()).decode(), base64.b64encode(plain).decode()]


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str
    sender_name: str | None = None  # the From's display name: the creditor's
    reply_to: str | None = None
    attachments: tuple[tuple[str, str, bytes], ...] = ()  # (filename, MIME type, content)
    headers: tuple[tuple[str, str], ...] = ()  # more headers (List-Unsubscribe, RFC 2369 and 8058)


def render(message: OutboxMessage) -> RenderedEmail:
    """The message's subject and parts, in its locale (its kind's registered renderer). Raises a
    permanent DeliveryError for a kind without one."""
    return render_message(message)


@dataclass(frozen=True)
class Notice:
    """A short e-mail to a customer or a creditor's support desk: what happened and what comes next.

    Every text is already translated (the renderer runs in the message's locale); `quote` is a
    customer's or agent's own words, shown as plain text (escaped, line breaks kept)."""

    subject: str
    heading: str
    paragraphs: Sequence[str]
    facts: Sequence[tuple[str, str]] = ()
    quote: str | None = None
    quote_label: str | None = None
    link_url: str | None = None
    link_label: str | None = None
    link_note: str | None = None
    why: str | None = None  # the footer's "you receive this e-mail because ..."
    attachments: tuple[tuple[str, str, bytes], ...] = ()
    reply_to: str | None = None
    # An unsubscribe link in the footer (a page with a button), and the List-Unsubscribe headers with
    # one-click (RFC 8058): `one_click_url` takes a POST of "List-Unsubscribe=One-Click" and unsubscribes.
    unsubscribe_url: str | None = None
    unsubscribe_label: str | None = None
    one_click_url: str | None = None


def notice_email(notice: Notice, creditor, *, locale: str | None) -> RenderedEmail:
    """Render a Notice in the shared layout (templates/email/notice.html and .txt)."""
    from flask import render_template

    context = {"notice": notice, "creditor": creditor, "subject": notice.subject, "locale": locale}
    return RenderedEmail(
        subject=notice.subject,
        text=render_template("email/notice.txt", **context),
        html=render_template("email/notice.html", **context),
        sender_name=creditor.sender_name if creditor is not None else None,
        reply_to=creditor.reply_address(notice.reply_to) if creditor is not None else notice.reply_to,
        attachments=notice.attachments,
        headers=unsubscribe_headers(notice.one_click_url) if notice.one_click_url else (),
    )


def unsubscribe_headers(url: str) -> tuple[tuple[str, str], ...]:
    """RFC 2369's List-Unsubscribe with RFC 8058's one-click POST (an https address; no mailto)."""
    return (("List-Unsubscribe", f"<{url}>"), ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"))


def message_key(idempotency_key: str) -> str:
    """The Message-ID's left part: the same for every send of one message; the key itself does not show."""
    return hashlib.sha256(idempotency_key.encode()).hexdigest()[:40]


def message_id(idempotency_key: str, domain: str) -> str:
    """The same Message-ID for every send of one message; the key itself does not show."""
    return f"<{message_key(idempotency_key)}@{domain}>"


def build_email(message: OutboxMessage, rendered: RenderedEmail, settings: SmtpSettings) -> EmailMessage:
    """The MIME message. A recipient or header the e-mail library refuses is a permanent failure."""
    email = EmailMessage()
    try:
        email["Subject"] = rendered.subject
        email["From"] = Address(display_name=rendered.sender_name or "", addr_spec=settings.sender)
        email["To"] = message.recipient
        if rendered.reply_to:
            email["Reply-To"] = rendered.reply_to
        email["Date"] = format_datetime(utcnow())
        email["Message-ID"] = message_id(message.idempotency_key, settings.domain)
        email["X-Idempotency-Key"] = message.idempotency_key
        email["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to a receipt
        for name, value in rendered.headers:
            email[name] = value
    except (ValueError, IndexError) as exc:
        raise DeliveryError(f"cannot address the e-mail: {exc}", permanent=True) from None
    email.set_content(rendered.text)
    email.add_alternative(rendered.html, subtype="html")
    for filename, mime, content in rendered.attachments:
        maintype, _slash, subtype = mime.partition("/")
        params = {"method": "PUBLISH"} if mime == "text/calendar" else {}
        email.add_attachment(content, maintype=maintype, subtype=subtype, filename=filename, params=params)
    if message.locale:  # after the content: set_content() clears every Content-* header
        email["Content-Language"] = message.locale
    return email


class EmailChannel:
    """Sends over one SMTP connection per dispatcher run, opened at the first message."""

    def __init__(self, settings: SmtpSettings):
        self.settings = settings
        self._connection: smtplib.SMTP | None = None

    def send(self, message: OutboxMessage) -> None:
        rendered = render(message)
        email = build_email(message, rendered, self.settings)
        self._transmit(email, message.recipient)
        # A bounce (a DSN) names the Message-ID: its hash part finds this message (`outbox.feedback`).
        message.provider_ref = message_key(message.idempotency_key)
        message.provider_status, message.provider_status_at = "sent", utcnow()
        keep_text(message, rendered.subject, rendered.text)

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.quit()
            except (smtplib.SMTPException, OSError):
                connection.close()

    def _transmit(self, email: EmailMessage, recipient: str) -> None:
        reused = self._connection is not None
        try:
            try:
                self._connect().send_message(email, from_addr=self.settings.sender, to_addrs=[recipient])
            except smtplib.SMTPServerDisconnected:
                if not reused:
                    raise
                self.close()  # the server hung up an idle connection: one fresh try
                self._connect().send_message(email, from_addr=self.settings.sender, to_addrs=[recipient])
        except smtplib.SMTPRecipientsRefused as exc:  # the connection is still good for the next message
            raise smtp_failure(exc, self.settings.secrets()) from None
        except (smtplib.SMTPException, OSError) as exc:
            self._drop()
            raise smtp_failure(exc, self.settings.secrets()) from None

    def _connect(self) -> smtplib.SMTP:
        if self._connection is not None:
            return self._connection
        s = self.settings
        connection: smtplib.SMTP
        if s.use_ssl:
            connection = smtplib.SMTP_SSL(s.host, s.port, local_hostname=s.domain, timeout=s.timeout,
                                          context=ssl.create_default_context())
        else:
            connection = smtplib.SMTP(s.host, s.port, local_hostname=s.domain, timeout=s.timeout)
        try:
            if s.use_tls:
                connection.starttls(context=ssl.create_default_context())
            if s.username:
                connection.login(s.username, s.password or "")
        except BaseException:
            connection.close()
            raise
        self._connection = connection
        return connection

    def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()


def smtp_failure(exc: Exception, secrets: list[str]) -> DeliveryError:
    """What went wrong, for last_error and the log. Permanent only when the server refused this
    message for good (5xx on the recipient or on the data); a 5xx on the login or the sender is
    our configuration, which an operator fixes: those are retried."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        answers = list(exc.recipients.values())
        detail = "; ".join(f"{code} {_text(text)}" for code, text in answers)
        permanent = bool(answers) and all(500 <= code < 600 for code, _ in answers)
        return DeliveryError(_redact(f"recipient refused: {detail}", secrets), permanent=permanent,
                             code=str(answers[0][0]) if answers else None, bounced=permanent)
    if isinstance(exc, smtplib.SMTPResponseException):
        permanent = isinstance(exc, smtplib.SMTPDataError) and 500 <= exc.smtp_code < 600
        return DeliveryError(_redact(f"{type(exc).__name__}: {exc.smtp_code} {_text(exc.smtp_error)}", secrets),
                             permanent=permanent, code=str(exc.smtp_code), bounced=permanent)
    return DeliveryError(_redact(f"{type(exc).__name__}: {exc}", secrets))


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _redact(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return text
