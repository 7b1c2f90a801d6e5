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
import binascii
import email.policy
import functools
import hashlib
import random
import re
import smtplib
import ssl
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email import quoprimime
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
class EmailBlock:
    """A creditor's content block in an e-mail (app.content): its title, its body as sanitised HTML and as
    plain text, and a button (our signed redirect, or the "I am interested" page)."""

    title: str
    html: str
    text: str
    link_url: str | None = None
    link_label: str | None = None


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
    # The creditor's content blocks placed in reminder e-mails, after the button.
    blocks: Sequence[EmailBlock] = ()


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


def build_email(message: OutboxMessage, rendered: RenderedEmail, settings: SmtpSettings, *,
                date: datetime | None = None) -> EmailMessage:
    """The MIME message. A recipient or header the e-mail library refuses is a permanent failure."""
    email = EmailMessage(policy=_message_policy())
    try:
        email["Subject"] = rendered.subject
        email["From"] = Address(display_name=rendered.sender_name or "", addr_spec=settings.sender)
        email["To"] = message.recipient
        if rendered.reply_to:
            email["Reply-To"] = rendered.reply_to
        email["Date"] = format_datetime(date or utcnow())
        email["Message-ID"] = message_id(message.idempotency_key, settings.domain)
        email["X-Idempotency-Key"] = message.idempotency_key
        email["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to a receipt
        for name, value in rendered.headers:
            if name in WIRE_HEADERS:
                email.set_raw(name, _raw_value(value))  # written as they are: a URI is never encoded-words
            else:
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


#: The headers a renderer may add (`RenderedEmail.headers`) that `wire_email` writes itself. Both are
#: written as they are, unfolded (a line may be 998 characters, RFC 5322 § 2.1.1): folded by the default
#: policy, a List-Unsubscribe URI longer than a line became RFC 2047 encoded-words, which no mail client
#: reads as a URI, and RFC 8058's one-click unsubscribe was lost (and encoding it was the dispatcher's
#: largest cost per e-mail).
WIRE_HEADERS = frozenset({"List-Unsubscribe", "List-Unsubscribe-Post"})
MAX_RAW_LINE = 998
_RAW_VALUE = re.compile(r"[\x21-\x7e][\x20-\x7e]*")  # printable ASCII: no CR, LF or other control


def _raw_value(value: str) -> str:
    """A header value written as it is: printable ASCII on one line (a header cannot be injected)."""
    if not _RAW_VALUE.fullmatch(value) or len(value) > MAX_RAW_LINE - 40:
        raise ValueError("a header written as it is must be printable ASCII on one line")
    return value


@functools.cache
def _message_policy() -> email.policy.EmailPolicy[EmailMessage]:
    """The default policy, except that headers set with `set_raw` (`WIRE_HEADERS`) are never refolded."""
    return email.policy.default.clone(refold_source="none")
#: A boundary as `email.generator` makes it: 15 "=", 19 digits, "==".
_BOUNDARY_DIGITS = len(repr(sys.maxsize - 1))


def wire_email(message: OutboxMessage, rendered: RenderedEmail, settings: SmtpSettings, *,
               date: datetime | None = None, boundary: str | None = None) -> bytes | None:
    """The bytes `smtplib.SMTP.send_message` sends for `build_email`'s message, made without the
    `email` package's objects (the dispatcher's largest cost per e-mail was building and flattening
    them): the same headers, folded by the package's own policy (each distinct header once per
    process, `_header_line`), the same parts with the same transfer encodings, a boundary made as the
    package makes it. None for what this does not write (attachments, other added headers, an address
    that is not ASCII or that the package refuses): `build_email` then makes the message (and raises
    what it raises). tests/unit/outbox/test_wire_email.py holds the two to the same bytes."""
    recipient, sender = message.recipient, settings.sender
    if rendered.attachments or not (recipient.isascii() and sender.isascii()):
        return None
    names = [name for name, _value in rendered.headers]
    if len(set(names)) != len(names) or not WIRE_HEADERS.issuperset(names):
        return None
    try:
        headers = [
            _header_line("Subject", rendered.subject),
            _header_line("From", _from_value(rendered.sender_name or "", sender)),
            _header_line("To", recipient),
            _header_line("Reply-To", rendered.reply_to) if rendered.reply_to else b"",
            _header_line("Date", format_datetime(date or utcnow())),
            _header_line("Message-ID", message_id(message.idempotency_key, settings.domain)),
            _header_line("X-Idempotency-Key", message.idempotency_key),
            _header_line("Auto-Submitted", "auto-generated"),
            *(f"{name}: {_raw_value(value)}\r\n".encode("ascii") for name, value in rendered.headers),
        ]
    except (ValueError, IndexError, TypeError):
        return None
    parts = [_text_part(rendered.text, "plain", mime_version=False),
             _text_part(rendered.html, "html", mime_version=True)]
    boundary = boundary or _boundary(b"\r\n".join(parts))
    content_type = _header_line("Content-Type", f'multipart/alternative; boundary="{boundary}"')
    language = _header_line("Content-Language", message.locale) if message.locale else b""
    dash = b"--" + boundary.encode("ascii")
    return b"".join([*headers, b"MIME-Version: 1.0\r\n", content_type, language, b"\r\n",
                     dash, b"\r\n", parts[0], b"\r\n", dash, b"\r\n", parts[1], b"\r\n", dash, b"--\r\n"])


@functools.cache
def _wire_policy() -> email.policy.EmailPolicy[EmailMessage]:
    """What `send_message` flattens with: the message's policy (`_message_policy`) with CRLF line ends."""
    return _message_policy().clone(linesep="\r\n")


#: Values of the headers that differ in every message which the package writes as they are, on one line
#: when it fits: a plain address, a Message-ID of ours, an idempotency key (tests hold them to the package).
_AS_IS = {
    "To": re.compile(r"[A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"),
    "Message-ID": re.compile(r"<[A-Za-z0-9]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*>"),
    "X-Idempotency-Key": re.compile(r"[A-Za-z0-9_.:+-]+"),
}
#: A boundary as `_boundary` makes it (all of one length and of the same characters: they fold alike).
_PLAIN_BOUNDARY = re.compile("={15}[0-9]{" + str(_BOUNDARY_DIGITS) + "}==")


def _header_line(name: str, value: str) -> bytes:
    """One header as `EmailMessage.__setitem__` stores it and the generator folds it."""
    as_is = _AS_IS.get(name)
    if as_is is not None and len(name) + 2 + len(value) <= MAX_LINE and as_is.fullmatch(value):
        return f"{name}: {value}\r\n".encode("ascii")
    if name == "Content-Type" and value.startswith(_MULTIPART):
        boundary = value[len(_MULTIPART):-1]
        if value.endswith('"') and _PLAIN_BOUNDARY.fullmatch(boundary):
            model = "=" * 15 + "0" * (len(boundary) - 17) + "=="
            return _folded(name, f'{_MULTIPART}{model}"').replace(model.encode("ascii"), boundary.encode("ascii"))
    return _folded(name, value)


_MULTIPART = 'multipart/alternative; boundary="'


@functools.lru_cache(maxsize=4096)
def _folded(name: str, value: str) -> bytes:
    """`_header_line` by the package itself (each distinct header once per process)."""
    _name, header = email.policy.default.header_store_parse(name, value)
    return _wire_policy().fold_binary(name, header)


@functools.lru_cache(maxsize=256)
def _from_value(display_name: str, addr_spec: str) -> str:
    return str(Address(display_name=display_name, addr_spec=addr_spec))


def _text_part(text: str, subtype: str, *, mime_version: bool) -> bytes:
    """A text part as `set_content` (then `add_alternative`, which adds MIME-Version) makes it, flattened:
    UTF-8; 7bit or 8bit when no line is longer than 78 bytes, else quoted-printable or base64, whichever
    the package's own sniff of the first ten lines finds shorter (`email.contentmanager._encode_text`)."""
    lines = text.encode("utf-8").splitlines()
    body = b"\n".join(lines) + b"\n"
    if max((len(line) for line in lines), default=0) <= MAX_LINE:
        cte = "7bit" if body.isascii() else "8bit"
        payload = body
    else:
        sniff = b"\n".join(lines[:10]) + b"\n"
        sniff_qp = quoprimime.body_encode(sniff.decode("latin-1"), MAX_LINE)
        if len(sniff_qp) > len(binascii.b2a_base64(sniff)):
            cte = "base64"
            payload = _base64_body(body)
        else:
            cte = "quoted-printable"
            encoded = sniff_qp if len(lines) <= 10 else quoprimime.body_encode(body.decode("latin-1"), MAX_LINE)
            payload = encoded.encode("ascii")
    head = f'Content-Type: text/{subtype}; charset="utf-8"\r\nContent-Transfer-Encoding: {cte}\r\n'
    if mime_version:
        head += "MIME-Version: 1.0\r\n"
    # The generator send_message uses mangles "From " at a line's start (its mangle_from_ is on without a
    # policy), and writes the payload's lines with CRLF (one that ends without a line end ends so).
    payload = _FROM_LINE.sub(b">From ", payload)
    return head.encode("ascii") + b"\r\n" + payload.replace(b"\n", b"\r\n")


def _base64_body(body: bytes) -> bytes:
    """`email.contentmanager._encode_base64` of the body with its lines ended by "\\n"."""
    per_line = MAX_LINE // 4 * 3
    return b"".join(binascii.b2a_base64(body[i:i + per_line]) for i in range(0, len(body), per_line))


def _boundary(parts: bytes) -> str:
    """`email.generator.Generator._make_boundary`: random, and not a line of the parts."""
    boundary = "=" * 15 + f"{random.randrange(sys.maxsize):0{_BOUNDARY_DIGITS}d}" + "=="
    candidate, counter = boundary, 0
    while re.search(b"^--" + re.escape(candidate.encode("ascii")) + b"(--)?$", parts, re.MULTILINE):
        candidate, counter = f"{boundary}.{counter}", counter + 1
    return candidate


#: The policy's longest line (`email.policy.default.max_line_length`).
MAX_LINE = 78
_FROM_LINE = re.compile(rb"^From ", re.MULTILINE)  # email.generator's fcre


class EmailChannel:
    """Sends over one SMTP connection per dispatcher run, opened at the first message."""

    def __init__(self, settings: SmtpSettings):
        self.settings = settings
        self._connection: smtplib.SMTP | None = None

    def send(self, message: OutboxMessage) -> None:
        rendered = render(message)
        wire = wire_email(message, rendered, self.settings)
        self._transmit(build_email(message, rendered, self.settings) if wire is None else wire, message.recipient)
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

    def _transmit(self, email: EmailMessage | bytes, recipient: str) -> None:
        reused = self._connection is not None
        try:
            try:
                self._send(email, recipient)
            except smtplib.SMTPServerDisconnected:
                if not reused:
                    raise
                self.close()  # the server hung up an idle connection: one fresh try
                self._send(email, recipient)
        except smtplib.SMTPRecipientsRefused as exc:  # the connection is still good for the next message
            raise smtp_failure(exc, self.settings.secrets()) from None
        except (smtplib.SMTPException, OSError) as exc:
            self._drop()
            raise smtp_failure(exc, self.settings.secrets()) from None

    def _send(self, email: EmailMessage | bytes, recipient: str) -> None:
        connection = self._connect()
        if isinstance(email, bytes):  # `wire_email`: what send_message would send for an ASCII envelope
            connection.sendmail(self.settings.sender, [recipient], email)
        else:
            connection.send_message(email, from_addr=self.settings.sender, to_addrs=[recipient])

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
