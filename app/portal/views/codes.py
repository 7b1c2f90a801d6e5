"""A letter's short code (/k/<code>): typed from paper or scanned from its QR code, it opens the bill as
the signed link (/l/<token>) does: the same checks of the link (revoked, expired, a closed bill),
the same neutral answer for a code that never was, the same grant and so the same step-up after it."""

from __future__ import annotations

from flask import current_app

from app.extensions import limiter
from app.links.codes import resolve_code
from app.portal.views import bp
from app.portal.views.bill import admit


def _code_limit() -> str:
    return current_app.config["CODE_RATE_LIMIT"]


@bp.get("/k/<code>")
@limiter.limit(_code_limit)
def open_code(code: str):
    """Check the code, note that its link was opened, and send the browser to the bill (as open_link)."""
    return admit(resolve_code(code))
