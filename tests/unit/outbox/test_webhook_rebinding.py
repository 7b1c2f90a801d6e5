"""DNS rebinding: a partner's host that resolves to a public address when the endpoint is checked
and to one of ours a moment later, when requests would connect. The webhook channel connects to the
address it checked, with the host's name for TLS (SNI, the certificate) and the Host header.

No traffic leaves this machine: the "public" address is never dialled. urllib3's connection
function is wrapped so that a connection to it goes to the partner's stand-in on 127.0.0.1 (and is
recorded); the resolver is a stand-in that answers the public address first, then 127.0.0.2, where
an "internal service" listens on the same port."""

from __future__ import annotations

import http.server
import socket
import ssl
from types import SimpleNamespace

import pytest
import trustme
import urllib3.util.connection

from app.outbox import webhooks
from app.outbox.base import DeliveryError
from app.outbox.webhooks import EndpointRules, PinnedAddressAdapter, WebhookChannel, WebhookRequest, pinned
from tests.support.serving import serve_in_thread, stop_serving

HOST = "partner.example"
PUBLIC = "203.0.114.1"  # a global address: passes the check, and is never dialled (see the module docstring)
INTERNAL = "127.0.0.2"  # what the host resolves to on the second asking


class Recorder(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.seen.append({"host": self.headers["Host"], "sni": self.server.sni[-1] if self.server.sni else None})
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def https_server(address: str, port: int, cert: trustme.LeafCert) -> http.server.HTTPServer:
    server = http.server.HTTPServer((address, port), Recorder)
    server.seen, server.sni = [], []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(context)
    context.sni_callback = lambda _sock, name, _ctx: server.sni.append(name)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    return server


@pytest.fixture
def network(monkeypatch, tmp_path):
    """The partner on 127.0.0.1:P, an internal service on 127.0.0.2:P, a resolver that changes its
    answer, and the test CA trusted by requests."""
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "*")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "ca.pem"))

    def start(cert_name: str = HOST):
        cert = ca.issue_cert(cert_name)
        partner = https_server("127.0.0.1", 0, cert)
        port = partner.server_address[1]
        internal = https_server(INTERNAL, port, ca.issue_cert(HOST))
        threads = [serve_in_thread(partner), serve_in_thread(internal)]
        servers.extend(zip((partner, internal), threads, strict=True))
        return partner, internal, port

    servers: list = []
    asked: list[str] = []
    dialled: list[tuple[str, int]] = []
    real_getaddrinfo, real_connect = socket.getaddrinfo, urllib3.util.connection.create_connection

    def resolver(host, port, *args, **kwargs):
        if host != HOST:
            return real_getaddrinfo(host, port, *args, **kwargs)
        asked.append(host)
        address = PUBLIC if len(asked) == 1 else INTERNAL
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port))]

    def connect(address, *args, **kwargs):
        dialled.append(address)
        if address[0] == PUBLIC:
            address = ("127.0.0.1", address[1])  # the partner's stand-in; the public address is never dialled
        return real_connect(address, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    monkeypatch.setattr(urllib3.util.connection, "create_connection", connect)
    yield SimpleNamespace(start=start, asked=asked, dialled=dialled)
    for server, thread in servers:
        stop_serving(server, thread)


def deliver(port: int, monkeypatch) -> None:
    request = WebhookRequest(url=f"https://{HOST}:{port}/hooks", body=b'{"type":"case.created"}',
                             secrets=["whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldY"], idempotency_key="k-1")
    monkeypatch.setattr(webhooks, "render", lambda _message: request)
    channel = WebhookChannel(EndpointRules(allowed_hosts=(HOST,), allow_private=False), timeout=5)
    try:
        channel.send(SimpleNamespace(idempotency_key="k-1"))
    finally:
        channel.close()


def test_the_delivery_goes_to_the_address_that_was_checked(network, monkeypatch):
    partner, internal, port = network.start()
    deliver(port, monkeypatch)
    assert network.asked == [HOST]  # resolved once: by the check
    assert network.dialled == [(PUBLIC, port)]  # and connected to what the check saw
    assert partner.seen == [{"host": f"{HOST}:{port}", "sni": HOST}]  # TLS and HTTP to the name
    assert internal.seen == []  # the second answer (127.0.0.2) was never used


def test_the_certificate_is_still_checked_against_the_name(network, monkeypatch):
    _partner, internal, port = network.start(cert_name="someone-else.example")
    with pytest.raises(DeliveryError, match="SSLError"):
        deliver(port, monkeypatch)
    assert internal.seen == []


def test_pinned_urls_keep_path_query_and_port():
    assert pinned("https://partner.example:8443/a/b?c=1#f", "203.0.114.1") == (
        "https://203.0.114.1:8443/a/b?c=1", "partner.example:8443")
    assert pinned("https://partner.example/x", "2001:db8::1") == ("https://[2001:db8::1]/x", "partner.example")


def test_requests_without_a_host_header_go_as_usual():
    from requests import Request

    adapter = PinnedAddressAdapter()
    plain = Request("POST", "https://partner.example/x").prepare()
    _host, kwargs = adapter.build_connection_pool_key_attributes(plain, True)
    assert "server_hostname" not in kwargs
    pinned_request = Request("POST", "https://203.0.114.1/x", headers={"Host": "partner.example"}).prepare()
    _host, kwargs = adapter.build_connection_pool_key_attributes(pinned_request, True)
    assert kwargs["server_hostname"] == kwargs["assert_hostname"] == "partner.example"
