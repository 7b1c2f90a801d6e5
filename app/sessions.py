"""The session cookie: Flask's signed cookie, with its serializer built once per app.

Flask builds a new `URLSafeTimedSerializer` for every request, twice when the cookie is
written, and itsdangerous tries a `dumps({})` each time to learn whether the serializer
speaks text. The session holds only plain JSON (grants: strings, numbers and booleans;
the chosen language; Flask-WTF's CSRF secret), so it is serialized as plain compact JSON
instead of Flask's tagged JSON, which walks every value looking for tuples and bytes.
Cookies stay compatible both ways: plain JSON is what tagged JSON writes for such data.
"""

from __future__ import annotations

import json

from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import URLSafeTimedSerializer


class _CompactJSON:
    @staticmethod
    def dumps(value) -> str:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)

    @staticmethod
    def loads(value):
        return json.loads(value)


class CachedSerializerSessionInterface(SecureCookieSessionInterface):
    serializer = _CompactJSON()

    def __init__(self) -> None:
        self._serializers: dict[tuple, URLSafeTimedSerializer] = {}

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        if not app.secret_key:
            return None
        keys = (*(app.config["SECRET_KEY_FALLBACKS"] or ()), app.secret_key)  # the current key last
        serializer = self._serializers.get(keys)
        if serializer is None:
            serializer = URLSafeTimedSerializer(
                list(keys),
                salt=self.salt,
                serializer=self.serializer,
                signer_kwargs={"key_derivation": self.key_derivation, "digest_method": self.digest_method},
            )
            self._serializers = {keys: serializer}
        return serializer
