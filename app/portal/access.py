"""Who may see a bill: the grant an opened link left in this browser, the step-up, and the one
neutral answer for everything else. Every customer blueprint guards its bill routes with
`bill_required`; none of them repeats the checks."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable

from flask import abort, current_app, g, redirect, render_template, session, url_for
from flask.typing import ResponseReturnValue

from app.billing.models import Invoice
from app.creditors.models import Creditor
from app.extensions import db
from app.i18n import select_locale
from app.portal import grants
from app.portal.page_cache import cached_page
from app.portal.services import BillAccess, bill_access, load_bill


def unavailable(creditor: Creditor | None = None):
    """The one neutral answer for forged, expired, revoked, unknown and closed links."""
    if creditor is not None:
        g.creditor_locale = creditor.default_locale
    version = (creditor.id, creditor.updated_at) if creditor is not None else None
    html = cached_page(
        ("unavailable", select_locale(), version),
        lambda: render_template("portal/unavailable.html", creditor=creditor),
    )
    return html, 404


def granted(public_id: str) -> tuple[BillAccess | None, ResponseReturnValue | None]:
    """Access to the bill if this browser holds a live grant for it; else the answer to send.

    A live grant is young enough, its link has not expired, and no link of the bill was revoked
    since it was given (compared with what the one access read gives: no query of its own)."""
    grant = grants.find(session, public_id, int(time.time()), current_app.config["GRANT_MAX_AGE_HOURS"])
    if grant is None:
        return None, unavailable()
    access = bill_access(public_id, grants.source_of(grant))
    if access is None:
        return None, unavailable()
    if access.is_closed or not grants.current(grant, access.link_revocations, access.source_revocations):
        return None, unavailable(db.session.get(Creditor, access.creditor_id))
    g.customer_locale = access.customer_locale
    g.creditor_locale = access.creditor_locale
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
