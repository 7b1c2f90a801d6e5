"""The webhook channel: deliver a message as a signed HTTP POST, following Standard Webhooks.

A renderer (registered for the kind's first dotted part, see `outbox.base`) turns the outbox message
into a `WebhookRequest`: where to, the body, the secrets to sign with, the Idempotency-Key and
what to do if the endpoint is gone. The channel adds the Standard Webhooks headers, signed with
the `standardwebhooks` package:

- `webhook-id`: derived from the message's idempotency key, so it is the same on every try and
  after a crash between sending and recording (the receiver can tell a repeat);
- `webhook-timestamp`: the time of this try (receivers refuse stale ones);
- `webhook-signature`: `v1,<base64 HMAC-SHA256>` for every live secret, space-separated, so the
  receiver verifies with either secret during a rotation.

Only a 2xx answer is a success. 410 Gone is permanent: the renderer's `on_gone` (disabling the
endpoint) is recorded with the dead letter. 429 and 503 are retried no sooner than their
Retry-After; everything else (other answers, refused connections, timeouts) is retried with the
outbox's backoff until the webhook deadline. Redirects are not followed.

Before every request the endpoint is checked again (`check_endpoint`): https and an allowed host
in production, and every address the host resolves to must be public, so that a partner's
endpoint cannot be turned against our own network (a host that later resolves to 10.0.0.1).
The request then goes to the very address that was checked (`PinnedAddressAdapter`), the host's
name kept for TLS (SNI and the certificate's name) and the Host header: the name is resolved once,
so a DNS answer that changes between the check and the connection (DNS rebinding) cannot move it.
"""

from __future__ import annotations

import hashlib
import ipaddress
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter
from standardwebhooks import Webhook

from app.models import utcnow
from app.outbox.base import DeliveryError
from app.outbox.base import render as render_message
from app.outbox.models import OutboxMessage

USER_AGENT = "payment-portal-webhooks/1.0"
MAX_RETRY_AFTER = timedelta(hours=6)

@dataclass(frozen=True)
class WebhookRequest:
    url: str
    body: bytes  # JSON, the same on every try
    secrets: Sequence[str] = field(repr=False)  # whsec_… (base64 of at least 24 bytes)
    idempotency_key: str
    on_gone: Callable[[], None] | None = None  # the endpoint answered 410: disable it (recorded with the failure)
    rules: EndpointRules | None = None  # where this request may go, if not the channel's (collection partners')
    # Told of each try (the response's status or None, milliseconds, the error or None): a delivery log.
    # Called in the transaction of the result: with the success, or with the failure's record.
    on_attempt: Callable[[int | None, int, str | None], None] | None = None


@dataclass(frozen=True)
class EndpointRules:
    """Where webhooks may go: COLLECTION_ENDPOINT_HOSTS (empty: any host, outside production only)
    and whether private, loopback and link-local addresses are allowed (outside production)."""

    allowed_hosts: tuple[str, ...] = ()
    allow_private: bool = False
    any_host: bool = False  # no list of hosts (creditors' own endpoints): https and public addresses in production

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> EndpointRules:
        return cls(tuple(config["COLLECTION_ENDPOINT_HOSTS"]), bool(config["COLLECTION_ALLOW_PRIVATE_ENDPOINTS"]))


class EndpointRefused(ValueError):
    """An endpoint we will not send to; the message says why, in English for operators."""


def _host_allowed(host: str, allowed: Sequence[str]) -> bool:
    for pattern in allowed:
        if pattern.startswith("*.") and host.endswith(pattern[1:]) and host != pattern[2:]:
            return True
        if host == pattern:
            return True
    return False


def check_endpoint(url: str, rules: EndpointRules, *, resolve: bool = True) -> tuple[str, ...]:
    """Raise EndpointRefused unless `url` is one we may POST to (see the module's docstring). Returns
    the addresses the host resolved to, every one checked, in the resolver's order; () where nothing
    was resolved (outside production, where private addresses are allowed, or `resolve=False`)."""
    parts = urlsplit(url or "")
    host = (parts.hostname or "").lower()
    if not host or parts.scheme not in ("https", "http"):
        raise EndpointRefused("the endpoint must be an http(s):// URL with a host")
    if parts.username or parts.password:
        raise EndpointRefused("the endpoint may not carry a user name or password")
    if not rules.allow_private:
        if parts.scheme != "https":
            raise EndpointRefused("the endpoint must be https://")
        if not rules.any_host and not _host_allowed(host, rules.allowed_hosts):
            raise EndpointRefused(f"{host} is not in COLLECTION_ENDPOINT_HOSTS")
    elif rules.allowed_hosts and not _host_allowed(host, rules.allowed_hosts):
        raise EndpointRefused(f"{host} is not in COLLECTION_ENDPOINT_HOSTS")
    if rules.allow_private or not resolve:
        return ()
    try:
        infos = socket.getaddrinfo(host, parts.port or 443, proto=socket.IPPROTO_TCP)
    except OSError as exc:
        raise EndpointRefused(f"{host} does not resolve: {exc}") from None
    addresses = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if not address.is_global:
            raise EndpointRefused(f"{host} resolves to {address}, which is not a public address")
        addresses.append(str(address))
    if not addresses:
        raise EndpointRefused(f"{host} does not resolve")
    return tuple(dict.fromkeys(addresses))


