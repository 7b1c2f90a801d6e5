"""Access grants kept in the signed session cookie: which bills this browser may see.

A grant is written when a valid link is opened and names the link it came from; it
expires after GRANT_MAX_AGE_HOURS. Only the few most recent grants are kept.
"""

from __future__ import annotations

from collections.abc import MutableMapping

KEY = "grants"
MAX_GRANTS = 8


def add(session: MutableMapping, public_id: str, link_id: int, now_ts: int) -> None:
    grants = dict(session.get(KEY) or {})
    previous = grants.pop(public_id, None)
    verified = bool(previous and previous.get("l") == link_id and previous.get("v"))
    grants[public_id] = {"l": link_id, "t": now_ts, "v": verified}
    while len(grants) > MAX_GRANTS:
        grants.pop(next(iter(grants)))
    session[KEY] = grants


def find(session: MutableMapping, public_id: str, now_ts: int, max_age_hours: int) -> dict | None:
    grant = (session.get(KEY) or {}).get(public_id)
    if not grant or now_ts - int(grant.get("t", 0)) > max_age_hours * 3600:
        return None
    return grant


def mark_verified(session: MutableMapping, public_id: str) -> None:
    grants = dict(session.get(KEY) or {})
    if public_id in grants:
        grants[public_id] = {**grants[public_id], "v": True}
        session[KEY] = grants
