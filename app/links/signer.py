"""The link signer: itsdangerous TimestampSigner with a per-purpose salt and rotating keys.

Keys are given newest first (LINK_SIGNING_KEYS); the newest signs, all verify. A token is
`<22-char key>.<timestamp>.<HMAC-SHA256>`: 73 characters.
"""

from __future__ import annotations

import hashlib
import secrets

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner

KEY_BYTES = 16  # 128 bits


class LinkSigner:
    def __init__(self, keys: list[str], max_age_seconds: int):
        if not keys:
            raise ValueError("at least one signing key is needed")
        self._keys = list(reversed(keys))  # itsdangerous signs with the last key
        self.max_age_seconds = max_age_seconds
        self._signers: dict[str, TimestampSigner] = {}

    def _signer(self, purpose: str) -> TimestampSigner:
        signer = self._signers.get(purpose)
        if signer is None:
            signer = TimestampSigner(self._keys, salt=f"portal.link.{purpose}", digest_method=hashlib.sha256)
            self._signers[purpose] = signer
        return signer

    @staticmethod
    def new_key() -> str:
        return secrets.token_urlsafe(KEY_BYTES)

    def sign(self, key: str, purpose: str) -> str:
        return self._signer(purpose).sign(key).decode()

    def unsign(self, token: str, purpose: str) -> str | None:
        """The key inside a valid, unexpired token, else None. No database work."""
        if not token or len(token) > 120:
            return None
        try:
            return self._signer(purpose).unsign(token, max_age=self.max_age_seconds).decode()
        except (SignatureExpired, BadSignature, UnicodeDecodeError):
            return None


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()
