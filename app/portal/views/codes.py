"""A letter's short code (/k/<code>): typed from paper or scanned from its QR code, it opens the bill as
the signed link (/l/<token>) does: the same checks of the link (revoked, expired, a closed bill),
the same neutral answer for a code that never was, the same grant and so the same step-up after it."""

from __future__ import annotations

import time

from flask import Response, current_app, request, session

from app.extensions import db, limiter
from app.links.codes import resolve_code
from app.links.services import record_open
from app.portal import grants
from app.portal.access import unavailable
from app.portal.views import bp
from app.security import ensure_csrf_secret


def _code_limit() -> str:
    return current_app.config["CODE_RATE_LIMIT"]


@bp.get("/k/<code>")
@limiter.limit(_code_limit)
def open_code(code: str):
    """Check the code, note that its link was opened, and send the browser to the bill (as open_link)."""
    resolution = resolve_code(code)
    if not resolution.ok:
        return unavailable(resolution.creditor)
    assert resolution.public_id and resolution.link_id and resolution.expires_at  # set when ok
    if record_open(resolution, interval_minutes=current_app.config["LINK_OPEN_EVENT_INTERVAL_MINUTES"]):
        db.session.commit()
    grants.add(session, resolution.public_id, resolution.link_id, int(time.time()),
               link_revocations=resolution.link_revocations or 0, expires_ts=int(resolution.expires_at.timestamp()))
    ensure_csrf_secret()  # the bill's pay form needs it
    return Response(status=303, headers={"Location": f"{request.script_root}/b/{resolution.public_id}"})
