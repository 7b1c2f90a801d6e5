"""Call-backs: the customer asked to be called on a day, in a window of the creditor's hours. Agents
work them from one list ordered by when the customer wants the call, and log each call's outcome
(reached, no answer, wrong number, with a note). A logged call is an event of the bill
("callback_logged"), so it is on the customer's timeline; the view records it in the audit log too."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from flask_babel import gettext as _
from sqlalchemy import case, select
from sqlalchemy.orm import selectinload

from app.backoffice.services import Scope
from app.billing.models import Invoice, InvoiceEvent
from app.billing.services import record_event
from app.errors import IllegalTransition, InvalidData
from app.extensions import db
from app.support.models import CALLBACK_WINDOWS, RequestStatus, SupportRequest

CALL_OUTCOMES = ("reached", "no_answer", "wrong_number")
CALL_NOTE_MAX = 500
EVENT = "callback_logged"
CALL_LIST_LIMIT = 200


def outcome_label(outcome: str | None) -> str:
    return {"reached": _("Reached"), "no_answer": _("No answer"), "wrong_number": _("Wrong number")}.get(
        outcome or "", outcome or "")


def log_call(request: SupportRequest, outcome: str, note: str | None, *, actor: str) -> InvoiceEvent:
    """Log a call made to the customer for their call-back request. InvalidData for an unknown outcome
    or a note that is too long; IllegalTransition for a request that asked for no call or is closed."""
    if request.contact_method != "phone":
        raise IllegalTransition(f"{request.reference} asked for no call")
    if request.status == RequestStatus.CLOSED:
        raise IllegalTransition(f"{request.reference} is closed")
    if outcome not in CALL_OUTCOMES:
        raise InvalidData({"outcome": "choose"})
    note = (note or "").strip()
    if len(note) > CALL_NOTE_MAX:
        raise InvalidData({"note": "too_long"})
    event = record_event(request.invoice, EVENT, actor, reference=request.reference, outcome=outcome,
                         note=note or None)
    db.session.flush()
    return event


def calls_of(request: SupportRequest) -> list[InvoiceEvent]:
    """The calls logged for the request, oldest first."""
    events = db.session.scalars(select(InvoiceEvent).where(InvoiceEvent.invoice_id == request.invoice_id,
                                                           InvoiceEvent.kind == EVENT).order_by(InvoiceEvent.id))
    return [event for event in events if (event.data or {}).get("reference") == request.reference]


@dataclass(frozen=True)
class Call:
    request: SupportRequest
    day: date | None
    window: str | None
    last: InvoiceEvent | None  # the last call logged, if any
    tries: int


def call_list(scope: Scope, *, limit: int = CALL_LIST_LIMIT) -> list[Call]:
    """Every call-back still to make at the agent's creditors (asked by phone, not closed), by the day
    and window the customer chose, the earliest first."""
    window_order = case({window: position for position, window in enumerate(CALLBACK_WINDOWS)},
                        value=SupportRequest.callback_window, else_=len(CALLBACK_WINDOWS))
    requests = list(db.session.scalars(
        scope.select(SupportRequest).options(selectinload(SupportRequest.invoice).selectinload(Invoice.customer))
        .where(SupportRequest.contact_method == "phone", SupportRequest.status != RequestStatus.CLOSED)
        .order_by(SupportRequest.callback_date.is_(None), SupportRequest.callback_date, window_order,
                  SupportRequest.created_at, SupportRequest.id)
        .limit(limit)))
    logged: dict[str, list[InvoiceEvent]] = {}
    if requests:
        for event in db.session.scalars(select(InvoiceEvent).where(
                InvoiceEvent.invoice_id.in_({r.invoice_id for r in requests}), InvoiceEvent.kind == EVENT)
                .order_by(InvoiceEvent.id)):
            logged.setdefault((event.data or {}).get("reference", ""), []).append(event)
    return [Call(r, r.callback_date, r.callback_window, logged[r.reference][-1] if logged.get(r.reference) else None,
                 len(logged.get(r.reference, []))) for r in requests]
