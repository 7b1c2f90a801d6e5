"""The session cookie: Flask's signed cookie, with its serializer built once per app.

Flask builds a new `URLSafeTimedSerializer` for every request, twice when the cookie is
written, and itsdangerous tries a `dumps({})` each time to learn whether the serializer
speaks text. The session holds only plain JSON (grants: strings, numbers and booleans;
the chosen language; Flask-WTF's CSRF secret), so it is serialized as plain compact JSON
instead of Flask's tagged JSON, which walks every value looking for tuples and bytes.
Cookies stay compatible both ways: plain JSON is what tagged JSON writes for such data.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import BadSignature, URLSafeTimedSerializer
from itsdangerous.encoding import base64_decode
from werkzeug.http import dump_cookie

from app.security import KeyCachingSigner, UncompressedSerializer


class _CompactJSON:
    @staticmethod
    def dumps(value) -> str:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)

    @staticmethod
    def loads(value):
        return json.loads(value)


def _vary_on_cookie(response) -> None:
    """`Vary: Cookie`, as a plain header: werkzeug's `response.vary.add` parses and rebuilds a set."""
    # A scan of the few headers there are: `headers.get` raises and catches a KeyError (an HTTP
    # exception, built) whenever the header is absent, as it is on most answers.
    vary = next((value for name, value in response.headers.items() if name.lower() == "vary"), None)
    if not vary:
        response.headers["Vary"] = "Cookie"
    elif "cookie" not in vary.lower():
        response.headers["Vary"] = f"{vary}, Cookie"


#: The most verified cookies a process remembers (a few hundred bytes each).
MAX_OPENED_COOKIES = 4096


class CachedSerializerSessionInterface(SecureCookieSessionInterface):
    # Plain JSON where Flask has its tagged JSON: another class, with the same dumps and loads.
    serializer = _CompactJSON()  # type: ignore[assignment]  # see the line above
    # Flask's default is a lazy wrapper around SHA-1, a Python function, which sends every
    # HMAC down the standard library's pure-Python path; hashlib's own constructor takes
    # OpenSSL's. The same algorithm, so the same signatures.
    digest_method = staticmethod(hashlib.sha1)

    def __init__(self) -> None:
        self._serializers: dict[tuple, URLSafeTimedSerializer] = {}
        # Cookies whose signature verified: cookie -> (signed at, its JSON). See open_session.
        self._opened: dict[str, tuple[int, str]] = {}

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        if not app.secret_key:
            return None
        keys = (*(app.config["SECRET_KEY_FALLBACKS"] or ()), app.secret_key)  # the current key last
        serializer = self._serializers.get(keys)
        if serializer is None:
            serializer = UncompressedSerializer(
                list(keys),
                salt=self.salt,
                serializer=self.serializer,
                signer=KeyCachingSigner,
                signer_kwargs={"key_derivation": self.key_derivation, "digest_method": self.digest_method},
            )
            self._serializers = {keys: serializer}
            self._opened = {}  # verified with other keys
        return serializer

    def open_session(self, app: Flask, request):
        """Flask's, remembering the cookies whose signature verified: a browser sends the same cookie
        with every request until a response changes it, and checking its signature again (base64,
        HMAC, the timestamp) cost a tenth of a cached bill page. A remembered cookie is still refused
        once older than the session's lifetime, as itsdangerous refuses it; its JSON is parsed again
        for every request, so no request sees another's changes. Keyed by the whole signed value:
        a cookie changed in any way is checked as new. Forgotten when the keys change."""
        serializer = self.get_signing_serializer(app)
        if serializer is None:
            return None
        return self.open_cookie(app, request.cookies.get(self.get_cookie_name(app)))

    def open_cookie(self, app: Flask, value: str | None):
        """The session the cookie's value holds (`open_session`'s work once the cookie is read; the bill
        page's gate, `portal.bill_gate`, calls it with the value it read)."""
        serializer = self.get_signing_serializer(app)
        if serializer is None:
            return None
        if not value:
            return self.session_class()
        max_age = int(app.permanent_session_lifetime.total_seconds())
        opened = self._opened
        known = opened.get(value)
        if known is not None:
            if 0 <= int(time.time()) - known[0] <= max_age:
                return self.session_class(json.loads(known[1]))
            opened.pop(value, None)  # expired: checked (and refused) as itsdangerous does
        try:
            data, signed_at = serializer.loads(value, max_age=max_age, return_timestamp=True)
        except BadSignature:
            return self.session_class()
        payload = value.rsplit(".", 2)[0]
        if not payload.startswith("."):  # compressed (an old cookie): not remembered
            if len(opened) >= MAX_OPENED_COOKIES:
                opened.clear()
            opened[value] = (int(signed_at.timestamp()), base64_decode(payload).decode())
        return self.session_class(data)

    def save_session(self, app: Flask, session, response) -> None:
        """Flask's own, with `Vary: Cookie` written directly (see `_vary_on_cookie`)."""
        if not session:
            if session.modified:  # emptied: Flask deletes the cookie
                super().save_session(app, session, response)
            elif session.accessed:
                _vary_on_cookie(response)
            return
        if not self.should_set_cookie(app, session):
            if session.accessed:
                _vary_on_cookie(response)
            return
        expires = self.get_expiration_time(app, session)
        if expires is None:
            response.headers.add("Set-Cookie", self.cookie_line(app, dict(session)))
        else:
            name, options, _suffix = self._cookie_options(app)
            serializer = self.get_signing_serializer(app)
            assert serializer is not None  # without a secret key the session is a NullSession, never saved
            response.set_cookie(name, serializer.dumps(dict(session)), expires=expires, **options)
        _vary_on_cookie(response)

    def cookie_line(self, app: Flask, data: dict) -> str:
        """The `Set-Cookie` value of a session holding `data` that is not permanent (no expiry): what
        `save_session` writes, and what the link's gate (`portal.gate`) writes for a new session."""
        name, _options, suffix = self._cookie_options(app)
        serializer = self.get_signing_serializer(app)
        assert serializer is not None  # without a secret key the session is a NullSession, never saved
        # The signed value is URL-safe base64 and dots: nothing to quote. The attributes were
        # rendered by werkzeug's dump_cookie once for the app.
        return f"{name}={serializer.dumps(data)}{suffix}"

    def _cookie_options(self, app: Flask) -> tuple[str, dict, str]:
        """The cookie's name, attributes, and the attributes as werkzeug renders them for a
        session cookie without an expiry: read from the configuration once per app."""
        cached = app.extensions.get("session_cookie_options")
        if cached is None:
            name = self.get_cookie_name(app)
            options: dict[str, Any] = {
                "httponly": self.get_cookie_httponly(app),
                "domain": self.get_cookie_domain(app),
                "path": self.get_cookie_path(app),
                "secure": self.get_cookie_secure(app),
                "partitioned": self.get_cookie_partitioned(app),
                "samesite": self.get_cookie_samesite(app),
            }
            rendered = dump_cookie(name, "", max_size=app.config["MAX_COOKIE_SIZE"], **options)
            cached = app.extensions["session_cookie_options"] = (name, options, rendered[len(name) + 1 :])
        return cached
