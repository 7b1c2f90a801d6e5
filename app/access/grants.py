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

A link to one bill opens the customer's other bills owed to the same creditor too (a reminder about
several bills carries one link): each gets a grant of its own, with its own `r`, naming the bill
whose link gave it (`s`) and that bill's revocation count then (`sr`). It holds while both counts
stand: revoking the links of either bill ends it (the access read gives the source's count, in the
same statement). Passing the step-up for one of them passes it for every grant of the same link
(the step-up asks about the customer, who is the same).
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping, Sequence

KEY = "grants"
MAX_GRANTS = 12
#: The most other bills a link opens besides its own (the earliest due first; the page lists them).
MAX_OTHERS = 8


def add(session: MutableMapping, public_id: str, link_id: int, now_ts: int, *, link_revocations: int,
        expires_ts: int, others: Sequence[tuple[str, int]] = (), source: tuple[int, int] | None = None,
        channel: str | None = None) -> None:
    """The grant of an opened link to its bill, and to `others` (public id, link revocations) of the
    same customer and creditor; `source`: the link's bill (id, link revocations), which they name;
    `channel`: the link's (sms, email, letter, api), which content blocks may target (`c`)."""
    grants = dict(session.get(KEY) or {})
    came_by = {"c": channel} if channel else {}
    extra = {"s": source[0], "sr": source[1], **came_by} if source is not None else dict(came_by)
    entries = [*((public_id_, revocations, extra) for public_id_, revocations in others[:MAX_OTHERS]
                 if public_id_ != public_id), (public_id, link_revocations, came_by)]
    for key, revocations, more in entries:  # the link's own bill last: the newest, kept longest
        previous = grants.pop(key, None)
        verified = bool(previous and previous.get("l") == link_id and previous.get("r") == revocations
                        and previous.get("sr") == more.get("sr") and previous.get("v"))
        grants[key] = {"l": link_id, "t": now_ts, "v": verified, "r": revocations, "x": expires_ts, **more}
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


def channel_of(grant: Mapping) -> str | None:
    """The channel of the link that gave this grant (None: a grant written before it was kept)."""
    found = grant.get("c")
    return found if isinstance(found, str) else None


def channel(session: Mapping, public_id: str) -> str | None:
    """The channel of the link that gave this browser its grant to the bill, if any."""
    grant = (session.get(KEY) or {}).get(public_id)
    return channel_of(grant) if isinstance(grant, Mapping) else None


def source_of(grant: Mapping) -> int | None:
    """The bill whose link gave this grant, when it is another bill (else None)."""
    source = grant.get("s")
    return source if isinstance(source, int) else None


def current(grant: Mapping, link_revocations: int, source_revocations: int | None = None) -> bool:
    """Whether no link of the invoice was revoked since the grant was given, nor, for a grant that came
    with another bill's link, a link of that bill (`source_revocations`: its count now)."""
    if grant.get("r") != link_revocations:
        return False
    return "s" not in grant or (source_revocations is not None and grant.get("sr") == source_revocations)


def mark_verified(session: MutableMapping, public_id: str) -> None:
    """The step-up passed for this bill: for every grant that came with the same link too."""
    grants = dict(session.get(KEY) or {})
    if public_id in grants:
        link_id = grants[public_id].get("l")
        for key, grant in grants.items():
            if key == public_id or grant.get("l") == link_id:
                grants[key] = {**grant, "v": True}
        session[KEY] = grants
