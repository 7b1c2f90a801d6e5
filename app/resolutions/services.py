"""What disputes, promises to pay, deferrals and instalment plans share: reading them, what the
bill page offers (`self_service`), and creating one record per submission with its e-mails.
Each kind has its own module (disputes, promises, deferrals, plans; the daily run in `daily`).

Plain functions: they add and flush, and the caller (a view, a CLI command) commits once. Each
one that changes something records an invoice event (the bill page is cached by the newest
one) and writes its e-mails to the outbox in the same transaction. Limits come from the
creditor's self-service rules (`flask resolutions rules`); amounts and dates are computed here,
never taken from a form beyond the customer's choice.

A double submit (the same form's `submission_key` twice) returns the first record: a unique key
on (invoice, submission_key) settles a race between two requests.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from app.billing.models import Invoice, InvoiceStatus
from app.billing.services import DueState
from app.errors import InvalidData
from app.extensions import db
from app.outbox.services import enqueue
from app.resolutions.instalments import InstalmentState, plan_offers, plan_progress
from app.resolutions.models import Kind, Resolution, Status
from app.resolutions.offer_rules import offered, plans_fit
from app.resolutions.pause import Dunning, dunning

ACTOR = "customer"
REFERENCE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read out on the phone
MESSAGE_MAX = 4000


def new_reference() -> str:
    return "R-" + "".join(secrets.choice(REFERENCE_ALPHABET) for _i in range(8))


def resolutions_for(invoice_id: int) -> list[Resolution]:
    """Every resolution of the invoice, oldest first, with a plan's instalments: two statements."""
    return list(db.session.scalars(
        select(Resolution).options(selectinload(Resolution.instalments))
        .where(Resolution.invoice_id == invoice_id).order_by(Resolution.id)
    ))


def live_resolutions(invoice_id: int) -> list[Resolution]:
    return [r for r in resolutions_for(invoice_id) if r.is_live]


def live_resolutions_of(invoice_ids: Collection[int]) -> dict[int, list[Resolution]]:
    """`live_resolutions` of many invoices at once (two statements), by invoice id; every id is a key."""
    found: dict[int, list[Resolution]] = {invoice_id: [] for invoice_id in invoice_ids}
    if not found:
        return found
    for resolution in db.session.scalars(
        select(Resolution).options(selectinload(Resolution.instalments))
        .where(Resolution.invoice_id.in_(list(found))).order_by(Resolution.id)
    ):
        if resolution.is_live:
            found[resolution.invoice_id].append(resolution)
    return found


def find_resolution(invoice_id: int, reference: str) -> Resolution | None:
    if not reference or len(reference) > 16:
        return None
    return db.session.scalar(
        select(Resolution).where(Resolution.invoice_id == invoice_id, Resolution.reference == reference)
    )


def dunning_for(invoice: Invoice, today: date) -> Dunning:
    """`pause.dunning` with the invoice's live resolutions read from the database."""
    return dunning(invoice, today, live_resolutions(invoice.id))


@dataclass
class SelfService:
    """The invoice's resolutions as the bill page shows them, and what the customer may do next."""

    resolutions: list[Resolution]
    dunning: Dunning
    payable_now: int | None  # what the pay buttons take: the balance, an instalment, the undisputed part
    pay_reason: str | None = None  # None (the balance), "instalment" or "undisputed"
    held: int = 0  # what an open dispute holds back: not to be paid until it is answered
    # Whether the page suggests paying what is payable now: a creditor that holds the undisputed
    # part (`dispute_partial_payable` off) still takes it, but the page does not push for it.
    pay_suggested: bool = True
    open_dispute: Resolution | None = None
    promise: Resolution | None = None
    deferral: Resolution | None = None  # an open request or a deferral granted that still runs
    plan: Resolution | None = None  # a plan running
    plan_request: Resolution | None = None  # a plan asked for beyond the rules, waiting for an agent
    progress: list[InstalmentState] = field(default_factory=list)
    can: dict[str, bool] = field(default_factory=dict)  # dispute, promise, deferral, plan, plan_request

    @property
    def disputes(self) -> list[Resolution]:
        return [r for r in self.resolutions if r.kind == Kind.DISPUTE]

    @property
    def next_instalment(self) -> InstalmentState | None:
        return next((s for s in self.progress if s.state != "paid"), None)


def is_payable(invoice: Invoice, *, in_collection: bool = False) -> bool:
    """Something is owed and the bill page takes it. A bill in collection is the partner's to
    collect, unless the creditor keeps taking payments then (`in_collection`)."""
    if invoice.status == InvoiceStatus.IN_COLLECTION:
        return in_collection and invoice.balance > 0
    return not invoice.is_closed and invoice.balance > 0 and invoice.status != InvoiceStatus.PAID


def disputable_when_paid(invoice: Invoice) -> bool:
    """A paid bill can still be disputed while something on it is left to credit: upheld, its credit
    note makes what was paid beyond the new total owed back (`billing.corrections`)."""
    return invoice.status == InvoiceStatus.PAID and invoice.total > 0 and invoice.amount_paid > 0


