"""The customer's side of content blocks: the click redirect (only ever to the block's own target), the
impression our own page asks for, "I am interested", "no offers, please", and the blocks' images, all
from our own origin."""

from __future__ import annotations

import base64

from flask import Blueprint, Response, abort, current_app, g, redirect, render_template, request, url_for
from sqlalchemy import select
from sqlalchemy.orm import undefer

from app.access.guard import bill_required, load_bill_or_404, unavailable
from app.access.services import BillAccess
from app.billing.models import Invoice
from app.content import services
from app.content.models import Action, Block
from app.core.dates import local_today
from app.extensions import db, limiter
from app.models import utcnow

bp = Blueprint("content", __name__)

#: A transparent GIF of one pixel: the impression's answer.
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")


def _keys() -> list[str]:
    config = current_app.config
    return [config["SECRET_KEY"], *config.get("SECRET_KEY_FALLBACKS", [])]


def _ref_or_none(ref: str) -> services.Ref | None:
    return services.read_ref(_keys(), ref) if len(ref) <= 200 else None


def _neutral():
    """The same answer for a reference that is forged, stale, or names no link: the neutral page (404)."""
    return unavailable(None)


@bp.get("/c/<ref>")
@limiter.limit(lambda: current_app.config["LINK_RATE_LIMIT"])
def click(ref: str):
    """A click on a block's button: counted, then a 303 to the block's own target; nothing else. The URL
    carries no target at all, so no reference, forged or genuine, can send the browser anywhere else."""
    found = _ref_or_none(ref)
    target = services.record_click(found, now=utcnow()) if found is not None else None
    if target is None:
        db.session.rollback()
        return _neutral()
    db.session.commit()
    response = redirect(target, code=303)
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@bp.get("/c/<ref>/seen.gif")
def seen(ref: str):
    """The impression: the page asks for this image once it shows the block (a cached page too), so
    counting costs the page nothing. Answered with the same pixel whatever the reference."""
    found = _ref_or_none(ref)
    if found is not None:
        invoice = db.session.get(Invoice, found.invoice_id)
        if invoice is not None:
            now = utcnow()
            if services.record_seen(found, now=now, today=local_today(invoice.creditor.country, now)):
                db.session.commit()
    response = Response(PIXEL, mimetype="image/gif")
    response.headers["Cache-Control"] = "no-store"
    return response


def _interest_target(ref: str) -> tuple[services.Ref, Block, Invoice]:
    found = _ref_or_none(ref)
    block = db.session.get(Block, found.block_id) if found else None
    invoice = db.session.get(Invoice, found.invoice_id) if found else None
    if found is None or block is None or invoice is None or block.action != Action.INTEREST \
            or block.creditor_id != invoice.creditor_id:
        abort(404)
    g.customer_locale = invoice.customer.preferred_locale
    g.creditor_locale = invoice.creditor.default_locale
    return found, block, invoice


@bp.get("/c/<ref>/interest")
def interest_form(ref: str):
    """"I am interested", from an e-mail: a page with the button (a link in an e-mail must not act)."""
    _found, _block, invoice = _interest_target(ref)
    return render_template("content/interest.html", creditor=invoice.creditor, invoice=invoice, ref=ref,
                           done=False)


@bp.post("/c/<ref>/interest")
@limiter.limit(lambda: current_app.config["LINK_RATE_LIMIT"])
def interest(ref: str):
    """"I am interested": the lead recorded and delivered to the creditor (`lead.created`)."""
    found, _block, _invoice = _interest_target(ref)
    lead = services.record_lead(found, now=utcnow())
    if lead is None:
        db.session.rollback()
        return _neutral()
    db.session.commit()
    return redirect(url_for("content.interest_done", ref=ref), code=303)


@bp.get("/c/<ref>/interest/done")
def interest_done(ref: str):
    _found, _block, invoice = _interest_target(ref)
    return render_template("content/interest.html", creditor=invoice.creditor, invoice=invoice, ref=ref,
                           done=True)


@bp.post("/b/<public_id>/offers")
@bill_required
def offers(public_id: str, access: BillAccess):
    """"No offers, please" (or offers again), from the bill page: remembered for the customer."""
    invoice = load_bill_or_404(public_id)
    services.set_no_offers(invoice.customer, request.form.get("offers") == "off")
    db.session.commit()
    return redirect(url_for("portal.bill", public_id=public_id) + "#content-offers", code=303)


@bp.get("/c/img/<public_id>/<version>")
def image(public_id: str, version: str):
    """A block's image, from our own origin, cacheable for a year (the URL carries its version)."""
    block = db.session.scalar(select(Block).options(undefer(Block.image)).where(Block.public_id == public_id))
    if block is None or not block.image or block.image_version != version:
        abort(404)
    g.no_store = False
    response = Response(block.image, mimetype=block.image_mime)
    response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response
