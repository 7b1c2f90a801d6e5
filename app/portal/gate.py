"""The signed link's answers that need no request machinery, given before Flask: WSGI middleware.

Two answers to `GET /l/<token>` cost a fraction of what Flask's request (a context, routing, the
session, a response object, the hooks) costs around them, so the gate gives them itself:

- **a forged link**: a link whose signature does not verify (forged, mistyped, cut short, signed
  with a retired key) gets the neutral page (`access.guard.unavailable`), the same page with the
  same status and headers as every other refused link, from the page cache;
- **a link opened again** by a browser without a session: a genuine link, read from the database
  exactly as the view reads it (`links.services.read_link`: one statement; revoked, expired and
  closed are refused there, so revoking a link ends this answer at once, in every process), that
  was opened within `LINK_OPEN_EVENT_INTERVAL_MINUTES` (so the view would record nothing) and whose
  customer owes the creditor no other bill (whose grants the view would read): the view's 303 to the
  bill page, with the view's new session (the grant, `access.grants.add`, and the CSRF secret) signed
  by the app's session interface (`sessions.CachedSerializerSessionInterface.cookie_line`).

It answers only when its answer is the one Flask would give, and otherwise passes the request on:

- `GET /l/<token>`, one path segment of printable ASCII, no query string (`?lang=xx` switches the
  language, a session write);
- no session cookie (the language chosen on a page, or grants to keep, are in it): a forged link's
  page is then in the language `Accept-Language` alone chooses, as `i18n.select_locale` would;
- a forged link: the page for that language is in the page cache, rendered by the view (a first
  refusal in a process, or one after the cache was emptied, goes on to the view and fills it), with
  neither a CSP nonce nor a CSRF token in it;
- a genuine link: granted and opened recently as above; anything else (a first opening, which writes
  the "opened" event; expired, revoked, closed, unknown: the view's neutral page in the creditor's
  brand; other bills; the database failing) goes on to the view with the token's key
  (`verified_key`), so that the signature is checked once;
- the rate limit of `/l/` allows it: the gate counts the request exactly as the view's decorator
  does (same scope, same client address, the app's `LINK_RATE_LIMIT`), once it knows it answers;
  when the limit is over it passes the request on, and the view answers the 429 (counting it once
  more in a window that is already over).

The headers are the view's: `Cache-Control: no-store` (every customer page), `Vary: Cookie`; the
security headers, HSTS and `Referrer-Policy: no-referrer` included, are added by
`security.StaticHeaders` around it, as for every answer. The request is timed and counted under the
view's endpoint (`core.metrics`). Tests compare the gate's answers with the view's.
"""

from __future__ import annotations

import logging
import time

from werkzeug.datastructures import LanguageAccept
from werkzeug.http import parse_accept_header

from app import page_cache
from app.access import grants
from app.access.guard import unavailable_key
from app.core.metrics import ENDPOINT_KEY
from app.extensions import limiter
from app.i18n import choose_locale
from app.links.services import live_resolution, opened_recently, read_link, signer_of
from app.models import utcnow
from app.security import ensure_csrf_secret
from app.sessions import CachedSerializerSessionInterface

log = logging.getLogger(__name__)


PREFIX = "/l/"
ENDPOINT = "portal.open_link"
#: The scope the view's rate limit counts under (`RateLimiter.limit`: the view's `__qualname__`).
SCOPE = "open_link"
PURPOSE = "bill"
STATUS = "404 NOT FOUND"
REDIRECT = "303 SEE OTHER"
#: Where the gate leaves a genuine token's key for the view, as (token, key): `verified_key`.
VERIFIED_KEY = "portal.verified_link_key"
#: The most Accept-Language values whose locale is remembered (browsers send a handful of them).
MAX_LANGUAGE_HEADERS = 512


def neutral_page_key(locale: str) -> tuple:
    """The page cache's key of the neutral page for an unknown bill (`access.guard.unavailable`)."""
    return unavailable_key(locale)


def verified_key(environ, token: str) -> str | None:
    """The key of `token` if the gate has just checked its signature and age for this request."""
    verified = environ.get(VERIFIED_KEY)
    return verified[1] if verified is not None and verified[0] == token else None


