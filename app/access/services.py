"""Loading a bill for the page and describing it for the customer (no Flask objects here): the bill's
one-statement access read, the customer's other bills, the step-up's check."""

from __future__ import annotations

import functools
import hmac
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnClause, Select, bindparam, column, exists, func, literal_column, select, table
from sqlalchemy.orm import aliased, contains_eager, selectinload

from app.billing.models import Customer, Invoice, InvoiceEvent, InvoiceStatus
from app.billing.services import OWING, OWING_SQL
from app.core.dates import parse_date
from app.creditors.models import Creditor
from app.extensions import db
from app.payments.models import PaymentAttempt
from app.payments.services import IN_PROGRESS
from app.readpath import ReadQuery

MAX_PUBLIC_ID = 32

#: The two tables the access read asks "any row for this bill?", by name and the one column it reads,
#: not through their models (`resolutions.models.Resolution`, `support.models.SupportRequest`): the
#: pages of those features sit behind the guard that runs this read, so importing their models here
#: would close an import circle between whole packages. `tests/unit/test_access.py` checks that they
#: are the models' tables and columns.
RESOLUTIONS = table("resolutions", column("invoice_id"))
SUPPORT_REQUESTS = table("support_requests", column("invoice_id"))


@dataclass(frozen=True)
class BillAccess:
    """What the bill's pages need to know before they show anything, read in one statement.

    `version` changes whenever anything the bill page shows changes: the invoice row (status,
    amounts, dates), its newest event (payments, disputes, messages and every other step of
    its timeline), the creditor (brand, contact, bank account) or the customer, what happens
    next by the bill's dunning plan (its plan, next step and its day, exclusions: columns the run
    writes in bulk, so read here themselves rather than through `updated_at`), and the customer's
    other open bills at the creditor (how many, what they owe, their newest change: the page lists
    them). The rendered page is cached under it (`app.page_cache`), so every change that a
    bill page shows must update one of these rows or record an invoice event; the billing
    services do.

    `other_bills`: how many other bills the customer owes the creditor (the page lists them, and
    the grant a link gives covers them: `access.grants`). `source_revocations`: for a grant that
    came with another bill's link, that bill's count of link revocations now (None otherwise).
    """

    invoice_id: int
    status: str
    creditor_id: int
    country: str
    creditor_locale: str
    step_up_mode: str
    customer_locale: str | None
    has_resolutions: bool  # disputes, promises, deferrals or plans: the page shows them
    has_threads: bool  # contact requests: the page shows the conversations
    link_revocations: int  # raised by every revocation of the bill's links: a grant given before is over
    version: tuple
    other_bills: int = 0
    source_revocations: int | None = None
    # The version of what the invoice's PDF shows (the invoice, creditor and customer rows, the newest
    # event, the revocation count): `billing.pdf.invoice_version` reads the same, so the customer's PDF
    # and the collection partner's copy share one cached render.
    document_version: tuple = ()
    # The bill's newest payment the provider has not confirmed yet (`payments.services.IN_PROGRESS`):
    # its id, status and expiry. It changes the page and ends by expiring, which no event records.
    in_progress: tuple[int, str, datetime | None] | None = None

    def payment_in_progress(self, now: datetime) -> tuple[int, str] | None:
        """(id, status) of the payment in progress that has not expired, if there is one."""
        if self.in_progress is None:
            return None
        attempt_id, status, expires_at = self.in_progress
        return (attempt_id, status) if expires_at is None or expires_at > now else None

    @property
    def is_closed(self) -> bool:
        return self.status in InvoiceStatus.CLOSED


def _bill_access_statement() -> Select:
    newest_event = (
        select(func.max(InvoiceEvent.id)).where(InvoiceEvent.invoice_id == Invoice.id).scalar_subquery()
    )
    # Most bills have neither; knowing it here spares a rendered page two statements.
    has_resolutions = exists().where(RESOLUTIONS.c.invoice_id == Invoice.id)
    has_threads = exists().where(SUPPORT_REQUESTS.c.invoice_id == Invoice.id)
    # The customer's other bills owed to the creditor (customers are per creditor): how many, what they
    # owe and their newest change, for the list on the page (one index range on invoices.customer_id).
    other = aliased(Invoice)
    owing = (other.customer_id == Invoice.customer_id, other.id != Invoice.id, other.status.in_(OWING_SQL),
             other.total > other.amount_paid)
    other_count = select(func.count(other.id)).where(*owing).scalar_subquery()
    other_owed = select(func.coalesce(func.sum(other.total - other.amount_paid), literal_column("0"))) \
        .where(*owing).scalar_subquery()
    other_changed = select(func.max(other.updated_at)).where(*owing).scalar_subquery()
    # A grant that came with another bill's link (`access.grants`) ends when that bill's links are revoked.
    source = aliased(Invoice)
    source_revocations = (select(source.link_revocations)
                          .where(source.id == bindparam("source_id"), source.customer_id == Invoice.customer_id)
                          .scalar_subquery())
    # The newest payment in progress (the index on invoice_id, status): the page shows it instead of the ways to pay.
    newest_in_progress = (select(func.max(PaymentAttempt.id)).where(PaymentAttempt.invoice_id == Invoice.id,
                                                                    PaymentAttempt.status.in_(IN_PROGRESS_SQL))
                          .scalar_subquery())
    progress = aliased(PaymentAttempt)

    def of_progress(column):
        return select(column).where(progress.id == newest_in_progress).scalar_subquery()
    return (
        select(
            Invoice.id, Invoice.status, Invoice.creditor_id, Creditor.country, Creditor.default_locale,
            Creditor.step_up_mode, Customer.preferred_locale, has_resolutions, has_threads, other_count,
            source_revocations, newest_in_progress, of_progress(progress.status), of_progress(progress.expires_at),
            # the version: from here on
            Invoice.updated_at, Creditor.updated_at, Customer.updated_at, newest_event, Invoice.dunning_plan_id,
            Invoice.dunning_next_position, Invoice.dunning_next_on, Invoice.dunning_excluded, other_owed,
            other_changed, Invoice.link_revocations,
        )
        .join(Creditor, Invoice.creditor_id == Creditor.id)
        .join(Customer, Invoice.customer_id == Customer.id)
        .where(Invoice.public_id == bindparam("public_id"))
    )


