"""The agents' one inbox: everything that waits for a person, from wherever it came.

An item is a record of its own feature, which stays the truth of whether it is done:

- request: a customer's conversation (support), new while it waits for our answer, waiting
  while it is answered, resolved once closed;
- dispute, deferral, plan: a dispute, or a request for more time or for an instalment plan
  beyond the creditor's rules (resolutions), new until decided;
- bank: a bank credit the import could not match (payments.bank), new until matched or sent back;
- refund: a payment with money owed back (an overpayment, a credit note below what was paid),
  new until refunded;
- outbox: an e-mail, SMS or partner delivery that went dead, new until replayed;
- partner: what a collection partner reported that needs a person (a case given back, new contact
  details of the debtor, a message for the creditor), new until an agent marks it dealt with.

Agents add only their hand (`InboxMark`): who took the item, and "waiting on the customer" since
when (a message from the customer after that makes it new again). The list is one UNION query
over the sources, every part limited to the agent's creditors through `Scope`, so a page costs
a fixed handful of statements whatever the inbox holds.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Integer, String, and_, case, func, literal, null, or_, select, union_all

from app.backoffice.models import Agent, InboxMark
from app.backoffice.services import Scope
from app.backoffice.standing import Standing, answer_by, standing
from app.billing.models import Customer, Invoice
from app.core.dates import local_today
from app.creditors.models import Creditor
from app.debt_collection.models import Case, CaseEvent
from app.debt_collection.services import NEEDS_AGENT
from app.extensions import db
from app.models import utcnow
from app.outbox.models import OutboxMessage, OutboxStatus
from app.payments.bank.models import BankEntry, EntryStatus
from app.payments.models import Payment
from app.resolutions.models import Kind, Resolution, Status
from app.support.models import RequestStatus, SupportMessage, SupportRequest

KINDS = ("request", "dispute", "deferral", "plan", "bank", "refund", "outbox", "partner")
VIEWS = ("open", "new", "waiting", "resolved")  # open: new and waiting
ASSIGNEES = ("any", "me", "nobody")
PAGE_SIZE = 50
MODELS = {"request": SupportRequest, "dispute": Resolution, "deferral": Resolution, "plan": Resolution,
          "bank": BankEntry, "refund": Payment, "outbox": OutboxMessage, "partner": CaseEvent}


@dataclass(frozen=True)
class Filters:
    view: str = "open"
    kind: str | None = None
    assignee: str = "any"
    creditor_id: int | None = None
    q: str = ""
    page: int = 1

    @classmethod
    def from_args(cls, args: Any, scope: Scope) -> Filters:
        """The filters of a query string; anything unknown falls back to the default."""
        creditor = args.get("creditor", "")
        page = args.get("page", "")
        return cls(
            view=args.get("view") if args.get("view") in VIEWS else "open",
            kind=args.get("kind") if args.get("kind") in KINDS else None,
            assignee=args.get("assignee") if args.get("assignee") in ASSIGNEES else "any",
            creditor_id=int(creditor) if creditor.isdigit() and scope.allows(int(creditor)) else None,
            q=(args.get("q") or "").strip()[:100],
            page=min(int(page), 10_000) if page.isdigit() and int(page) > 0 else 1,
        )


@dataclass
class Item:
    kind: str
    record_id: int
    creditor_id: int
    invoice_id: int | None
    reference: str | None
    since: datetime
    status: str
    assignee_id: int | None
    record: Any = None
    invoice: Invoice | None = None
    assignee: Agent | None = None
    standing: Standing | None = None  # where its bill stands
    answer_by: datetime | None = None  # the service-level target, while it waits for us

    @property
    def age_days(self) -> int:
        return max((utcnow() - self.since).days, 0)

    @property
    def time_left(self) -> timedelta | None:
        """How long until the target (negative: past it), while the item waits for us."""
        return None if self.answer_by is None else self.answer_by - utcnow()


@dataclass
class Page:
    items: list[Item]
    counts: dict[str, int]  # per view
    kinds: dict[str, int]  # open items per kind
    more: bool
    filters: Filters = field(default_factory=Filters)


def _sources(scope: Scope) -> list:
    """One SELECT per kind of item, each with the same columns, each limited to the agent's creditors."""
    text, number = String(), Integer()
    last_customer_message = (
        select(func.max(SupportMessage.created_at))
        .where(SupportMessage.request_id == SupportRequest.id, SupportMessage.author == "customer")
        .scalar_subquery()
    )
    requests = scope.select(
        SupportRequest, literal("request", text).label("kind"), SupportRequest.id.label("record_id"),
        SupportRequest.creditor_id.label("creditor_id"), SupportRequest.invoice_id.label("invoice_id"),
        SupportRequest.reference.label("reference"),
        func.coalesce(last_customer_message, SupportRequest.created_at).label("since"),
        case((SupportRequest.status == RequestStatus.OPEN, "new"),
             (SupportRequest.status == RequestStatus.ANSWERED, "waiting"), else_="resolved").label("natural"),
    )
    decisions = scope.select(
        Resolution, Resolution.kind.label("kind"), Resolution.id.label("record_id"),
        Resolution.creditor_id.label("creditor_id"), Resolution.invoice_id.label("invoice_id"),
        Resolution.reference.label("reference"), Resolution.created_at.label("since"),
        case((Resolution.status == Status.OPEN, "new"), else_="resolved").label("natural"),
    ).where(or_(
        Resolution.kind == Kind.DISPUTE,
        and_(Resolution.kind == Kind.DEFERRAL, Resolution.reason.is_not(None)),  # asked of an agent
        and_(Resolution.kind == Kind.PLAN, or_(Resolution.status == Status.OPEN, Resolution.answered_by.is_not(None))),
    ))
    bank = scope.select(
        BankEntry, literal("bank", text).label("kind"), BankEntry.id.label("record_id"),
        BankEntry.creditor_id.label("creditor_id"), BankEntry.invoice_id.label("invoice_id"),
        BankEntry.bank_ref.label("reference"), BankEntry.created_at.label("since"),
        case((BankEntry.status.in_(EntryStatus.OPEN), "new"), else_="resolved").label("natural"),
    ).where(or_(BankEntry.status.in_(EntryStatus.OPEN), BankEntry.resolution.is_not(None)))
    refunds = scope.select(
        Payment, literal("refund", text).label("kind"), Payment.id.label("record_id"),
        Invoice.creditor_id.label("creditor_id"), Payment.invoice_id.label("invoice_id"),
        Payment.public_ref.label("reference"), Payment.received_at.label("since"),
        case((Payment.refund_due > 0, "new"), else_="resolved").label("natural"),
    ).where(or_(Payment.refund_due > 0, Payment.refunded > 0))
    dead = scope.select(
        OutboxMessage, literal("outbox", text).label("kind"), OutboxMessage.id.label("record_id"),
        OutboxMessage.creditor_id.label("creditor_id"), null().cast(number).label("invoice_id"),
        OutboxMessage.kind.label("reference"), OutboxMessage.created_at.label("since"),
        case((OutboxMessage.status == OutboxStatus.DEAD, "new"), else_="resolved").label("natural"),
    ).where(or_(OutboxMessage.status == OutboxStatus.DEAD, OutboxMessage.replayed_at.is_not(None)))
    partner = scope.select(
        Case, literal("partner", text).label("kind"), CaseEvent.id.label("record_id"),
        Case.creditor_id.label("creditor_id"), Case.invoice_id.label("invoice_id"),
        Case.public_id.label("reference"), CaseEvent.created_at.label("since"),
        case((CaseEvent.handled_at.is_(None), "new"), else_="resolved").label("natural"),
    ).join(CaseEvent, CaseEvent.case_id == Case.id).where(CaseEvent.kind.in_(NEEDS_AGENT))
    return [requests, decisions, bank, refunds, dead, partner]