def self_service(invoice: Invoice, today: date, resolutions: list[Resolution] | None = None, *,
                 collection_payable: bool = False) -> SelfService:
    """The bill page's self-service state. `collection_payable`: the bill is in collection and its
    creditor keeps taking payments (then only paying is offered, nothing else)."""
    resolutions = resolutions_for(invoice.id) if resolutions is None else resolutions
    live = [r for r in resolutions if r.is_live]
    creditor = invoice.creditor
    found = SelfService(resolutions=resolutions, dunning=dunning(invoice, today, live), payable_now=None)
    for r in live:
        if r.kind == Kind.DISPUTE:
            found.open_dispute = r
        elif r.kind == Kind.PROMISE:
            found.promise = r
        elif r.kind == Kind.PLAN and r.status == Status.OPEN:
            found.plan_request = r
        elif r.kind == Kind.PLAN:
            found.plan = r
        elif r.kind == Kind.DEFERRAL and (r.status == Status.OPEN or today <= r.new_date):
            found.deferral = r
    if invoice.status == InvoiceStatus.IN_COLLECTION:
        found.payable_now = invoice.balance if is_payable(invoice, in_collection=collection_payable) else None
        found.can = dict.fromkeys(("dispute", "promise", "deferral", "plan", "plan_request"), False)
        return found
    payable = is_payable(invoice)
    if payable:
        found.payable_now = invoice.balance
        if found.plan is not None:
            found.progress = plan_progress(found.plan, invoice, today)
            upcoming = found.next_instalment
            if upcoming is not None and upcoming.left < invoice.balance:
                found.payable_now, found.pay_reason = upcoming.left, "instalment"
        elif found.open_dispute is not None:
            # The part not disputed can always be paid (a customer who wants to settle what they agree
            # with is never turned away); the creditor's setting only decides whether it is suggested.
            found.held = min(found.open_dispute.amount or 0, invoice.balance)
            undisputed = invoice.balance - found.held
            found.payable_now, found.pay_reason = (undisputed, "undisputed") if undisputed > 0 else (None, None)
            found.pay_suggested = creditor.dispute_partial_payable
    busy = found.open_dispute is not None or found.plan is not None or found.plan_request is not None
    settled_otherwise = found.promise is not None or found.deferral is not None
    can = {
        "dispute": (payable or disputable_when_paid(invoice)) and found.open_dispute is None,
        "promise": payable and not busy and found.promise is None and found.deferral is None
        and creditor.promise_max_days > 0,
        "deferral": payable and not busy and found.promise is None and found.deferral is None
        and creditor.deferral_max_days > 0,
        "plan": payable and not busy and not settled_otherwise and bool(plan_offers(invoice, today)),
        "plan_request": payable and not busy and not settled_otherwise and plans_fit(invoice),
    }
    found.can = {what: allowed and offered(invoice, what) for what, allowed in can.items()}
    return found


def shown_state(state: DueState, found: SelfService, today: date) -> DueState:
    """What the bill page's status line says once the customer has arranged something: while a plan
    runs, the plan (on track, or the instalment that is late) instead of the bill's own due date;
    while a promise runs, the promised date instead of "due in 10 days"."""
    if state.kind not in ("due", "due_today", "overdue"):
        return state
    if found.plan is not None and found.progress:
        late = next((s for s in found.progress if s.state == "overdue"), None)
        if late is not None:
            return DueState("plan_late", (today - late.instalment.due_date).days, late.instalment.due_date, late.left)
        upcoming = found.next_instalment
        if upcoming is not None:
            return DueState("plan", (upcoming.instalment.due_date - today).days, upcoming.instalment.due_date,
                            upcoming.left)
    if found.promise is not None and found.promise.new_date is not None and found.promise.new_date >= today:
        return DueState("promised", (found.promise.new_date - today).days, found.promise.new_date)
    return state


def require(invoice: Invoice, what: str, today: date) -> SelfService:
    """The self-service state, or InvalidData when `what` is not open to this invoice now."""
    found = self_service(invoice, today)
    if not found.can.get(what):
        if invoice.balance <= 0 or invoice.status == InvoiceStatus.PAID:
            raise InvalidData({"invoice": "paid"})
        raise InvalidData({"invoice": "unavailable"})
    return found


def submitted_before(invoice: Invoice, submission_key: str) -> Resolution | None:
    return db.session.scalar(
        select(Resolution).where(Resolution.invoice_id == invoice.id, Resolution.submission_key == submission_key)
    )


def create_once(invoice: Invoice, submission_key: str, build: Callable[[], Resolution],
            after: Callable[[Resolution], None]) -> tuple[Resolution, bool]:
    """Add the resolution `build()` makes, unless this submission made one already; then `after()`."""
    if not submission_key or len(submission_key) > 64:
        raise InvalidData({"submission": "missing"})
    existing = submitted_before(invoice, submission_key)
    if existing is not None:
        return existing, False
    resolution = build()
    resolution.reference = new_reference()
    resolution.submission_key = submission_key
    resolution.invoice = invoice
    resolution.creditor_id = invoice.creditor_id
    try:
        with db.session.begin_nested():
            db.session.add(resolution)
            db.session.flush()
    except IntegrityError:  # the same submission, in a request that committed in between
        existing = submitted_before(invoice, submission_key)
        if existing is None:
            raise
        return existing, False
    after(resolution)
    db.session.flush()
    return resolution, True


def email(resolution: Resolution, kind: str, recipient: str | None, *, key_suffix: str = "",
           locale: str | None = None, livemode: bool = True, **payload) -> None:
    if not recipient:
        return
    enqueue(
        "email", f"resolution.{kind}", recipient, {"resolution_id": resolution.id, **payload},
        idempotency_key=f"resolution.{kind}:{resolution.reference}{key_suffix}",
        creditor_id=resolution.creditor_id, locale=locale or resolution.locale,
        livemode=livemode,
    )


def to_customer(resolution: Resolution, kind: str, *, key_suffix: str = "", **payload) -> None:
    # a test bill's message to its customer is kept, not sent; the creditor's own desk gets its copy
    email(resolution, kind, resolution.invoice.customer.email, key_suffix=key_suffix,
          livemode=resolution.invoice.livemode, **payload)


def to_creditor(resolution: Resolution, kind: str) -> None:
    creditor = resolution.invoice.creditor
    email(resolution, kind, creditor.support_email, locale=creditor.default_locale)