def pinned(url: str, address: str) -> tuple[str, str]:
    """(the URL with its host replaced by `address`, the Host header naming the original host):
    what PinnedAddressAdapter sends to connect to `address` and speak TLS and HTTP to the name."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    literal = f"[{address}]" if ":" in address else address
    name = parts.hostname or ""
    name = f"[{name}]" if ":" in name else name
    return urlunsplit((parts.scheme, literal + port, parts.path, parts.query, "")), name + port


def _host_of(header: str) -> str:
    """The name in a Host header, without its port ("[::1]:8443" -> "::1")."""
    if header.startswith("["):
        return header[1:].split("]", 1)[0]
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class PinnedAddressAdapter(HTTPAdapter):
    """requests' adapter for a URL whose host is an address (see `pinned`) and whose Host header
    names the real host: connects to the address, and sends that name for SNI and checks the
    server's certificate against it (urllib3's server_hostname and assert_hostname), as a plain
    request to the name would. Connection pools are kept per address and name. Other requests
    (no Host header, or the URL's own host in it) go as with requests' own adapter."""

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        header = request.headers.get("Host")
        if header and host_params["scheme"] == "https":
            name = _host_of(header)
            if name.lower() != (host_params.get("host") or "").strip("[]").lower():
                pool_kwargs["server_hostname"] = name
                pool_kwargs["assert_hostname"] = name
        return host_params, pool_kwargs


def webhook_id(idempotency_key: str) -> str:
    """The message's Standard Webhooks id: stable across tries, without showing the key itself."""
    return "msg_" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]


def sign(request: WebhookRequest, msg_id: str, at: datetime) -> dict[str, str]:
    """The Standard Webhooks headers of one try, signed with every live secret."""
    text = request.body.decode()
    signatures = " ".join(Webhook(secret).sign(msg_id, at, text) for secret in request.secrets)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signatures,
        "Idempotency-Key": request.idempotency_key,
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
    }


def render(message: OutboxMessage) -> WebhookRequest:
    """The request for this message (its kind's registered renderer)."""
    return render_message(message)


def retry_after(value: str | None, now: datetime) -> timedelta | None:
    """An HTTP Retry-After (seconds or a date) as a wait, at most MAX_RETRY_AFTER; None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(timedelta(seconds=int(value)), MAX_RETRY_AFTER)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return min(max(when - now, timedelta(0)), MAX_RETRY_AFTER)


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _told(request: WebhookRequest, status: int | None, took: int, reason: str,
          then: Callable[[], None] | None = None) -> Callable[[], None] | None:
    """What a failure records with it (`DeliveryError.after`): the try in the request's log, then `then`."""
    if request.on_attempt is None:
        return then
    on_attempt = request.on_attempt

    def after() -> None:
        on_attempt(status, took, reason)
        if then is not None:
            then()

    return after


class WebhookChannel:
    """Posts with one HTTP session per dispatcher run (kept-alive connections)."""

    def __init__(self, rules: EndpointRules, timeout: float):
        self.rules = rules
        self.timeout = timeout
        self._session: requests.Session | None = None

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> WebhookChannel:
        return cls(EndpointRules.from_config(config), config["WEBHOOK_TIMEOUT_SECONDS"])

    def send(self, message: OutboxMessage) -> None:
        request = render(message)
        try:
            addresses = check_endpoint(request.url, request.rules or self.rules)
        except EndpointRefused as exc:
            reason = f"endpoint refused: {exc}"
            raise DeliveryError(reason, permanent=True, after=_told(request, None, 0, reason)) from None
        if not request.secrets:
            reason = "no signing secret for this endpoint"
            raise DeliveryError(reason, permanent=True, after=_told(request, None, 0, reason))
        now = utcnow()
        headers = sign(request, webhook_id(message.idempotency_key), now)
        url = request.url
        if addresses:  # to the address just checked, not to what the name resolves to a moment later
            url, headers["Host"] = pinned(request.url, addresses[0])
        if self._session is None:
            self._session = requests.Session()
            adapter = PinnedAddressAdapter()
            self._session.mount("https://", adapter)
            self._session.mount("http://", adapter)
        started = time.monotonic()
        try:
            answer = self._session.post(url, data=request.body, headers=headers, timeout=self.timeout,
                                        allow_redirects=False)
        except requests.RequestException as exc:
            reason = f"{type(exc).__name__}: could not reach {urlsplit(request.url).hostname}"
            raise DeliveryError(reason, after=_told(request, None, _ms(started), reason)) from None
        status = answer.status_code
        answer.close()
        took = _ms(started)
        if 200 <= status < 300:
            if request.on_attempt is not None:
                request.on_attempt(status, took, None)
            return
        if status == 410:
            reason = "410 Gone: the endpoint is disabled until it is enabled again"
            raise DeliveryError(reason, permanent=True, after=_told(request, status, took, reason, request.on_gone))
        wait = retry_after(answer.headers.get("Retry-After"), now) if status in (429, 503) else None
        reason = f"the endpoint answered {status}"
        raise DeliveryError(reason, retry_after=wait, after=_told(request, status, took, reason))

    def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            session.close()
