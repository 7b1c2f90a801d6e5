"""Who may see a bill: the grant an opened link left in this browser, the step-up, and the one
neutral answer for everything else. Every customer blueprint guards its bill routes with
`bill_required`; none of them repeats the checks."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable

from flask import abort, g, redirect, render_template, session, url_for
from flask.globals import _cv_app, _cv_request
from flask.typing import ResponseReturnValue

from app.billing.models import Invoice
from app.creditors.models import Creditor
from app.extensions import db
from app.i18n import select_locale
from app.portal import grants
from app.portal.page_cache import cached_page
from app.portal.services import BillAccess, bill_access, load_bill
from app.security import ensure_csrf_secret

#: The session's note of the bill a neutral page offered a new link for: {"i": invoice id, "t": when}.
RENEW_KEY = "renew"
RENEW_SECONDS = 3600


def unavailable(creditor: Creditor | None = None, *, renew_invoice_id: int | None = None):
    """The one neutral answer for forged, expired, revoked, unknown and closed links. Where the link
    was genuine (the creditor is known), in the creditor's brand with its contact details and, given
    the bill (`renew_invoice_id`), "send me a new link": the bill is noted in the session (never in the
    page, so the page stays the creditor's one cached page and the form carries no token), and the
    page is sent with `Referrer-Policy: same-origin`, so that its form's POST carries our origin."""
    if creditor is not None:
        g.creditor_locale = creditor.default_locale
    version = (creditor.id, creditor.updated_at) if creditor is not None else None
    renew = creditor is not None and renew_invoice_id is not None
    if renew:
        session[RENEW_KEY] = {"i": renew_invoice_id, "t": int(time.time())}
        ensure_csrf_secret()
    html = cached_page(
        ("unavailable", select_locale(), version, renew),
        lambda: render_template("portal/unavailable.html", creditor=creditor, renew=renew),
    )
    return (html, 404, {"Referrer-Policy": "same-origin"}) if renew else (html, 404)


def renewal_invoice_id() -> int | None:
    """The bill the neutral page offered a new link for in this browser, if the offer is recent (used once)."""
    entry = session.pop(RENEW_KEY, None)
    if not isinstance(entry, dict) or not isinstance(entry.get("i"), int) or not isinstance(entry.get("t"), int):
        return None
    return entry["i"] if time.time() - entry["t"] <= RENEW_SECONDS else None


def granted(public_id: str) -> tuple[BillAccess | None, ResponseReturnValue | None]:
    """Access to the bill if this browser holds a live grant for it; else the answer to send.

    A live grant is young enough, its link has not expired, and no link of the bill was revoked
    since it was given (compared with what the one access read gives: no query of its own)."""
    app_ctx = _cv_app.get()  # the contexts read once, not through a proxy per use
    grant = grants.find(_cv_request.get().session, public_id, int(time.time()),
                        app_ctx.app.config["GRANT_MAX_AGE_HOURS"])
    if grant is None:
        return None, unavailable()
    access = bill_access(public_id, grants.source_of(grant))
    if access is None:
        return None, unavailable()
    if access.is_closed or not grants.current(grant, access.link_revocations, access.source_revocations):
        return None, unavailable(db.session.get(Creditor, access.creditor_id), renew_invoice_id=access.invoice_id)
    found = app_ctx.g
    found.customer_locale = access.customer_locale
    found.creditor_locale = access.creditor_locale
    if access.step_up_mode != "none" and not grant.get("v"):
        return None, redirect(url_for("portal.verify", public_id=public_id), code=303)
    return access, None


def bill_required(view: Callable) -> Callable:
    """For a route with `<public_id>`: the view runs, with `access` (the bill's `BillAccess`) as a
    keyword, only when this browser holds a live grant for the bill and passed its step-up; else
    the answer is the neutral page or the step-up."""

    @functools.wraps(view)
    def guarded(public_id: str, **kwargs):
        access, answer = granted(public_id)
        if answer is not None:
            return answer
        return view(public_id=public_id, access=access, **kwargs)

    return guarded


def load_bill_or_404(public_id: str) -> Invoice:
    """The whole invoice, after `granted` let the browser in (gone since: the neutral 404)."""
    invoice = load_bill(public_id)
    if invoice is None:
        abort(404)
    return invoice
