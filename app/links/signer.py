"""The link signer: itsdangerous TimestampSigner with a per-purpose salt and rotating keys.

Keys are given newest first (LINK_SIGNING_KEYS); the newest signs, all verify. A token is
`<22-char key>.<timestamp>.<HMAC-SHA256>`: 73 characters.
"""

from __future__ import annotations

import hashlib
import secrets
import time

from itsdangerous import BadData
from itsdangerous.encoding import base64_decode, bytes_to_int

from app.security import KeyCachingSigner

KEY_BYTES = 16  # 128 bits
CLOCK_SKEW_SECONDS = 60  # a token signed by a server whose clock runs a little ahead


class LinkSigner:
    def __init__(self, keys: list[str], max_age_seconds: int):
        if not keys:
            raise ValueError("at least one signing key is needed")
        self._keys = list(reversed(keys))  # itsdangerous signs with the last key
        self.max_age_seconds = max_age_seconds
        self._signers: dict[str, KeyCachingSigner] = {}

    def _signer(self, purpose: str) -> KeyCachingSigner:
        signer = self._signers.get(purpose)
        if signer is None:
            signer = KeyCachingSigner(self._keys, salt=f"portal.link.{purpose}", digest_method=hashlib.sha256)
            self._signers[purpose] = signer
        return signer

    @staticmethod
    def new_key() -> str:
        return secrets.token_urlsafe(KEY_BYTES)

    def sign(self, key: str, purpose: str) -> str:
        return self._signer(purpose).sign(key).decode()

    def unsign(self, token: str, purpose: str) -> str | None:
        """The key inside a valid, unexpired token, else None. No database work.

        The signature is checked by itsdangerous (`verify_signature`: every key, constant-time
        comparison); the age is read from the timestamp here. `TimestampSigner.unsign` does the
        same, but for a forged token it also builds datetimes and an exception, which doubled
        the cost of refusing one."""
        if not token or len(token) > 120:
            return None
        try:
            value, sep, signature = token.encode("ascii").rpartition(b".")
            if not sep or not self._signer(purpose).verify_signature(value, signature):
                return None
            key, sep, timestamp = value.rpartition(b".")
            signed_at = bytes_to_int(base64_decode(timestamp))
        except (UnicodeEncodeError, BadData, ValueError):
            return None
        age = time.time() - signed_at
        if not sep or not key or age > self.max_age_seconds or age < -CLOCK_SKEW_SECONDS:
            return None
        return key.decode("ascii")


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()
