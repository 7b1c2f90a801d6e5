"""Response headers (CSP with nonces, HSTS, nosniff, referrer policy, no-store), CSRF (Flask-WTF's token and
our own origin check) and log redaction."""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import secrets
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import ClassVar
from urllib.parse import urlsplit

from flask import Flask, abort, current_app, g, request
from flask.globals import _cv_app, _cv_request
from flask_wtf.csrf import CSRFError
from itsdangerous import BadData, Serializer, TimestampSigner, URLSafeTimedSerializer, want_bytes
from itsdangerous.encoding import base64_decode, base64_encode, int_to_bytes
from itsdangerous.signer import HMACAlgorithm

from app.extensions import csrf

log = logging.getLogger(__name__)

#: The secret part of the addresses that carry one: a signed link, a case file's PDF address.
TOKEN_PATHS = re.compile(r"(/l/|/k/|/collection/cases/|/unsubscribe/)[^\s?#\"'/<>]+")


class KeyCachingSigner(TimestampSigner):
    """itsdangerous's TimestampSigner, deriving each secret key once per process instead of on
    every sign and verify (a serializer makes a new signer for every cookie it reads or
    writes). Used by the session cookie and the signed links."""

    _derived: ClassVar[dict[tuple, bytes]] = {}  # one cache for every signer in the process

    def derive_key(self, secret_key: str | bytes | None = None) -> bytes:
        secret = self.secret_keys[-1] if secret_key is None else want_bytes(secret_key)
        cache_key = (secret, self.salt, self.key_derivation, self.digest_method)
        key = self._derived.get(cache_key)
        if key is None:
            if len(self._derived) > 256:  # keys and salts are few; bound it anyway
                self._derived.clear()
            key = self._derived[cache_key] = super().derive_key(secret)
        return key

    # HMAC in one call into OpenSSL (`hmac.digest`), where itsdangerous goes through its algorithm
    # object and builds an `hmac.HMAC` for each signature: the same bytes (a test compares them).

    def get_signature(self, value: str | bytes) -> bytes:
        if type(self.algorithm) is not HMACAlgorithm:
            return super().get_signature(value)
        return base64_encode(hmac.digest(self.derive_key(), want_bytes(value), self.algorithm.digest_method))

    def verify_signature(self, value: str | bytes, sig: str | bytes) -> bool:
        algorithm = self.algorithm
        if type(algorithm) is not HMACAlgorithm:
            return super().verify_signature(value, sig)
        try:
            signature = base64_decode(sig)
        except BadData:  # not base64: itsdangerous answers False too
            return False
        value = want_bytes(value)
        for key in reversed(self.secret_keys):  # the current key first
            if hmac.compare_digest(signature, hmac.digest(self.derive_key(key), value, algorithm.digest_method)):
                return True
        return False

    def sign(self, value: str | bytes) -> bytes:
        sep = want_bytes(self.sep)
        value = want_bytes(value) + sep + base64_encode(int_to_bytes(self.get_timestamp()))
        return value + sep + self.get_signature(value)


class UncompressedSerializer(URLSafeTimedSerializer):
    """Writes the payload without trying zlib first: on a cookie or a token of a few dozen or hundred
    bytes the compression saves a few bytes for several microseconds. Compressed payloads still load.
    Used by the session cookie and the CSRF token."""

    def dump_payload(self, obj) -> bytes:
        return base64_encode(Serializer.dump_payload(self, obj))

    def make_signer(self, salt=None):
        """The serializer's signer, made once: itsdangerous makes one for every dumps and loads."""
        signers = self.__dict__.setdefault("_signers", {})
        signer = signers.get(salt)
        if signer is None:
            signer = signers[salt] = super().make_signer(salt)
        return signer


CSRF_SALT = "wtf-csrf-token"  # Flask-WTF's: its validate_csrf checks what csrf_token() makes


def _csrf_field(app: Flask | None = None) -> str:
    return (app or current_app).config.get("WTF_CSRF_FIELD_NAME", "csrf_token")


def ensure_csrf_secret(current_session=None, field: str | None = None) -> None:
    """Put the session's CSRF secret in place now (as Flask-WTF would on its first token), so
    that the pages after this one sign tokens without rewriting the session cookie."""
    if current_session is None:
        current_session = _cv_request.get().session
    if field is None:
        field = _csrf_field()
    if field not in current_session:
        current_session[field] = hashlib.sha1(os.urandom(64)).hexdigest()  # noqa: S324  Flask-WTF's recipe: random bytes as hex


