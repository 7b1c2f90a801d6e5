"""The bill page from the page cache, given before Flask: WSGI middleware around the app.

A browser that opened its link reloads the bill page, comes back to it from paying, switches the
language back: `GET /b/<public_id>` with its session cookie. The page itself is in the page cache
(`app.page_cache`) under a key read from the database on every request (`bill_access`), so the
answer is that page with a fresh CSP nonce and the session's CSRF token, and Flask's request
machinery (a context, routing, the hooks, a response object) cost more than the answer. The gate
gives it itself, with the view's checks, in the view's order (`access.guard.granted`, `views.bill`):

- the session cookie verified by the app's session interface (`open_cookie`);
- the browser's grant to the bill (`grants.find`: young enough, its link not expired);
- the bill's one access read (`bill_access`): the bill exists and is open, no link of it (nor of the
  bill whose link gave the grant) was revoked since the grant was given (`grants.current`), so
  revoking a link ends this answer at the next request, in every process;
- the creditor's step-up passed (`v`), where it asks for one;
- the page for the bill's version, language, the creditor's day and the payment in progress is in
  this process's cache (`bill_page_key`), and the session already holds its CSRF secret.

Anything else goes on to the view, which answers as it always did: no grant or an old one (the
neutral page with "send me a new link"), a revoked or closed bill, the step-up, a page not yet
rendered (the view renders and caches it), a query string (`?lang=` writes the session), a
session that would be written (a permanent one is refreshed, a missing CSRF secret is added), HEAD,
anything not a plain public id, and the database failing (its 503 page).

The answer is the view's: the page with this response's nonce and token, `Content-Security-Policy`
with the nonce (and the page's extra form-action origins), `Cache-Control: no-store`,
`Vary: Cookie`; the static security headers are added around it by `security.StaticHeaders`. The
request is timed and counted under the view's endpoint (`core.metrics`). A test compares the answers.
"""

from __future__ import annotations

import logging
import secrets
import time
from datetime import datetime

from werkzeug.datastructures import LanguageAccept
from werkzeug.http import parse_accept_header
from werkzeug.sansio.http import parse_cookie

from app import page_cache
from app.access import grants
from app.access.guard import ACCESS_READ_KEY
from app.access.services import MAX_PUBLIC_ID, BillAccess, bill_access
from app.core.dates import local_today
from app.core.metrics import ENDPOINT_KEY
from app.i18n import choose_locale
from app.models import utcnow
from app.security import checkout_permissions, content_security_policy, signed_csrf_token
from app.sessions import CachedSerializerSessionInterface

log = logging.getLogger(__name__)

PREFIX = "/b/"
ENDPOINT = "portal.bill"
STATUS = "200 OK"
#: The most Accept-Language values whose parsed form is remembered (browsers send a handful of them).
MAX_LANGUAGE_HEADERS = 512


def bill_page_key(public_id: str, locale: str, access: BillAccess, now: datetime, channel: str | None = None) -> tuple:
    """The page cache's key of the bill page: the bill, the language, the creditor's day, the version
    the access read gave, the payment in progress and the channel the customer came by (content blocks
    may target it; `access.grants.channel`). The view renders under it; the gate looks it up."""
    return ("bill", public_id, locale, local_today(access.country, now), access.version,
            access.payment_in_progress(now), channel)


class BillGate:
    """Answers `GET /b/<public_id>` from the page cache when the view would give that page; passes
    every other request on."""

    def __init__(self, app, wsgi_app):
        self.app = app
        self.wsgi_app = wsgi_app
        self._accepts: dict[str, LanguageAccept] = {}

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path.startswith(PREFIX) and environ.get("REQUEST_METHOD") == "GET" and not environ.get("QUERY_STRING"):
            answer = self.answer(environ, path[len(PREFIX):])
            if answer is not None:
                headers, body = answer
                environ[ENDPOINT_KEY] = ENDPOINT
                start_response(STATUS, headers)
                return [body]
        return self.wsgi_app(environ, start_response)

    def answer(self, environ, public_id: str) -> tuple[list[tuple[str, str]], bytes] | None:
        """(headers, body) when the gate may answer this request itself, else None."""
        if not public_id or len(public_id) > MAX_PUBLIC_ID or not public_id.isascii() \
                or not (public_id.replace("-", "").replace("_", "").isalnum()):
            return None
        app = self.app
        config = app.config
        interface = app.session_interface
        cookie = environ.get("HTTP_COOKIE")
        if not cookie or not isinstance(interface, CachedSerializerSessionInterface):
            return None
        session = interface.open_cookie(app, parse_cookie(cookie).get(interface.get_cookie_name(app)))
        field = config.get("WTF_CSRF_FIELD_NAME", "csrf_token")
        if not session or session.permanent or not isinstance(session.get(field), str):
            return None  # nothing to grant, or a session the view would write
        grant = grants.find(session, public_id, int(time.time()), config["GRANT_MAX_AGE_HOURS"])
        if grant is None:
            return None
        now = utcnow()
        try:
            with app.app_context():  # the read runs where the view's would (app.readpath)
                access = bill_access(public_id, grants.source_of(grant))
        except Exception:  # the database failing: the view answers (its 503 page)
            log.debug("bill gate: the bill could not be read; the view answers", exc_info=True)
            return None
        if access is not None:  # the view, if it answers, uses this read instead of making it again
            environ[ACCESS_READ_KEY] = (public_id, grants.source_of(grant), access)
        if access is None or access.is_closed \
                or not grants.current(grant, access.link_revocations, access.source_revocations) \
                or (access.step_up_mode != "none" and not grant.get("v")):
            return None
        cache = app.extensions.get(page_cache.EXTENSION)
        if cache is None:
            return None
        locale = choose_locale(session.get("locale"), access.customer_locale,
                               self.accept(environ.get("HTTP_ACCEPT_LANGUAGE")), access.creditor_locale)
        page = cache.get(bill_page_key(public_id, locale, access, now, grants.channel_of(grant)))
        if page is None:
            return None
        html, extra = page
        nonce = None
        if cache.nonce_stand_in in html:
            nonce = secrets.token_urlsafe(16)
            html = html.replace(cache.nonce_stand_in, nonce)
        if cache.csrf_stand_in in html:
            html = html.replace(cache.csrf_stand_in, signed_csrf_token(app, session[field]))
        body = html.encode()
        headers = [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(body)))]
        if nonce or extra:
            headers.append(("Content-Security-Policy", content_security_policy(nonce, extra)))
        if extra and extra.get("frame-src"):
            headers.append(("Permissions-Policy", checkout_permissions(extra)))
        headers += [("Cache-Control", "no-store"), ("Vary", "Cookie")]
        return headers, body

    def accept(self, header: str | None) -> LanguageAccept:
        """`request.accept_languages` for this header, parsed once per process."""
        key = header or ""
        accept = self._accepts.get(key)
        if accept is None:
            accept = parse_accept_header(header or None, LanguageAccept)
            if len(self._accepts) >= MAX_LANGUAGE_HEADERS:
                self._accepts.clear()
            self._accepts[key] = accept
        return accept
