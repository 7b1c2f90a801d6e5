"""The forged link's answer, given before Flask: WSGI middleware around the app.

A link whose signature does not verify (forged, mistyped, cut short, signed with a retired key)
gets the neutral page (`access.guard.unavailable`), the same page with the same status and
headers as every other refused link, and nothing about it needs a request context, a session, the
database or the router. So the gate answers it from the page cache, before Flask builds a request:
the cost of a static answer, where the whole request machinery cost twice the page.

It answers only when its answer is the one Flask would give, and otherwise passes the request on:

- `GET /l/<token>`, one path segment of printable ASCII, no query string (`?lang=xx` switches the
  language, a session write);
- no session cookie (the language chosen on a page is in it): the page's language is then chosen
  from `Accept-Language` alone, as `i18n.select_locale` would;
- the signature does not verify: a genuine token, expired or not, goes on to the view, which reads
  the link (the database is the gate's business no more than the session is), with its key
  (`verified_key`), so that the signature is checked once;
- the page for that language is in the page cache, rendered by the view (a first refusal in a
  process, or one after the cache was emptied, goes on to the view and fills it), with neither a
  CSP nonce nor a CSRF token in it;
- the rate limit of `/l/` allows it: the gate counts the request exactly as the view's decorator
  does (same scope, same client address, the app's `LINK_RATE_LIMIT`); when the limit is over it
  passes the request on, and the view answers the 429 (counting it once more in a window that is
  already over).

The headers are the view's: `Cache-Control: no-store` (every customer page), `Vary: Cookie` (the
language may come from the cookie); the security headers, HSTS included, are added by
`security.StaticHeaders` around it, as for every answer. The request is timed and counted under
the view's endpoint (`core.metrics`). A test compares the gate's answer with the view's.
"""

from __future__ import annotations

from werkzeug.datastructures import LanguageAccept
from werkzeug.http import parse_accept_header

from app import page_cache
from app.access.guard import unavailable_key
from app.core.metrics import ENDPOINT_KEY
from app.extensions import limiter
from app.i18n import choose_locale
from app.links.services import signer_of

PREFIX = "/l/"
ENDPOINT = "portal.open_link"
#: The scope the view's rate limit counts under (`RateLimiter.limit`: the view's `__qualname__`).
SCOPE = "open_link"
PURPOSE = "bill"
STATUS = "404 NOT FOUND"
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


class ForgedLinkGate:
    """Answers `GET /l/<forged token>` with the cached neutral page; passes every other request on."""

    def __init__(self, app, wsgi_app):
        self.app = app
        self.wsgi_app = wsgi_app
        self._locales: dict[str, str] = {}

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path.startswith(PREFIX) and environ.get("REQUEST_METHOD") == "GET" and not environ.get("QUERY_STRING"):
            body = self.refusal(environ, path[len(PREFIX):])
            if body is not None:
                environ[ENDPOINT_KEY] = ENDPOINT
                start_response(STATUS, [
                    ("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(body))),
                    ("Cache-Control", "no-store"), ("Vary", "Cookie"),
                ])
                return [body]
        return self.wsgi_app(environ, start_response)

    def refusal(self, environ, token: str) -> bytes | None:
        """The neutral page's body when the gate may answer this request itself, else None."""
        if not token or "/" in token or not token.isascii() or not token.isprintable():
            return None
        app = self.app
        if app.config["SESSION_COOKIE_NAME"] + "=" in environ.get("HTTP_COOKIE", ""):
            return None
        key = signer_of(app).unsign(token, PURPOSE)
        if key is not None:
            environ[VERIFIED_KEY] = (token, key)  # the view need not check the signature again
            return None
        cache = app.extensions.get(page_cache.EXTENSION)
        page = cache.get(neutral_page_key(self.locale(environ.get("HTTP_ACCEPT_LANGUAGE", "")))) \
            if cache is not None else None
        if page is None or page[1] or cache.nonce_stand_in in page[0] or cache.csrf_stand_in in page[0]:
            return None
        if not limiter.allows(app, app.config["LINK_RATE_LIMIT"], SCOPE, environ.get("REMOTE_ADDR") or "unknown"):
            return None
        return page[0].encode()

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
