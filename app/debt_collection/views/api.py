"""The partner API (`/api/partner/v1`): a collection partner lists the cases handed to it, fetches
a case file and the invoice's PDF, acknowledges a case, and reports what happens (a payment, the
case closed paid or uncollectable, a recall confirmed). A payment reported here settles the bill
through the payments services, like any other payment.

Bearer key per partner (`flask collection partners api-key`). Every lookup goes through
`case_or_404`, limited to the calling partner's cases: another partner's case is as unknown as one
that does not exist. JSON errors in the shape of the creditor API; nothing is cached.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from flask import Blueprint, Response, current_app, g, request
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt
from sqlalchemy import select

from app.apikit.errors import ApiError, error_response, register_error_handlers
from app.apikit.reading import bearer_key, parse_body, read_json
from app.core.dates import utc_iso
from app.debt_collection.models import Case, CaseStatus, Partner
from app.debt_collection.partners import partner_for_api_key
from app.debt_collection.services import (
    EVENT_KINDS,
    MAX_INSTALMENTS,
    MAX_MESSAGE,
    RETURN_REASONS,
    PartnerEvent,
    acknowledge,
    apply_event,
    outstanding,
)
from app.debt_collection.views.openapi import openapi_document, remember_url_prefix
from app.debt_collection.views.pdf import case_pdf_response, pdf_limit, recalled
from app.errors import InvalidData
from app.extensions import db, limiter

bp = Blueprint("partner_api", __name__)
bp.record_once(remember_url_prefix)
register_error_handlers(bp)
PAGE_MAX = 100
PUBLIC_ENDPOINTS = frozenset({"partner_api.openapi"})


def _limit() -> str:
    return current_app.config["PARTNER_API_RATE_LIMIT"]


@bp.before_request
def _authenticate():
    g.no_store = True
    if request.endpoint in PUBLIC_ENDPOINTS:
        return
    partner = partner_for_api_key(bearer_key() or "")
    if partner is None:
        raise ApiError(401, "unauthorized", "Send your partner API key in the header 'Authorization: Bearer <key>'.",
                       headers={"WWW-Authenticate": "Bearer"})
    g.partner = partner


def current_partner() -> Partner:
    return g.partner


def case_or_404(case_id: str, *, for_update: bool = False, even_recalled: bool = False) -> Case:
    """The calling partner's case. Once the creditor recalls it (requested or confirmed), the case is
    no longer the partner's: 404, unless `even_recalled` (its events, to confirm the recall; a cursor)."""
    query = select(Case).where(Case.public_id == case_id, Case.partner_id == current_partner().id)
    if for_update:
        query = query.with_for_update()
    case = db.session.scalar(query) if case_id and len(case_id) <= 40 and "\x00" not in case_id else None
    if case is None or (recalled(case) and not even_recalled):
        raise ApiError(404, "not_found", "There is no case with this id.")
    return case


def case_json(case: Case) -> dict:
    """The case as the partner sees it; a recalled case says only that it is (nothing of the bill)."""
    if recalled(case):
        assert case.recalled_at is not None  # a recall sets it
        return {"case_id": case.public_id, "status": case.status, "recalled_at": utc_iso(case.recalled_at)}
    invoice = case.invoice
    return {
        "case_id": case.public_id, "status": case.status, "partner_reference": case.partner_reference,
        "creditor": invoice.creditor.slug, "invoice_number": invoice.number, "currency": case.currency,
        "handed_off": {"principal": case.principal, "fees": case.fees, "interest": case.interest,
                       "total": case.total},
        "outstanding": outstanding(invoice),
        "handed_off_at": utc_iso(case.handed_off_at),
        "acknowledged_at": utc_iso(case.acknowledged_at) if case.acknowledged_at else None,
    }


@bp.get("/cases")
@limiter.limit(_limit)
def list_cases():
    """The partner's cases, oldest first: `status=new` (the default: not acknowledged yet), `open`
    or `all`; `after=<case id>` for the next page."""
    status = request.args.get("status", "new")
    query = select(Case).where(Case.partner_id == current_partner().id)
    if status == "new":
        query = query.where(Case.status == CaseStatus.SENT)
    elif status == "open":
        query = query.where(Case.status.in_(CaseStatus.OPEN))
    elif status != "all":
        raise ApiError(400, "bad_status", "status is one of new, open, all.")
    after = request.args.get("after")
    if after:
        query = query.where(Case.id > case_or_404(after, even_recalled=True).id)
    limit = request.args.get("limit", "50")
    size = min(int(limit), PAGE_MAX) if limit.isascii() and limit.isdigit() and int(limit) > 0 else 50
    cases = list(db.session.scalars(query.order_by(Case.id).limit(size + 1)))
    body = {"cases": [case_json(c) for c in cases[:size]],
            "next": cases[size - 1].public_id if len(cases) > size else None}
    db.session.commit()  # keeps the key's last use
    return body


@bp.get("/cases/<case_id>")
@limiter.limit(_limit)
def get_case(case_id: str):
    """A case with its case file as it was sent."""
    case = case_or_404(case_id)
    body = {**case_json(case), "case_file": case.case_file}
    db.session.commit()
    return body


