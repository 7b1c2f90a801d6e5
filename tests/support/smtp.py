"""A real SMTP server on 127.0.0.1 for the tests: aiosmtpd's Controller on a free port, keeping
every message it accepts (`received`, the bytes; `messages`, parsed when read).

    with SmtpServer() as smtp:
        ...                                     # point MAIL_SERVER/MAIL_PORT at smtp.host/smtp.port
        smtp.messages[0]["Message-ID"]

Knobs: `refuse` maps a recipient to an SMTP answer for RCPT ("550 5.1.1 No such user");
`data_answer` replaces the answer to DATA ("451 4.3.0 Try later"); `auth=(user, password)`
requires that login (over plain SMTP: tests only). `stop()` then `start()` again on the same
port plays an outage.
"""

from __future__ import annotations

import socket
import threading
from email import message_from_bytes, policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


class _Handler:
    def __init__(self, server: SmtpServer):
        self.server = server

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        answer = self.server.refuse.get(address)
        if answer:
            return answer
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.server.data_answer:
            return self.server.data_answer
        # Kept as received and parsed when a test reads `messages`: parsing here, in the server's event loop,
        # took longer than everything else the server does for a message, and the sender waited for it.
        with self.server.lock:
            self.server.received.append(envelope.original_content or envelope.content)
            self.server.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 Message accepted for delivery"


class SmtpServer:
    def __init__(self, port: int | None = None, auth: tuple[str, str] | None = None):
        self.host, self.port = HOST, port or free_port()
        self.auth = auth
        self.received: list[bytes] = []  # each message as it came, in order
        self._parsed: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.refuse: dict[str, str] = {}
        self.data_answer: str | None = None
        self.lock = threading.Lock()
        self._controller: Controller | None = None

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        given = None
        if isinstance(auth_data, LoginPassword):
            given = (auth_data.login.decode(), auth_data.password.decode())
        return AuthResult(success=given == self.auth, handled=False)

    def start(self) -> SmtpServer:
        options = {}
        if self.auth:
            options = {"authenticator": self._authenticate, "auth_required": True, "auth_require_tls": False}
        self._controller = Controller(_Handler(self), hostname=self.host, port=self.port, **options)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> SmtpServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def config(self) -> dict:
        """The app settings that send to this server."""
        username, password = self.auth or (None, None)
        return {"MAIL_SERVER": self.host, "MAIL_PORT": self.port, "MAIL_USE_TLS": False, "MAIL_USE_SSL": False,
                "MAIL_USERNAME": username, "MAIL_PASSWORD": password}

    @property
    def messages(self) -> list[EmailMessage]:
        """Every message accepted, in order, parsed (the first time it is asked for)."""
        with self.lock:
            for raw in self.received[len(self._parsed):]:
                self._parsed.append(message_from_bytes(raw, policy=policy.default))
            return list(self._parsed)

    def message_ids(self) -> list[str]:
        return [message["Message-ID"] for message in self.messages]
