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

from app.access import grants
from app.access.services import BillAccess, bill_access, bill_owner, load_bill
from app.billing.models import Invoice
from app.creditors.models import Creditor
from app.extensions import db
from app.i18n import select_locale
from app.page_cache import cached_page
from app.security import ensure_csrf_secret

#: The session's note of the bill a neutral page offered a new link for: {"i": invoice id, "t": when}.
RENEW_KEY = "renew"
RENEW_SECONDS = 3600


def unavailable_key(locale: str, version: tuple | None = None, renew: bool = False, no_grant: bool = False) -> tuple:
    """The page cache's key of a neutral page (the forged link's gate looks up the one for no creditor)."""
    return ("unavailable", locale, version, renew, no_grant)


def unavailable(creditor: Creditor | None = None, *, renew_invoice_id: int | None = None, offer: bool = False,
                no_grant: bool = False):
    """The one neutral answer for forged, expired, revoked, unknown and closed links. Where the link
    was genuine (the creditor is known), in the creditor's brand with its contact details and, given
    the bill (`renew_invoice_id`), "send me a new link": the bill is noted in the session (never in the
    page, so the page stays the creditor's one cached page and the form carries no token), and the
    page is sent with `Referrer-Policy: same-origin`, so that its form's POST carries our origin.
    `offer`: "send me a new link" even where no bill is known (a bill address nobody issued), so that
    the form and its answer are the same whether the bill exists or not. `no_grant`: a bill's address
    opened in a browser without a grant for it (the page says why the bill does not open here)."""
    if creditor is not None:
        g.creditor_locale = creditor.default_locale
    version = (creditor.id, creditor.updated_at) if creditor is not None else None
    renew = (creditor is not None and renew_invoice_id is not None) or offer
    if renew:
        session[RENEW_KEY] = {"i": renew_invoice_id if creditor is not None else None, "t": int(time.time())}
        ensure_csrf_secret()
    html = cached_page(
        unavailable_key(select_locale(), version, renew, no_grant),
        lambda: render_template("portal/unavailable.html", creditor=creditor, renew=renew, no_grant=no_grant),
    )
    return (html, 404, {"Referrer-Policy": "same-origin"}) if renew else (html, 404)


def renewal_invoice_id() -> int | None:
    """The bill the neutral page offered a new link for in this browser, if the offer is recent (used once)."""
    entry = session.pop(RENEW_KEY, None)
    if not isinstance(entry, dict) or not isinstance(entry.get("i"), int) or not isinstance(entry.get("t"), int):
        return None
    return entry["i"] if time.time() - entry["t"] <= RENEW_SECONDS else None


def unavailable_within(access: BillAccess):
    """The neutral page for something of a bill this browser may see that is not there (another bill's
    receipt or payment): in the creditor's brand, with its contact details."""
    return unavailable(db.session.get(Creditor, access.creditor_id))


def no_grant(public_id: str):
    """A bill's address opened without a grant for it (a bookmark, another device, a grant that aged):
    the creditor's neutral page with its contact details and "send me a new link", whatever the bill's
    state; an address of no bill gets the same form and the same answer to it, without a brand."""
    owner = bill_owner(public_id)
    if owner is None:
        return unavailable(offer=True, no_grant=True)
    return unavailable(owner[0], renew_invoice_id=owner[1], no_grant=True)


#: The WSGI environ's key under which `portal.bill_gate` leaves the access read it made for a request
#: it passes on to the view (public id, grant source, BillAccess): the view does not read it again.
ACCESS_READ_KEY = "portal.bill_access"


def granted(public_id: str) -> tuple[BillAccess | None, ResponseReturnValue | None]:
    """Access to the bill if this browser holds a live grant for it; else the answer to send.

    A live grant is young enough, its link has not expired, and no link of the bill was revoked
    since it was given (compared with what the one access read gives: no query of its own)."""
    app_ctx = _cv_app.get()  # the contexts read once, not through a proxy per use
    grant = grants.find(_cv_request.get().session, public_id, int(time.time()),
                        app_ctx.app.config["GRANT_MAX_AGE_HOURS"])
    if grant is None:
        return None, no_grant(public_id)
    source = grants.source_of(grant)
    stashed = _cv_request.get().request.environ.get(ACCESS_READ_KEY)
    if stashed is not None and stashed[0] == public_id and stashed[1] == source:
        access = stashed[2]  # read by `portal.bill_gate` for this very request, which found no cached page
    else:
        access = bill_access(public_id, source)
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