def scoped_select(scope: Scope, model) -> Any:
    """`scope.select(model)`, also for a partner's event (its creditor is its case's)."""
    if model is CaseEvent:
        return select(CaseEvent).join(Case, Case.id == CaseEvent.case_id) \
            .where(Case.creditor_id.in_(scope.creditor_ids))
    return scope.select(model)


def _query(scope: Scope, filters: Filters, agent_id: int):
    """The filtered items' rows (union, marks, invoice and customer for the search), for counting,
    and the same limited to the view and in its order: oldest waiting first, resolved newest first."""
    items = union_all(*_sources(scope)).subquery("items")
    status = case(
        (items.c.natural == "resolved", "resolved"),
        (items.c.natural == "waiting", "waiting"),
        (and_(InboxMark.waiting_since.is_not(None), InboxMark.waiting_since >= items.c.since), "waiting"),
        else_="new",
    )
    base = (
        select(items, InboxMark.assignee_id, status.label("status"))
        .outerjoin(InboxMark, and_(InboxMark.kind == items.c.kind, InboxMark.record_id == items.c.record_id))
        .outerjoin(Invoice, Invoice.id == items.c.invoice_id)
        .outerjoin(Customer, Customer.id == Invoice.customer_id)
    )
    if filters.kind:
        base = base.where(items.c.kind == filters.kind)
    if filters.creditor_id:
        base = base.where(items.c.creditor_id == filters.creditor_id)
    if filters.assignee == "me":
        base = base.where(InboxMark.assignee_id == agent_id)
    elif filters.assignee == "nobody":
        base = base.where(InboxMark.assignee_id.is_(None))
    if filters.q:
        q = filters.q
        base = base.where(or_(
            items.c.reference.icontains(q, autoescape=True), Invoice.number.icontains(q, autoescape=True),
            Customer.name.icontains(q, autoescape=True), Customer.email.icontains(q, autoescape=True),
            Customer.external_ref.icontains(q, autoescape=True),
        ))
    listed = base.where(status != "resolved") if filters.view == "open" else base.where(status == filters.view)
    order = items.c.since.desc() if filters.view == "resolved" else items.c.since
    return base, listed.order_by(order, items.c.kind, items.c.record_id)


