"""What the tests of the WSGI gates before Flask (app.portal.gate, app.portal.bill_gate) share: the
gate found in the app's middleware stack, and the app behind it counting what the gate passed on."""

from __future__ import annotations

from typing import TypeVar

G = TypeVar("G")


def find_gate(app, kind: type[G]) -> G:
    """The middleware of `kind` around the app (ours, or werkzeug's ProxyFix, in between)."""
    wsgi = app.wsgi_app
    while not isinstance(wsgi, kind):
        wsgi = getattr(wsgi, "wsgi_app", None) or wsgi.app
    return wsgi


class Counting:
    """The app behind the gate, counting the requests the gate passed on."""

    def __init__(self, wsgi_app):
        self.wsgi_app, self.calls = wsgi_app, 0

    def __call__(self, environ, start_response):
        self.calls += 1
        return self.wsgi_app(environ, start_response)
