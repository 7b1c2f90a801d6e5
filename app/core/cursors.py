"""Opaque page cursors of the API's lists: a few integers, base64url, with a prefix that says which
list they belong to (an invoices cursor is refused by the events feed)."""

from __future__ import annotations

import base64
import binascii

MAX_LENGTH = 200


def encode(prefix: str, *numbers: int) -> str:
    raw = ".".join(str(n) for n in numbers).encode()
    return prefix + "_" + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(prefix: str, text: str, count: int) -> tuple[int, ...]:
    """The numbers of a cursor made by `encode(prefix, …)` with `count` numbers; ValueError otherwise."""
    if not text or len(text) > MAX_LENGTH or not text.startswith(prefix + "_"):
        raise ValueError("not a cursor of this list")
    body = text[len(prefix) + 1:]
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode("ascii")
    except (binascii.Error, ValueError):
        raise ValueError("not a cursor of this list") from None
    parts = raw.split(".")
    if len(parts) != count or not all(p.isdigit() and len(p) <= 19 for p in parts):
        raise ValueError("not a cursor of this list")
    return tuple(int(p) for p in parts)