def _items(rows) -> list[Item]:
    return [Item(kind=row.kind, record_id=row.record_id, creditor_id=row.creditor_id, invoice_id=row.invoice_id,
                 reference=row.reference, since=row.since, status=row.status, assignee_id=row.assignee_id)
            for row in rows]


def inbox_page(scope: Scope, filters: Filters, agent_id: int) -> Page:
    """One page of the inbox, with the counts per view and per kind for the filters around it, and
    each item's record loaded."""
    base, listed = _query(scope, filters, agent_id)
    counted = base.subquery("counted")
    counts = dict.fromkeys(VIEWS, 0)
    kinds = dict.fromkeys(KINDS, 0)
    for kind, item_status, count in db.session.execute(
        select(counted.c.kind, counted.c.status, func.count()).group_by(counted.c.kind, counted.c.status)
    ):
        counts[item_status] += count
        if item_status != "resolved":
            counts["open"] += count
            kinds[kind] += count
    rows = db.session.execute(listed.offset((filters.page - 1) * PAGE_SIZE).limit(PAGE_SIZE + 1)).all()
    found = _items(rows[:PAGE_SIZE])
    _load(scope, found)
    return Page(found, counts, kinds, more=len(rows) > PAGE_SIZE, filters=filters)


def _load(scope: Scope, items: list[Item], *, with_standing: bool = True) -> None:
    """Each item's record, invoice and assignee: one statement per kind present, not per item; the
    clock of each item that waits for us; and (`with_standing`) where each bill stands, which reads the
    bill's resolutions and plan (a few statements per bill, on a page of at most PAGE_SIZE)."""
    by_model: dict[Any, set[int]] = defaultdict(set)
    for item in items:
        by_model[MODELS[item.kind]].add(item.record_id)
    records = {}
    for model, ids in by_model.items():
        for record in db.session.scalars(scoped_select(scope, model).where(model.id.in_(ids))):
            records[model, record.id] = record
    invoice_ids = {item.invoice_id for item in items if item.invoice_id}
    invoices = {invoice.id: invoice for invoice in db.session.scalars(
        scope.select(Invoice).where(Invoice.id.in_(invoice_ids)))} if invoice_ids else {}
    agent_ids = {item.assignee_id for item in items if item.assignee_id}
    agents = {agent.id: agent for agent in db.session.scalars(
        select(Agent).where(Agent.id.in_(agent_ids)))} if agent_ids else {}
    creditor_ids = {item.creditor_id for item in items}
    creditors = {c.id: c for c in db.session.scalars(
        select(Creditor).where(Creditor.id.in_(creditor_ids)))} if creditor_ids else {}
    standings: dict[int, Standing] = {}
    for item in items:
        item.record = records.get((MODELS[item.kind], item.record_id))
        item.invoice = invoices.get(item.invoice_id)
        item.assignee = agents.get(item.assignee_id)
        creditor = creditors.get(item.creditor_id)
        if creditor is None:
            continue
        if item.status == "new":
            item.answer_by = answer_by(item.since, creditor.answer_within_days, creditor.country)
        if item.invoice is not None and with_standing:
            if item.invoice.id not in standings:
                standings[item.invoice.id] = standing(item.invoice, local_today(creditor.country, utcnow()))
            item.standing = standings[item.invoice.id]


