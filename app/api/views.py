"""Creditor API v1: invoices in, links out, status. Bearer key per creditor; JSON only.

Each view commits once on success; every error answer rolls back (app/api/errors.py).
Every lookup is scoped to the calling creditor through app/api/access.py.
"""

from __future__ import annotations

from flask import Blueprint, current_app, g, request, url_for

from app.api.access import authenticate, current_creditor, invoice_or_404
from app.api.errors import register_error_handlers
from app.api.openapi import openapi_document, remember_url_prefix
from app.api.schemas import CancelIn, LinkIn, ReminderIn, parse_body, read_json
from app.api.serializers import invoice_json, link_json, reminder_json
from app.billing import services as billing
from app.core.dates import local_today
from app.extensions import db
from app.links import services as links
from app.models import utcnow
from app.resolutions.services import dunning_for

bp = Blueprint("api", __name__)
bp.record_once(remember_url_prefix)
register_error_handlers(bp)

ACTOR = "api"
PUBLIC_ENDPOINTS = frozenset({"api.openapi"})


@bp.before_request
def _authenticate():
    """No API answer is cached; every route but the OpenAPI document needs a key."""
    g.no_store = True
    if request.endpoint not in PUBLIC_ENDPOINTS:
        authenticate()


def _invoice_body(invoice) -> dict:
    today = local_today(invoice.creditor.country, utcnow())
    return invoice_json(invoice, billing.timeline(invoice), dunning_for(invoice, today))


@bp.post("/invoices")
def create_invoice():
    """Create an invoice with its customer and lines; the same request again returns it unchanged."""
    invoice, created = billing.import_invoice(current_creditor(), read_json(), actor=ACTOR)
    body = _invoice_body(invoice)
    db.session.commit()
    if not created:
        return body, 200
    return body, 201, {"Location": url_for(".get_invoice", number=invoice.number)}


@bp.get("/invoices/<path:number>")
def get_invoice(number: str):
    """An invoice with its customer, lines, amounts and timeline."""
    body = _invoice_body(invoice_or_404(number))
    db.session.commit()  # keeps the key's last use
    return body


@bp.post("/invoices/<path:number>/links")
def issue_link(number: str):
    """Issue a signed link to the invoice's bill page."""
    invoice = invoice_or_404(number)
    data = parse_body(LinkIn, read_json())
    ttl_days = data.ttl_days if data.ttl_days is not None else current_app.config["LINK_DEFAULT_TTL_DAYS"]
    issued = links.issue_link(
        invoice, channel=data.channel, ttl_days=ttl_days, signer=links.get_signer(),
        base_url=current_app.config["PORTAL_BASE_URL"], actor=ACTOR,
    )
    body = link_json(issued)
    db.session.commit()
    return body, 201


@bp.post("/invoices/<path:number>/links/revoke")
def revoke_links(number: str):
    """Revoke every link of the invoice that is still live."""
    revoked = links.revoke_links(invoice_or_404(number), actor=ACTOR)
    db.session.commit()
    return {"revoked": revoked}


@bp.post("/invoices/<path:number>/reminders")
def record_reminder(number: str):
    """Record a reminder your dunning system sent (the final one starts the count to debt collection)."""
    invoice = invoice_or_404(number)
    data = parse_body(ReminderIn, read_json())
    reminder, created = billing.record_reminder(invoice, channel=data.channel, sent_at=data.sent_at, final=data.final,
                                                actor=ACTOR, external_ref=data.id)
    body = reminder_json(reminder)
    db.session.commit()
    return body, 201 if created else 200


@bp.post("/invoices/<path:number>/cancel")
def cancel_invoice(number: str):
    """Cancel an invoice that has no payments."""
    invoice = invoice_or_404(number, for_update=True)
    data = parse_body(CancelIn, read_json(optional=True))
    billing.cancel_invoice(invoice, actor=ACTOR, reason=data.reason)
    body = _invoice_body(invoice)
    db.session.commit()
    return body


@bp.get("/openapi.json")
def openapi():
    """The OpenAPI 3.1 description of this API (no key needed)."""
    return openapi_document()
