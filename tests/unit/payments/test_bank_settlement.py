"""The bank import's batch settlement writes what `payments.services.settle()` writes.

Twin invoices of two creditors get the same payments: one twin through settle(), one payment at
a time, the other through a bank file. Every row either way must be the same (payments, the
invoice's amounts and status, events, attempts, receipts), and no other table may get rows on
one side only. A change to settle() that `app/payments/bank/settlement.py` does not follow fails here.
"""

from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from app.billing.models import InvoiceEvent, InvoiceStatus
from app.billing.services import cancel_invoice, transition
from app.extensions import db
from app.outbox.models import OutboxMessage
from app.payments.bank.services import import_bank_file
from app.payments.models import Payment, PaymentAttempt
from app.payments.services import new_attempt, settle
from tests.factories import invoice_payload, make_creditor, make_invoice
from tests.support.bankfiles import camt053, credit

BOOKED = datetime(2026, 11, 20, tzinfo=UTC)
BANK_ONLY = {"bank_imports", "bank_entries"}


def twin_invoice(creditor, number: str, email: str | None):
    customer = dict(invoice_payload()["customer"], external_ref=f"C-{number}", email=email)
    return make_invoice(creditor, lines=2, number=number, customer=customer)


def dispute(invoice):
    transition(invoice, InvoiceStatus.DISPUTED, actor="test")


def with_attempt(invoice):
    new_attempt(invoice, "simulator", invoice.balance)


# (name, setup of the invoice, payments as amounts relative to the balance: "full", "+500", or a number)
SCENARIOS: list[tuple[str, Callable | None, list]] = [
    ("full", None, ["full"]),
    ("partial", None, [1000]),
    ("overpaid", None, ["+500"]),
    ("paid twice", None, ["full", "full"]),
    ("in parts", None, [1000, "rest"]),
    ("cancelled", cancel_invoice, [700]),
    ("disputed, then paid", dispute, [1000, "rest"]),
    ("attempt open", with_attempt, ["full"]),
    ("no e-mail", None, ["full"]),
]


def amounts(balance: int, plan: list) -> list[int]:
    out, paid = [], 0
    for step in plan:
        amount = {"full": balance, "+500": balance + 500, "rest": balance - paid}.get(step, step)
        out.append(amount)
        paid += amount
    return out


def table_counts() -> Counter:
    return Counter({table.name: db.session.scalar(select(func.count()).select_from(table))
                    for table in db.metadata.sorted_tables})


# Columns that differ between twins by nature (ids, random refs, clocks); every other column is compared.
OWN = {"id", "invoice_id", "public_id", "public_ref", "created_at", "updated_at", "next_attempt_at", "creditor_id",
       "customer_id", "provider_ref", "expires_at"}


def columns(row, **replace) -> dict:
    """A row's columns but its own ids, refs and times; `replace` puts normalised values in."""
    values = {c.key: getattr(row, c.key) for c in row.__table__.columns if c.key not in OWN}
    return values | replace


def receipt_key(message, public_refs: dict[int, str]) -> bool:
    """The receipt's key is made from its payment's public ref, as `enqueue_receipt` makes it."""
    return message.idempotency_key == "payment_receipt:" + public_refs[message.payload["payment_id"]]


def snapshot(invoice, payment_prefix: str, events_after: int) -> dict:
    """Everything settlement wrote about one invoice, with its own ids and payment ids normalised."""
    db.session.expire_all()
    payments = db.session.scalars(select(Payment).where(Payment.invoice_id == invoice.id).order_by(Payment.id)).all()
    order = {p.id: n for n, p in enumerate(payments)}
    public_refs = {p.id: p.public_ref for p in payments}

    def plain(text):
        return text.replace(payment_prefix, "<payment>") if isinstance(text, str) else text

    receipts = db.session.scalars(
        select(OutboxMessage).where(OutboxMessage.kind == "payment_receipt").order_by(OutboxMessage.id)).all()
    events = db.session.scalars(select(InvoiceEvent).where(
        InvoiceEvent.invoice_id == invoice.id, InvoiceEvent.id > events_after).order_by(InvoiceEvent.id))
    attempts = db.session.scalars(
        select(PaymentAttempt).where(PaymentAttempt.invoice_id == invoice.id).order_by(PaymentAttempt.id))
    return {
        "invoice": columns(invoice, number=None, payment_reference=None, payload_hash=None),
        "payments": [columns(p, provider_payment_id=plain(p.provider_payment_id), ref_length=len(p.public_ref))
                     for p in payments],
        "events": [columns(e, data={k: plain(v) for k, v in e.data.items()}) for e in events],
        "attempts": [columns(a, public_ref=None) for a in attempts],
        "receipts": [columns(m, payload=order[m.payload["payment_id"]], idempotency_key=receipt_key(m, public_refs))
                     for m in receipts if m.payload.get("payment_id") in order],
    }


@pytest.mark.parametrize(("name", "setup", "plan"), SCENARIOS, ids=[s[0] for s in SCENARIOS])
def test_batch_settlement_writes_what_settle_writes(session, name, setup, plan):
    by_settle = make_creditor("NO", bank_account_no="15032080127", slug="by-settle")
    by_import = make_creditor("NO", bank_account_no="15032080135", slug="by-import")
    email = None if name == "no e-mail" else "kari@example.test"
    one, other = twin_invoice(by_settle, "700001", email), twin_invoice(by_import, "700001", email)
    for invoice in (one, other):
        if setup:
            setup(invoice, actor="test") if setup is cancel_invoice else setup(invoice)
    db.session.flush()
    payments = amounts(one.balance, plan)
    events_after = db.session.scalar(select(func.max(InvoiceEvent.id)))

    before = table_counts()
    for n, amount in enumerate(payments):
        settle(one.id, provider="bank_transfer", payment_id=f"settle:B{n}", amount=amount, currency="NOK",
               method="bank_transfer", received_at=BOOKED, actor="bank_import")
    middle = table_counts()
    credits = [credit(amount, other.payment_reference, ref=f"B{n}") for n, amount in enumerate(payments)]
    summary = import_bank_file(camt053(by_import.bank_account_no, credits), filename="twin.xml")
    after = table_counts()

    assert summary.matched == len(payments)
    by_settle_rows = {t: n for t, n in (middle - before).items() if t not in BANK_ONLY}
    by_import_rows = {t: n for t, n in (after - middle).items() if t not in BANK_ONLY}
    assert by_import_rows == by_settle_rows, "the import writes other tables than settle() does"
    assert snapshot(other, f"{by_import.bank_account_no}:", events_after) == snapshot(one, "settle:", events_after)
