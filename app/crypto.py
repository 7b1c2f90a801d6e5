"""Secrets we must read back (a partner's signing secret), encrypted at rest with Fernet
(AES-128-CBC and HMAC-SHA256, from `cryptography`).

DATA_ENCRYPTION_KEYS lists keys newest first: the newest encrypts, every one decrypts, so a key
rotates by prepending a new one and re-encrypting (`flask collection partners rotate-secret`
writes new secrets with the newest key). Each configured key is stretched to a Fernet key with
SHA-256, so any long random string will do."""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import current_app


class SecretUnreadable(Exception):
    """A stored secret that no configured key decrypts (a key was dropped too early)."""


def _fernet(keys: list[str]) -> MultiFernet:
    return MultiFernet([Fernet(base64.urlsafe_b64encode(hashlib.sha256(key.encode()).digest())) for key in keys])


def cipher() -> MultiFernet:
    """The app's cipher, built once per app from its configuration."""
    found = current_app.extensions.get("data_cipher")
    if found is None:
        found = current_app.extensions["data_cipher"] = _fernet(current_app.config["DATA_ENCRYPTION_KEYS"])
    return found


def encrypt(plain: str) -> str:
    return cipher().encrypt(plain.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return cipher().decrypt(token.encode()).decode()
    except InvalidToken:
        raise SecretUnreadable("no DATA_ENCRYPTION_KEYS key decrypts this secret") from None
