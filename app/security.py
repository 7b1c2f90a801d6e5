"""Response headers (CSP with nonces, HSTS, nosniff, referrer policy, no-store) and log redaction."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import secrets
from collections.abc import Mapping, Sequence

from flask import Flask, abort, current_app, g, request, session
from itsdangerous import TimestampSigner, URLSafeTimedSerializer, want_bytes

from app.extensions import csrf

LINK_PATH = re.compile(r"/l/[^\s?\"'/]+")


class KeyCachingSigner(TimestampSigner):
    """itsdangerous's TimestampSigner, deriving each secret key once per process instead of on
    every sign and verify (a serializer makes a new signer for every cookie it reads or
    writes). Used by the session cookie and the signed links."""

    _derived: dict[tuple, bytes] = {}

    def derive_key(self, secret_key: str | bytes | None = None) -> bytes:
        secret = self.secret_keys[-1] if secret_key is None else want_bytes(secret_key)
        cache_key = (secret, self.salt, self.key_derivation, self.digest_method)
        key = self._derived.get(cache_key)
        if key is None:
            if len(self._derived) > 256:  # keys and salts are few; bound it anyway
                self._derived.clear()
            key = self._derived[cache_key] = super().derive_key(secret)
        return key


CSRF_SALT = "wtf-csrf-token"  # Flask-WTF's: its validate_csrf checks what csrf_token() makes


def _csrf_field() -> str:
    return current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token")


def ensure_csrf_secret() -> None:
    """Put the session's CSRF secret in place now (as Flask-WTF would on its first token), so
    that the pages after this one sign tokens without rewriting the session cookie."""
    field = _csrf_field()
    if field not in session:
        session[field] = hashlib.sha1(os.urandom(64)).hexdigest()


def csrf_token() -> str:
    """Flask-WTF's CSRF token for this request, signed by a serializer made once per app:
    Flask-WTF builds one for every token, a tenth of a cached bill page."""
    field = _csrf_field()
    token = g.get(field)
    if token is None:
        ensure_csrf_secret()
        serializer = current_app.extensions.get("csrf_serializer")
        if serializer is None:
            secret = current_app.config.get("WTF_CSRF_SECRET_KEY") or current_app.secret_key
            serializer = current_app.extensions["csrf_serializer"] = URLSafeTimedSerializer(secret, salt=CSRF_SALT)
        token = serializer.dumps(session[field])
        setattr(g, field, token)
    return token


def csp_nonce() -> str:
    nonce = getattr(g, "csp_nonce", None)
    if nonce is None:
        nonce = g.csp_nonce = secrets.token_urlsafe(16)
    return nonce


def content_security_policy(nonce: str | None, extra: Mapping[str, Sequence[str]] | None = None) -> str:
    """The policy for a page; a nonce only when the page has inline code that needs one. `extra`
    adds origins per directive: a payment provider's, on its checkout page only."""
    inline = f" 'nonce-{nonce}'" if nonce else ""
    extra = extra or {}

    def more(directive: str) -> str:
        return "".join(f" {origin}" for origin in extra.get(directive, ()))

    frames = f"frame-src{more('frame-src')}; " if extra.get("frame-src") else ""
    return (
        "default-src 'none'; "
        f"script-src 'self'{inline}{more('script-src')}; "
        f"style-src 'self'{inline}{more('style-src')}; "
        f"img-src 'self' data:{more('img-src')}; font-src 'self'; connect-src 'self'{more('connect-src')}; "
        f"{frames}form-action 'self'{more('form-action')}; base-uri 'none'; frame-ancestors 'none'"
    )


def checkout_permissions(extra: Mapping[str, Sequence[str]]) -> str:
    """Permissions-Policy for a checkout page: the Payment Request API (Apple Pay, Google Pay) for
    us and the provider's frames, nothing else."""
    frames = " ".join(f'"{origin}"' for origin in extra.get("frame-src", ()))
    return f"camera=(), microphone=(), geolocation=(), payment=(self {frames})".replace(" )", ")")


CSP_WITHOUT_INLINE_CODE = ("Content-Security-Policy", content_security_policy(None))