#: How long a signed CSRF token is given again to the same session (Flask-WTF signs a new one per
#: request). Its validity (WTF_CSRF_TIME_LIMIT, hours) counts from its signing: a minute less at most.
CSRF_TOKEN_REUSE_SECONDS = 60
MAX_CSRF_TOKENS = 4096


def csrf_token() -> str:
    """Flask-WTF's CSRF token for this request, signed by a serializer made once per app (Flask-WTF
    builds one for every token, a tenth of a cached bill page), and given again to the same session
    for CSRF_TOKEN_REUSE_SECONDS: it is the same token Flask-WTF would make a moment later, bound to
    the same session secret, and it checks the same way."""
    app_ctx = _cv_app.get()  # the contexts read once, not through a proxy per use
    app, found = app_ctx.app, app_ctx.g
    field = _csrf_field(app)
    token = getattr(found, field, None)
    if token is None:
        current_session = _cv_request.get().session
        ensure_csrf_secret(current_session, field)
        token = signed_csrf_token(app, current_session[field])
        setattr(found, field, token)
    return token


def signed_csrf_token(app: Flask, session_secret: str) -> str:
    """The signed CSRF token of a session's secret (`csrf_token`'s, and the bill page's gate's)."""
    extensions = app.extensions
    serializer = extensions.get("csrf_serializer")
    if serializer is None:
        secret = app.config.get("WTF_CSRF_SECRET_KEY") or app.secret_key
        assert secret is not None  # load_config always sets SECRET_KEY
        # Flask-WTF's serializer (HMAC-SHA1, django-concat key derivation), with the derived key
        # cached, hashlib's SHA-1 (OpenSSL) and no trial compression: the same signatures.
        serializer = extensions["csrf_serializer"] = UncompressedSerializer(
            secret, salt=CSRF_SALT, signer=KeyCachingSigner, signer_kwargs={"digest_method": hashlib.sha1})
        extensions["csrf_tokens"] = {}
    tokens: dict[str, tuple[float, str]] = extensions["csrf_tokens"]
    now = time.time()
    signed = tokens.get(session_secret)
    if signed is not None and 0 <= now - signed[0] < CSRF_TOKEN_REUSE_SECONDS:
        return signed[1]
    token = serializer.dumps(session_secret)
    if len(tokens) >= MAX_CSRF_TOKENS:
        tokens.clear()
    tokens[session_secret] = (now, token)
    return token


def csp_nonce() -> str:
    found = _cv_app.get().g
    nonce = getattr(found, "csp_nonce", None)
    if nonce is None:
        nonce = found.csp_nonce = secrets.token_urlsafe(16)
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


def redact_tokens(text: str) -> str:
    """`text` with every secret token in an address replaced: the signed link's (`/l/<token>`), a
    letter's short code (`/k/<code>`) and the case file's PDF address
    (`/collection/cases/<token>/invoice.pdf`), wherever they stand (a request line, a Referer, a full
    URL, a traceback)."""
    if "/l/" in text or "/k/" in text or "/collection/cases/" in text or "/unsubscribe/" in text:
        return TOKEN_PATHS.sub(r"\1[redacted]", text)
    return text


def redact_record(record: logging.LogRecord) -> logging.LogRecord:
    """Redact tokens from a log record: its message (with its args), its exception's text and its
    stack. The exception is formatted now only where there is one, and kept as text (exc_info
    dropped) only when it held a token, so that no handler can format the token again."""
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 - a bad format string is the handler's to report, as logging does
        message = None
    if message is not None:
        redacted = redact_tokens(message)
        if redacted != message:
            record.msg, record.args = redacted, None
    if record.exc_info or record.exc_text:
        text = record.exc_text or (logging.Formatter().formatException(record.exc_info) if record.exc_info else "")
        redacted = redact_tokens(text)
        if redacted != text:
            record.exc_text, record.exc_info = redacted, None
    if record.stack_info:
        record.stack_info = redact_tokens(record.stack_info)
    return record


class RedactLinkTokens(logging.Filter):
    """A logging filter that redacts tokens (see redact_record), for a handler of one's own."""

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record)
        return True