def _no_control_characters(value: str) -> str:
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError("control characters are not allowed")
    return value


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("NUL characters are not allowed")
    return value


Line = Annotated[str, AfterValidator(_no_control_characters)]
Text = Annotated[str, AfterValidator(_no_nul)]


class AckIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    reference: Line | None = Field(None, max_length=64, description="Your own reference of the case")


@bp.post("/cases/<case_id>/ack")
@limiter.limit(_limit)
def ack(case_id: str):
    """You have the case: it is yours now (the same call again changes nothing)."""
    case = case_or_404(case_id, for_update=True)
    data = parse_body(AckIn, read_json(optional=True))
    acknowledge(case, reference=data.reference)
    body = case_json(case)
    db.session.commit()
    return body


class AddressIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    line1: Line | None = Field(None, max_length=200)
    line2: Line | None = Field(None, max_length=200)
    postcode: Line | None = Field(None, max_length=16)
    city: Line | None = Field(None, max_length=100)
    country: Line | None = Field(None, max_length=2, description="ISO 3166 alpha-2")


class ContactIn(BaseModel):
    """New contact details of the debtor (contact_updated): at least one of them."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    email: Line | None = Field(None, max_length=254)
    phone: Line | None = Field(None, max_length=32, description="International form (E.164): +4791234567")
    address: AddressIn | None = Field(None, description="A postal address: line1, postcode, city and country")


class InstalmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    due_date: date
    amount: StrictInt = Field(gt=0, lt=10**13, description="Minor units")


class EventIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    id: Line = Field(min_length=1, max_length=100, description="Your id of the event: the same id is applied once")
    type: str = Field(description=f"One of {', '.join(EVENT_KINDS)}")
    amount: StrictInt | None = Field(
        None, gt=0, description="Minor units, at most what the case owes (`outstanding`); required for "
                                "payment_received. With recall_acknowledged or case_returned: money collected "
                                "before the case ended")
    currency: Line | None = Field(None, min_length=3, max_length=3, description="The invoice's currency")
    occurred_on: date | None = Field(None, description="The day the payment was received (default: today)")
    note: Text | None = Field(None, max_length=500)
    reason: Line | None = Field(None, max_length=40, description=f"case_returned: one of {', '.join(RETURN_REASONS)}")
    costs: StrictInt | None = Field(None, gt=0, lt=10**13, description="costs_added: the costs you added, minor units")
    claim: StrictInt | None = Field(
        None, ge=0, lt=10**13, description="What the debtor owes you now, your costs and interest included (minor "
                                           "units): required with costs_added, optional with any event while you "
                                           "handle the case; shown to the debtor on the bill page")
    instalments: list[InstalmentIn] | None = Field(
        None, min_length=1, max_length=MAX_INSTALMENTS, description="plan_agreed: the schedule, oldest first")
    contact: ContactIn | None = Field(None, description="contact_updated: the debtor's new contact details")
    message: Text | None = Field(None, max_length=MAX_MESSAGE, description="message: your words for the creditor")


@bp.post("/cases/<case_id>/events")
@limiter.limit(_limit)
def post_event(case_id: str):
    """Report what happened: payment_received (settles the bill), closed_paid, closed_uncollectable,
    recall_acknowledged, case_returned (the case back to the creditor, with a reason), costs_added,
    plan_agreed, contact_updated, message. 201 when new, 200 when this event id was applied before. A case the creditor
    recalled takes only recall_acknowledged; a closed one, nothing. A 422 says what the case still owes
    (`outstanding`), unless it was recalled."""
    case = case_or_404(case_id, even_recalled=True)
    data = parse_body(EventIn, read_json())
    try:
        recorded, created = apply_event(case, PartnerEvent(
            event_id=data.id, kind=data.type, amount=data.amount, currency=data.currency,
            occurred_on=data.occurred_on, note=data.note, reason=data.reason, costs=data.costs, claim=data.claim,
            instalments=tuple((i.due_date, i.amount) for i in data.instalments) if data.instalments else None,
            contact=data.contact.model_dump(exclude_none=True) if data.contact else None, message=data.message))
    except InvalidData as exc:
        if recalled(case):
            return error_response(422, "validation_failed", "Some fields are invalid; see errors.",
                                  errors=exc.errors)
        return error_response(422, "validation_failed", "Some fields are invalid; see errors.", errors=exc.errors,
                              outstanding=outstanding(case.invoice))
    body = {"event": {"id": recorded.event_id, "type": recorded.kind, "amount": recorded.amount,
                      "currency": recorded.currency, "occurred_on": recorded.occurred_on},
            "case": case_json(case)}
    db.session.commit()
    return body, 201 if created else 200


@bp.get("/openapi.json")
def openapi():
    """The OpenAPI 3.1 description of this API (no key needed)."""
    return openapi_document()


@bp.get("/cases/<case_id>/invoice.pdf")
@limiter.limit(_limit)
@limiter.limit(pdf_limit)
def invoice_pdf(case_id: str) -> Response:
    """The invoice as the customer has it, as a PDF (404 once the case is recalled)."""
    case = case_or_404(case_id)
    response = case_pdf_response(case)
    db.session.commit()
    return response
