"""Access grants kept in the signed session cookie: which bills this browser may see.

A grant is written when a valid link is opened and names the link it came from. It holds
while all of these do:

- it is younger than GRANT_MAX_AGE_HOURS (`t`, when it was written);
- the link it came from has not expired (`x`, the link's expiry);
- none of the invoice's links was revoked since (`r`, the invoice's `link_revocations` when the
  link was opened; every revocation raises it, see `links.services.end_grants`). The bill's
  one-statement access read gives the current value, so this costs no query.

A grant written before `x` and `r` existed holds nothing: the browser opens its link again.
Only the few most recent grants are kept.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping

KEY = "grants"
MAX_GRANTS = 8


def add(session: MutableMapping, public_id: str, link_id: int, now_ts: int, *, link_revocations: int,
        expires_ts: int) -> None:
    grants = dict(session.get(KEY) or {})
    previous = grants.pop(public_id, None)
    verified = bool(previous and previous.get("l") == link_id and previous.get("r") == link_revocations
                    and previous.get("v"))
    grants[public_id] = {"l": link_id, "t": now_ts, "v": verified, "r": link_revocations, "x": expires_ts}
    while len(grants) > MAX_GRANTS:
        grants.pop(next(iter(grants)))
    session[KEY] = grants


def find(session: MutableMapping, public_id: str, now_ts: int, max_age_hours: int) -> dict | None:
    """The browser's grant to the bill, if it is young enough and its link has not expired. Whether
    a revocation ended it is `current`'s to say, against the value the access read gives."""
    grant = (session.get(KEY) or {}).get(public_id)
    if not grant or now_ts - int(grant.get("t", 0)) > max_age_hours * 3600:
        return None
    expires = grant.get("x")
    if not isinstance(expires, int) or now_ts >= expires or not isinstance(grant.get("r"), int):
        return None
    return grant


def current(grant: Mapping, link_revocations: int) -> bool:
    """Whether no link of the invoice was revoked since the grant was given."""
    return grant.get("r") == link_revocations


def mark_verified(session: MutableMapping, public_id: str) -> None:
    grants = dict(session.get(KEY) or {})
    if public_id in grants:
        grants[public_id] = {**grants[public_id], "v": True}
        session[KEY] = grants