def install_log_redaction() -> None:
    """Redact tokens from every log record this process makes, whichever logger makes it and
    whichever handler writes it (the app's, werkzeug's, gunicorn's access and error logs, a
    library's): at the record's making, through the log record factory. A filter on a logger
    would see only the records of that very logger, not its children's (`app` is not `app.errors`),
    and a filter on a handler only that handler's."""
    factory = logging.getLogRecordFactory()
    if getattr(factory, "redacts_tokens", False):
        return

    def make_record(*args, **kwargs) -> logging.LogRecord:
        return redact_record(factory(*args, **kwargs))

    make_record.redacts_tokens = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(make_record)


# The same on every response: added once per response at the WSGI layer (see StaticHeaders).
# The referrer policy is same-origin: our own pages send their address to us (the CSRF origin check
# reads Origin, or the Referer without it) and to no one else. The signed link's answers (/l/...)
# send none at all, not even to us: see docs/decisions.md ("Referrer policy and the CSRF origin check").
STATIC_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "same-origin"),
    ("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=(self)"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
)
LINK_PREFIX = ("/l/", "/k/")  # a signed link and a letter's short code
LINK_STATIC_HEADERS = tuple(("Referrer-Policy", "no-referrer") if name == "Referrer-Policy" else (name, value)
                            for name, value in STATIC_HEADERS)
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
            static = LINK_STATIC_HEADERS if environ.get("PATH_INFO", "").startswith(LINK_PREFIX) else STATIC_HEADERS
            headers.extend(h for h in static if h[0].lower() not in present)
            if "content-security-policy" not in present:  # pages with inline code set their own
                headers.append(CSP_WITHOUT_INLINE_CODE)
            if self.hsts and (self.always_https or environ.get("wsgi.url_scheme") == "https"):
                headers.append(HSTS)
            return start_response(status, headers, exc_info)

        return self.wsgi_app(environ, start)


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
#: The methods that show a form's page rather than submit it: HEAD is a GET without the body
#: (a view that tests `method == "GET"` took a HEAD for a submission, and answered 400).
SHOWING = frozenset({"GET", "HEAD"})


def accepts_uploads(view):
    """Mark a view whose form may carry an attachment: its requests may be larger than
    MAX_CONTENT_LENGTH, up to twice ATTACHMENT_MAX_BYTES and a little more, so that a file just
    over the limit reaches the form's own check and gets its error next to the field."""
    view.accepts_uploads = True
    return view


def origin_of(url: str | None) -> str | None:
    """The origin of an http(s) URL as browsers write it in `Origin` (scheme://host[:port], the
    default port left out, lower case), or None for anything else ("null", a relative path)."""
    if not url:
        return None
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), parts.hostname
    if scheme not in ("http", "https") or not host:
        return None
    host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host}" if port in (None, 443 if scheme == "https" else 80) else f"{scheme}://{host}:{port}"


class OriginCheck:
    """Our half of CSRF, next to Flask-WTF's token: an unsafe request must come from one of our own
    origins, the origin of PORTAL_BASE_URL or of a creditor's own portal_base_url (`more_origins`,
    asked only when the first does not match). The browser's `Origin` decides; without one, the
    origin of a `Referer`; `Origin: null` (a page that sends no referrer, a sandbox, a redirect
    from another site) is refused. A request that names neither is refused where it matters, over
    HTTPS and in production (browsers send Origin on every POST); outside production, over plain
    HTTP, it passes, for tools and the test client. Outside production the address the request
    came to (its Host) counts as ours too, so that a development server works under any name."""

    def __init__(self, app: Flask, more_origins: Callable[[], Iterable[str | None]] | None = None):
        self.app = app
        self.more_origins = more_origins
        self.production = app.config["PORTAL_ENV"] == "production"

    def ours(self, origin: str) -> bool:
        if origin == origin_of(self.app.config["PORTAL_BASE_URL"]):
            return True
        if not self.production and origin == origin_of(request.host_url):
            return True
        return self.more_origins is not None and origin in {origin_of(url) for url in self.more_origins()}

    def problem(self) -> str | None:
        """Why this request's origin is not ours, or None."""
        claimed = request.headers.get("Origin")
        if claimed is not None:
            what = "Origin"
        else:
            claimed, what = request.headers.get("Referer"), "Referer"
            if claimed is None:
                if self.production or request.is_secure:
                    return "The request names no origin (neither Origin nor Referer)."
                return None
        origin = origin_of(claimed)
        if origin is None or not self.ours(origin):
            return f"The {what} is not one of this portal's origins."
        return None

    def __call__(self) -> None:
        problem = self.problem()
        if problem:
            log.info("CSRF: %s", problem)
            raise CSRFError(problem)


NUL = "\x00"