def export_rows(scope: Scope, filters: Filters, agent_id: int, limit: int = 10_000) -> list[Item]:
    """The items of the filters for a CSV export, in the inbox's order, without paging (up to `limit`)."""
    found = _items(db.session.execute(_query(scope, filters, agent_id)[1].limit(limit)))
    for chunk in range(0, len(found), 500):
        _load(scope, found[chunk:chunk + 500], with_standing=False)
    return found


# --- an agent's hand on an item --------------------------------------------------------------------


def record_of(scope: Scope, kind: str, record_id: int) -> Any:
    """The record behind an inbox item, if the agent may see it; None otherwise (answer 404)."""
    model = MODELS.get(kind)
    if model is None:
        return None
    if model is CaseEvent:
        return db.session.scalar(scoped_select(scope, CaseEvent).where(CaseEvent.id == record_id)) \
            if isinstance(record_id, int) else None
    record = scope.get(model, record_id)
    if record is not None and model is Resolution and record.kind != kind:
        return None
    return record


def creditor_of(record: Any) -> int:
    return record.creditor_id if hasattr(record, "creditor_id") else record.invoice.creditor_id


def _mark(kind: str, record: Any) -> InboxMark:
    mark = db.session.scalar(select(InboxMark).where(InboxMark.kind == kind, InboxMark.record_id == record.id))
    if mark is None:
        mark = InboxMark(kind=kind, record_id=record.id, creditor_id=creditor_of(record))
        db.session.add(mark)
    return mark


def assign(kind: str, record: Any, agent: Agent | None) -> InboxMark:
    """Take the item (an agent), or hand it back (None)."""
    mark = _mark(kind, record)
    mark.assignee_id = agent.id if agent else None
    mark.updated_at = utcnow()
    db.session.flush()
    return mark


def set_waiting(kind: str, record: Any, waiting: bool) -> InboxMark:
    """We wait on the customer (until they write again), or the item needs us again."""
    mark = _mark(kind, record)
    mark.waiting_since = utcnow() if waiting else None
    mark.updated_at = utcnow()
    db.session.flush()
    return mark


def mark_of(kind: str, record_id: int) -> InboxMark | None:
    return db.session.scalar(select(InboxMark).where(InboxMark.kind == kind, InboxMark.record_id == record_id))