#: Literals, not parameters: the precompiled read binds only the public id and the source.
IN_PROGRESS_SQL: tuple[ColumnClause[Any], ...] = tuple(literal_column(f"'{status}'") for status in IN_PROGRESS)
_BILL_ACCESS = ReadQuery(_bill_access_statement)


def bill_access(public_id: str, source_id: int | None = None) -> BillAccess | None:
    """Status, locales, step-up mode and version of the bill with this public id: one statement.
    `source_id`: the bill whose link gave the grant, when it is another bill of the same customer."""
    if not public_id or len(public_id) > MAX_PUBLIC_ID:
        return None
    row = _BILL_ACCESS.first(public_id=public_id, source_id=source_id if source_id is not None else 0)
    if row is None:
        return None
    # The version holds the revocation count too: a page cached under it is never one a revoked
    # grant could reach, even if the grant check were ever skipped.
    invoice_id, status, creditor_id, country, creditor_locale, step_up_mode, customer_locale = row[:7]
    in_progress = (row[11], row[12], _utc(row[13])) if row[11] is not None else None
    return BillAccess(invoice_id, status, creditor_id, country, creditor_locale, step_up_mode, customer_locale,
                      bool(row[7]), bool(row[8]), row[-1], version=tuple(row[14:]), other_bills=int(row[9] or 0),
                      source_revocations=row[10], document_version=(*row[14:18], row[-1]), in_progress=in_progress)


def _utc(value: datetime | None) -> datetime | None:
    """A moment read by a scalar subquery (which skips the column type's conversion on SQLite), in UTC."""
    if value is None or (isinstance(value, datetime) and value.tzinfo is not None):
        return value
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC)


def other_grants(customer_id: int, invoice_id: int, limit: int) -> list[tuple[str, int]]:
    """The customer's other bills owed to the creditor, as (public id, link revocations), earliest due
    first: what a link to `invoice_id` opens besides it (`access.grants`)."""
    rows = db.session.execute(
        select(Invoice.public_id, Invoice.link_revocations)
        .where(Invoice.customer_id == customer_id, Invoice.id != invoice_id, Invoice.status.in_(OWING),
               Invoice.total > Invoice.amount_paid)
        .order_by(Invoice.due_date, Invoice.id).limit(limit)).all()
    return [(public_id, revocations) for public_id, revocations in rows]


def bill_owner(public_id: str) -> tuple[Creditor, int] | None:
    """The creditor of the bill at this address and the bill's id, whatever its state (for the neutral
    page of a browser without a grant for it: a bookmark, another device, a grant that aged)."""
    if not public_id or len(public_id) > MAX_PUBLIC_ID:
        return None
    row = db.session.execute(select(Creditor, Invoice.id).join(Invoice, Invoice.creditor_id == Creditor.id)
                             .where(Invoice.public_id == public_id)).first()
    return (row[0], row[1]) if row is not None else None


def load_bill(public_id: str) -> Invoice | None:
    """The invoice with its creditor, customer and lines: two statements whatever the line count."""
    if not public_id or len(public_id) > MAX_PUBLIC_ID:
        return None
    return db.session.scalar(_bill_statement(), {"public_id": public_id})


@functools.cache
def _bill_statement() -> Select:
    """`load_bill`'s statement, built once (building it took a fifth of a millisecond of every bill page
    rendered and every payment started; SQLAlchemy compiles it once either way)."""
    return (select(Invoice)
            .join(Creditor, Invoice.creditor_id == Creditor.id)
            .join(Customer, Invoice.customer_id == Customer.id)
            .options(contains_eager(Invoice.creditor), contains_eager(Invoice.customer), selectinload(Invoice.lines))
            .where(Invoice.public_id == bindparam("public_id")))


# --- step-up -----------------------------------------------------------------------


def _normalise(value: str) -> str:
    value = unicodedata.normalize("NFKC", value or "")
    return re.sub(r"[\s.\-/]", "", value).casefold()


def expected_answer(mode: str, customer: Customer) -> str | None:
    if mode == "postcode":
        return customer.postcode
    if mode == "customer_number":
        return customer.external_ref
    if mode == "date_of_birth":
        return customer.date_of_birth.isoformat() if customer.date_of_birth else None
    return None


def check_step_up(mode: str, customer: Customer, answer: str) -> bool:
    """Constant-time comparison of the customer's answer with what the creditor gave us."""
    expected = expected_answer(mode, customer)
    if not expected:
        return False
    if mode == "date_of_birth":
        parsed = parse_date(answer)
        given = parsed.isoformat() if parsed else ""
    else:
        given, expected = _normalise(answer), _normalise(expected)
    return hmac.compare_digest(given.encode(), expected.encode())