def has_header(headers, lower_name: str) -> bool:
    """Whether werkzeug's `headers` hold `lower_name` (lower case): a scan of the few there are, where
    `name in headers` raises and catches a KeyError (an HTTP exception, built) whenever it is absent."""
    return any(name.lower() == lower_name for name, _value in headers.items())


def init_security(app: Flask, portal_origins: Callable[[], Iterable[str | None]] | None = None) -> None:
    """Headers, CSRF and log redaction. `portal_origins` gives the creditors' own portal base URLs
    (the origins besides PORTAL_BASE_URL that forms are posted from)."""
    check_origin = OriginCheck(app, portal_origins)

    def refuse_nul_in_the_address(req) -> None:
        """A NUL character (`%00`) in the path or the query string is answered before any view: 404 for a
        path (no record has it), 400 for a query. PostgreSQL's text cannot hold one, and a query with it
        would fail as a server error. Two substring tests, no parsing."""
        if NUL in req.path:
            abort(404)
        query = req.query_string
        if query and (b"%00" in query or b"\x00" in query):
            abort(400)

    def check_csrf(req) -> None:
        """CSRF on every form post: every unsafe method, except on exempt views (the bearer-token API,
        providers' webhooks): Flask-WTF's token, then our origin check (Flask-WTF's own referrer check,
        WTF_CSRF_SSL_STRICT, is off: see OriginCheck). Reading the token reads the body, so a view's
        larger allowance for uploads is set first."""
        view = app.view_functions.get(req.endpoint or "")
        if getattr(view, "accepts_uploads", False):
            req.max_content_length = 2 * app.config["ATTACHMENT_MAX_BYTES"] + 1024 * 1024
        if app.config.get("WTF_CSRF_ENABLED", True):
            csrf.protect(apply_exemptions=True)
            if g.get("csrf_valid"):  # checked, not exempt
                check_origin()

    def refuse_nul_in_forms(req) -> None:
        """No form field may hold a NUL character (PostgreSQL's text cannot): 400 before any view. Only a
        form the CSRF check above has read already: a view exempt from it (the bearer-token APIs) reads
        its body itself, and reading it here would leave the view an empty stream."""
        if "form" not in req.__dict__:
            return
        if any(NUL in key or NUL in value for key, values in req.form.lists() for value in values):
            abort(400)

    @app.before_request
    def guard_request():
        """Every request: no NUL in its address; every unsafe one: CSRF, then no NUL in its form. One
        hook for the three (Flask pays a call and a context lookup per hook on every request)."""
        req = request._get_current_object()  # type: ignore[attr-defined]  # the proxy's request, once
        refuse_nul_in_the_address(req)
        if req.method in SAFE_METHODS:
            return
        check_csrf(req)
        refuse_nul_in_forms(req)

    # Flask-WTF's own hook checks nothing with WTF_CSRF_CHECK_DEFAULT off (guard_request checks every
    # unsafe request), but asks the configuration on every request: it goes.
    if not app.config.get("WTF_CSRF_CHECK_DEFAULT", True):
        hooks = app.before_request_funcs.get(None, [])
        hooks[:] = [hook for hook in hooks if hook.__qualname__ != "CSRFProtect.init_app.<locals>.csrf_protect"]

    @app.after_request
    def set_headers(response):
        """The per-response headers: a CSP with this request's nonce where the page used one, and
        the origins in `g.csp_extra` where it needs more than ours (every other response gets the
        one without inline code from StaticHeaders), and no-store."""
        found = vars(g._get_current_object())  # read once, not per name
        nonce, extra = found.get("csp_nonce"), found.get("csp_extra")
        headers = response.headers
        if (nonce or extra) and not has_header(headers, "content-security-policy"):
            headers.add("Content-Security-Policy", content_security_policy(nonce, extra))
        if extra and extra.get("frame-src"):  # a provider's frames may ask for Apple Pay / Google Pay
            headers["Permissions-Policy"] = checkout_permissions(extra)
        if found.get("no_store"):
            headers["Cache-Control"] = "no-store"
        return response

    app.wsgi_app = StaticHeaders(  # type: ignore[method-assign]  # WSGI middleware, as Flask documents it
        app.wsgi_app, hsts=app.config["HSTS_ENABLED"], always_https=app.config["PREFERRED_URL_SCHEME"] == "https"
    )
    app.jinja_env.globals["csp_nonce"] = csp_nonce
    app.jinja_env.globals["csrf_token"] = csrf_token
    install_log_redaction()