class LinkGate:
    """Answers `GET /l/<forged token>` with the cached neutral page and `GET /l/<token>` opened again
    (without a session) with the view's redirect; passes every other request on."""

    def __init__(self, app, wsgi_app):
        self.app = app
        self.wsgi_app = wsgi_app
        self._locales: dict[str, str] = {}

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path.startswith(PREFIX) and environ.get("REQUEST_METHOD") == "GET" and not environ.get("QUERY_STRING"):
            answer = self.answer(environ, path[len(PREFIX):])
            if answer is not None:
                status, headers, body = answer
                environ[ENDPOINT_KEY] = ENDPOINT
                start_response(status, headers)
                return [body]
        return self.wsgi_app(environ, start_response)

    def answer(self, environ, token: str) -> tuple[str, list[tuple[str, str]], bytes] | None:
        """(status, headers, body) when the gate may answer this request itself, else None."""
        if not token or "/" in token or not token.isascii() or not token.isprintable():
            return None
        app = self.app
        if app.config["SESSION_COOKIE_NAME"] + "=" in environ.get("HTTP_COOKIE", ""):
            return None
        key = signer_of(app).unsign(token, PURPOSE)
        if key is not None:
            environ[VERIFIED_KEY] = (token, key)  # the view need not check the signature again
            return self.reopened(environ, key)
        body = self.refusal(environ)
        if body is None:
            return None
        return STATUS, [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(body))),
                        ("Cache-Control", "no-store"), ("Vary", "Cookie")], body

    def refusal(self, environ) -> bytes | None:
        """The neutral page's body for a forged link, when the gate may answer it itself, else None."""
        app = self.app
        cache = app.extensions.get(page_cache.EXTENSION)
        page = cache.get(neutral_page_key(self.locale(environ.get("HTTP_ACCEPT_LANGUAGE", "")))) \
            if cache is not None else None
        if page is None or page[1] or cache.nonce_stand_in in page[0] or cache.csrf_stand_in in page[0]:
            return None
        if not limiter.allows(app, app.config["LINK_RATE_LIMIT"], SCOPE, environ.get("REMOTE_ADDR") or "unknown"):
            return None
        return page[0].encode()

    def reopened(self, environ, key: str) -> tuple[str, list[tuple[str, str]], bytes] | None:
        """The view's redirect for a genuine link opened again within the "opened" interval by a browser
        without a session, when its customer owes no other bill; else None (the view answers)."""
        app = self.app
        config = app.config
        now = utcnow()
        try:
            with app.app_context():  # the read runs where the view's would (app.readpath)
                resolution = live_resolution(read_link(key, PURPOSE), now=now)
        except Exception:  # the database failing: the view answers (its 503 page)
            log.debug("link gate: the link could not be read; the view answers", exc_info=True)
            return None
        if resolution is None or resolution.other_bills or not opened_recently(
                resolution, interval_minutes=config["LINK_OPEN_EVENT_INTERVAL_MINUTES"], now=now):
            return None
        public_id, invoice_id, revocations = resolution.public_id, resolution.invoice_id, resolution.link_revocations
        assert public_id and resolution.link_id and resolution.expires_at and invoice_id and revocations is not None
        if not limiter.allows(app, config["LINK_RATE_LIMIT"], SCOPE, environ.get("REMOTE_ADDR") or "unknown"):
            return None
        # What the view's `admit` puts in a new session: the grant, and the CSRF secret.
        session: dict = {}
        grants.add(session, public_id, resolution.link_id, int(time.time()), link_revocations=revocations,
                   expires_ts=int(resolution.expires_at.timestamp()), source=(invoice_id, revocations),
                   channel=resolution.channel)
        ensure_csrf_secret(session, config.get("WTF_CSRF_FIELD_NAME", "csrf_token"))
        interface = app.session_interface
        if not isinstance(interface, CachedSerializerSessionInterface):
            return None
        return REDIRECT, [
            ("Content-Type", "text/html; charset=utf-8"),
            ("Location", f"{_script_root(environ)}/b/{public_id}"),
            ("Cache-Control", "no-store"),
            ("Set-Cookie", interface.cookie_line(app, session)),
            ("Vary", "Cookie"),
            ("Content-Length", "0"),
        ], b""

    def locale(self, accept_language: str) -> str:
        """`i18n.select_locale` for a request with no session, no customer and no creditor."""
        locale = self._locales.get(accept_language)
        if locale is None:
            accept = parse_accept_header(accept_language or None, LanguageAccept)
            locale = choose_locale(None, None, accept, None)
            if len(self._locales) >= MAX_LANGUAGE_HEADERS:
                self._locales.clear()
            self._locales[accept_language] = locale
        return locale


def _script_root(environ) -> str:
    """werkzeug's `request.script_root` (the view's `_bill_path` uses it): SCRIPT_NAME, without its
    trailing slash."""
    script_name = environ.get("SCRIPT_NAME") or ""
    return script_name.encode("latin-1").decode("utf-8", "replace").rstrip("/")