class RedactLinkTokens(logging.Filter):
    """Replace signed link tokens in log lines (`/l/<token>` -> `/l/[redacted]`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "/l/" in message:
            record.msg, record.args = LINK_PATH.sub("/l/[redacted]", message), None
        return True


def install_log_redaction() -> None:
    redactor = RedactLinkTokens()
    for name in ("werkzeug", "gunicorn.access", "gunicorn.error", "app", ""):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactLinkTokens) for f in logger.filters):
            logger.addFilter(redactor)


# The same on every response: added once per response at the WSGI layer (see StaticHeaders).
STATIC_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=(self)"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
)
HSTS = ("Strict-Transport-Security", "max-age=63072000; includeSubDomains")


class StaticHeaders:
    """WSGI middleware adding the headers that never change to every response a view has
    not already given them to: a plain list extend, where setting them one by one on
    werkzeug's Headers in an after-request hook cost a fifth of a cached bill page."""

    def __init__(self, wsgi_app, *, hsts: bool, always_https: bool):
        self.wsgi_app = wsgi_app
        self.hsts = hsts
        self.always_https = always_https

    def __call__(self, environ, start_response):
        def start(status, headers, exc_info=None):
            present = {name.lower() for name, _value in headers}
            headers.extend(h for h in STATIC_HEADERS if h[0].lower() not in present)
            if "content-security-policy" not in present:  # pages with inline code set their own
                headers.append(CSP_WITHOUT_INLINE_CODE)
            if self.hsts and (self.always_https or environ.get("wsgi.url_scheme") == "https"):
                headers.append(HSTS)
            return start_response(status, headers, exc_info)

        return self.wsgi_app(environ, start)


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


def accepts_uploads(view):
    """Mark a view whose form may carry an attachment: its requests may be larger than
    MAX_CONTENT_LENGTH, up to twice ATTACHMENT_MAX_BYTES and a little more, so that a file just
    over the limit reaches the form's own check and gets its error next to the field."""
    view.accepts_uploads = True
    return view


NUL = "\x00"


def init_security(app: Flask) -> None:
    @app.before_request
    def refuse_nul_in_the_address():
        """A NUL character (`%00`) in the path or the query string is answered before any view: 404 for a
        path (no record has it), 400 for a query. PostgreSQL's text cannot hold one, and a query with it
        would fail as a server error. Two substring tests, no parsing."""
        if NUL in request.path:
            abort(404)
        if b"%00" in request.query_string or b"\x00" in request.query_string:
            abort(400)

    @app.before_request
    def check_csrf():
        """CSRF on every form post: every unsafe method, except on exempt views (the bearer-token API).
        Reading the token reads the body, so a view's larger allowance for uploads is set first."""
        if request.method in SAFE_METHODS:
            return
        view = app.view_functions.get(request.endpoint or "")
        if getattr(view, "accepts_uploads", False):
            request.max_content_length = 2 * app.config["ATTACHMENT_MAX_BYTES"] + 1024 * 1024
        if app.config.get("WTF_CSRF_ENABLED", True):
            csrf.protect(apply_exemptions=True)

    @app.before_request
    def refuse_nul_in_forms():
        """No form field may hold a NUL character (PostgreSQL's text cannot): 400 before any view. Only a
        form the CSRF check above has read already: a view exempt from it (the bearer-token APIs) reads
        its body itself, and reading it here would leave the view an empty stream."""
        if request.method in SAFE_METHODS or "form" not in request.__dict__:
            return
        if any(NUL in key or NUL in value for key, values in request.form.lists() for value in values):
            abort(400)

    @app.after_request
    def set_headers(response):
        """The per-response headers: a CSP with this request's nonce where the page used one, and
        the origins in `g.csp_extra` where it needs more than ours (every other response gets the
        one without inline code from StaticHeaders), and no-store."""
        nonce, extra = g.get("csp_nonce"), g.get("csp_extra")
        if (nonce or extra) and "Content-Security-Policy" not in response.headers:
            response.headers["Content-Security-Policy"] = content_security_policy(nonce, extra)
        if extra and extra.get("frame-src"):  # a provider's frames may ask for Apple Pay / Google Pay
            response.headers["Permissions-Policy"] = checkout_permissions(extra)
        if g.get("no_store"):
            response.headers["Cache-Control"] = "no-store"
        return response

    app.wsgi_app = StaticHeaders(
        app.wsgi_app, hsts=app.config["HSTS_ENABLED"], always_https=app.config["PREFERRED_URL_SCHEME"] == "https"
    )
    app.jinja_env.globals["csp_nonce"] = csp_nonce
    app.jinja_env.globals["csrf_token"] = csrf_token
    install_log_redaction()
