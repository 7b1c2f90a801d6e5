"""The invoice's PDF for a collection partner: through the partner API, or the signed, expiring
address in the case file (which needs no key, so that the partner's staff can open it from the
case). In the customer's language, as the customer has it."""

from __future__ import annotations

from flask import Blueprint, Response, abort, current_app, g
from flask_babel import force_locale
from sqlalchemy import select

from app.billing.pdf import invoice_pdf_response
from app.core.dates import local_today
from app.debt_collection.case_file import case_of_pdf_token
from app.debt_collection.models import Case, CaseStatus
from app.dunning.outlook import default_notice_date
from app.extensions import db, limiter
from app.i18n import normalise_locale
from app.models import utcnow

bp = Blueprint("debt_collection", __name__)


def pdf_limit() -> str:
    return current_app.config["PDF_RATE_LIMIT"]


def recalled(case: Case) -> bool:
    """The creditor took the case back (asked or confirmed), or the partner gave it back: the partner's
    access to it has ended."""
    return case.status in (CaseStatus.RECALL_REQUESTED, CaseStatus.RECALLED, CaseStatus.RETURNED)


def case_pdf_response(case: Case) -> Response:
    """The bill page's PDF of the case's invoice, in the customer's language (the same cached PDF)."""
    invoice = case.invoice
    creditor = invoice.creditor
    with force_locale(normalise_locale(invoice.customer.preferred_locale) or creditor.default_locale):
        return invoice_pdf_response(invoice, local_today(creditor.country, utcnow()),
                                    default_notice=default_notice_date(invoice))


@bp.get("/collection/cases/<token>/invoice.pdf")
@limiter.limit(pdf_limit)
def case_pdf(token: str):
    """The invoice's PDF by the signed address of a case file (404 once it expired, for a forgery, and
    once the case is recalled)."""
    g.no_store = True
    case_id = case_of_pdf_token(token)
    case = db.session.scalar(select(Case).where(Case.public_id == case_id)) if case_id else None
    if case is None or recalled(case):
        abort(404)
    return case_pdf_response(case)
