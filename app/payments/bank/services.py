"""Importing a bank file: record each credit once, settle what matches, keep the rest for an
agent. Services add and flush; the caller (the CLI) commits once, or rolls back on any error.

One import, in order:

1. The file's SHA-256: a file imported before changes nothing.
2. Its head: the format (detected or confirmed), no DTD; an OCR file is read whole. A file that
   fails here raises BankFileError before anything is written.
3. Record the import (its unique SHA-256 also stops a concurrent import of the same file). On
   SQLite this first write takes the database's write lock, so what is read next cannot change
   before the commit.
4. The credits, in chunks of 5,000 as they are read (`reader.py`: a child process reads a large
   file meanwhile). A problem further into the file raises BankFileError then; the caller's
   rollback undoes what was written. For each chunk:
   a. load, in a few queries and locked `FOR UPDATE` until the commit, every invoice the chunk's
      references and texts can name (no query per credit);
   b. skip the credits already recorded, by (account, bank reference), from another file (the
      day's camt.054, then its camt.053) or earlier in this one, counted as duplicates. After the
      locks: an import of the same entries that held them has committed by now;
   c. decide each credit in file order (`matching.decide`) and settle the matched ones through
      `BatchSettlement` (the rules and guarantees of `payments.services.settle()`, in bulk).
5. The credits that no reference or number names: the open invoices their amounts could fit are
   loaded (and locked), then each is decided by amount and name (`matching.decide_by_amount`),
   after every certain match of the file.
6. Write it all, one statement per table (`bulk.py`): payments, events, invoices, receipts, and
   one BankEntry per credit, matched or kept with its reason.

Two imports of overlapping entries at the same moment: the second waits for the invoices'
locks and then sees the first's entries as duplicates. Where no lock orders them (entries
matching no invoice) or they deadlock, one fails on a unique key (entries, payments) and is
rolled back whole; run it again.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.billing.models import Customer, Invoice
from app.creditors.models import Creditor
from app.errors import IllegalTransition, InvalidData
from app.extensions import db
from app.models import utcnow
from app.payments.bank.bulk import insert_rows, json_text, large_page_cache
from app.payments.bank.matching import (
    NOT_OPEN,
    Decision,
    InvoiceBook,
    InvoiceState,
    account_key,
    decide,
    decide_by_amount,
    kept,
    number_tokens,
    reference_key,
)
from app.payments.bank.models import BankEntry, BankImport, EntryStatus, KeptReason, describe_reason
from app.payments.bank.parsers import Credit, open_bank_file, paused_gc
from app.payments.bank.reader import FORK_ABOVE, credit_chunks
from app.payments.bank.settlement import BatchSettlement, receipt_locale
from app.payments.services import settle

PROVIDER = "bank_transfer"
METHOD = "bank_transfer"
ACTOR = "bank_import"
LOOKUP_CHUNK = 2000  # values per IN (...) list when looking up many at once


def payment_id_of(account: str, bank_ref: str) -> str:
    """The payment id of a credit, by the import or by an agent alike: one credit, one payment."""
    return f"{account}:{bank_ref}"


@dataclass(frozen=True)
class KeptEntry:
    """A credit kept for an agent, as the import's summary lists it."""

    booked_on: date
    amount: int
    currency: str
    account: str
    payer_name: str | None
    reference: str | None
    remittance: str | None
    status: str
    reason: str
    details: dict

    @property
    def note(self) -> str:
        return describe_reason(self.reason, self.details)


@dataclass
class ImportSummary:
    filename: str
    file_format: str
    already_imported: bool = False
    imported_at: datetime | None = None
    entries: int = 0  # credits in the file
    ignored: int = 0  # debits, reversals, entries not booked
    matched: int = 0
    duplicates: int = 0
    kept: list[KeptEntry] = field(default_factory=list)
    matched_amounts: Counter = field(default_factory=Counter)  # currency -> minor units settled

    @property
    def kept_by_reason(self) -> Counter:
        return Counter(entry.reason for entry in self.kept)


@dataclass(frozen=True)
class _Owner:
    creditor_id: int
    slug: str
    locale: str


def import_bank_file(data: bytes, *, filename: str, file_format: str | None = None,
                     now: datetime | None = None, fork_above: int = FORK_ABOVE) -> ImportSummary:
    """Import one bank file (see the module's docstring). Raises BankFileError for a file that
    cannot be read (its head at once, the rest as it is read); the caller rolls back and
    nothing is written. Files over `fork_above` bytes are read by a child process (`reader.py`)."""
    now = now or utcnow()
    digest = hashlib.sha256(data).hexdigest()
    earlier = db.session.scalar(select(BankImport).where(BankImport.sha256 == digest))
    if earlier is not None:
        return _already_imported(filename, earlier)
    stream = open_bank_file(data, file_format)
    bank_import = BankImport(filename=filename[-300:], file_format=stream.file_format, sha256=digest,
                             imported_at=now)
    try:
        with db.session.begin_nested():
            db.session.add(bank_import)
            db.session.flush()
    except IntegrityError:  # the same file, imported by a concurrent run that committed first
        earlier = db.session.scalar(select(BankImport).where(BankImport.sha256 == digest))
        return _already_imported(filename, earlier)
    summary = ImportSummary(filename=filename, file_format=stream.file_format, imported_at=now)
    with paused_gc(), large_page_cache():
        record_credits(bank_import, credit_chunks(stream, len(data), fork_above=fork_above), summary, now=now)
    summary.ignored = stream.ignored
    return summary


def _already_imported(filename: str, earlier: BankImport) -> ImportSummary:
    return ImportSummary(filename=filename, file_format=earlier.file_format, already_imported=True,
                         imported_at=earlier.imported_at)


ENTRY_COLUMNS = ("import_id", "creditor_id", "account", "bank_ref", "booked_on", "amount", "currency", "reference",
                 "remittance", "payer_name", "status", "reason", "details", "invoice_id", "payment_id", "created_at")


def record_credits(bank_import: BankImport, chunks: Iterable[list[Credit]], summary: ImportSummary, *,
                   now: datetime) -> None:
    """Record, match and settle the credits of one import, chunk by chunk in file order, then those
    left to amount and name; fill in `summary` and the import's counts. The rows are written at
    the end, once for all."""
    owners = _owners_by_account()
    book, seen, rows, by_amount = InvoiceBook(), set(), [], []
    batch = BatchSettlement(provider=PROVIDER, method=METHOD, actor=ACTOR, now=now)
    for credits in chunks:
        summary.entries += len(credits)
        # Invoices first: waiting for their locks, a concurrent import of the same entries commits,
        # and the duplicates check after it sees them (PostgreSQL reads what is committed per statement).
        _load_invoices(book, credits, owners)
        fresh = _fresh(credits, seen)
        summary.duplicates += len(credits) - len(fresh)
        batch.expect(len(fresh))
        for credit, account in fresh:
            creditor_id, decision = _decide(credit, account, owners, book)
            if decision is None:
                by_amount.append((credit, account, creditor_id))
            else:
                rows.append(_record(bank_import.id, credit, account, creditor_id, decision, book, batch, summary, now))
    _load_open_invoices(book, by_amount, owners)
    batch.expect(len(by_amount))
    for credit, account, creditor_id in by_amount:
        decision = decide_by_amount(credit, creditor_id, book)
        rows.append(_record(bank_import.id, credit, account, creditor_id, decision, book, batch, summary, now))
    batch.write()
    insert_rows(BankEntry.__table__, ENTRY_COLUMNS, rows, serialized=("details",))
    bank_import.entries, bank_import.matched, bank_import.kept = summary.entries, summary.matched, len(summary.kept)
    bank_import.duplicates = summary.duplicates
    db.session.flush()


def _record(import_id: int, credit: Credit, account: str, creditor_id: int | None, decision: Decision,
            book: InvoiceBook, batch: BatchSettlement, summary: ImportSummary, now: datetime) -> tuple:
    """Settle a matched credit, count it; its BankEntry row."""
    invoice, payment_id = decision.invoice, None
    if invoice is not None:
        payment_id = batch.settle(invoice, payment_id=payment_id_of(account, credit.bank_ref), amount=credit.amount,
                                  currency=credit.currency, received_at=credit.booked_at)
        if invoice.is_open:  # still owes: may be found by its new balance
            book.reindex(invoice)
        summary.matched += 1
        summary.matched_amounts[credit.currency] += credit.amount
    else:
        summary.kept.append(_kept_entry(credit, account, decision))
    return (
        import_id, creditor_id, account, credit.bank_ref, credit.booked_on, credit.amount, credit.currency,
        _cut(credit.reference, 35), _cut(credit.remittance, 500), _cut(credit.payer_name, 140), decision.status,
        decision.reason, json_text(decision.details) if decision.details else None,
        invoice.id if invoice else None, payment_id, now,
    )


def _cut(text: str | None, length: int) -> str | None:
    return text[:length] if text else None


def _decide(credit: Credit, account: str, owners: dict[str, list[_Owner]],
            book: InvoiceBook) -> tuple[int | None, Decision | None]:
    """(the creditor the credit belongs to, the decision): by account first, then `matching.decide`
    (None: for amount and name, later)."""
    found = owners.get(account, [])
    if not found:
        return None, kept(KeptReason.UNKNOWN_ACCOUNT, account=account)
    if len(found) > 1:
        return None, kept(KeptReason.SHARED_ACCOUNT, account=account, creditors=sorted(o.slug for o in found))
    return found[0].creditor_id, decide(credit, found[0].creditor_id, book)


def _kept_entry(credit: Credit, account: str, decision: Decision) -> KeptEntry:
    return KeptEntry(
        booked_on=credit.booked_on, amount=credit.amount, currency=credit.currency, account=account,
        payer_name=credit.payer_name, reference=credit.reference, remittance=credit.remittance,
        status=decision.status, reason=decision.reason, details=decision.details or {},
    )


def _chunks(values: Iterable, size: int = LOOKUP_CHUNK) -> Iterator[list]:
    values = list(values)
    for start in range(0, len(values), size):
        yield values[start:start + size]


def _owners_by_account() -> dict[str, list[_Owner]]:
    """Every creditor by each of its accounts (IBAN and Norwegian account number, as account keys)."""
    owners: dict[str, list[_Owner]] = defaultdict(list)
    rows = db.session.execute(
        select(Creditor.id, Creditor.slug, Creditor.default_locale, Creditor.iban, Creditor.bank_account_no)
    )
    for creditor_id, slug, locale, iban, account_no in rows:
        owner = _Owner(creditor_id, slug, locale)
        for key in {account_key(a) for a in (iban, account_no) if a}:
            owners[key].append(owner)
    return owners


def _fresh(credits: list[Credit], seen: set[tuple[str, str]]) -> list[tuple[Credit, str]]:
    """(credit, account key) of the credits not recorded before, nor earlier in this file (`seen`,
    which this adds them to)."""
    keyed = [(credit, account_key(credit.account)) for credit in credits]
    refs_by_account: dict[str, set[str]] = defaultdict(set)
    for credit, account in keyed:
        if (account, credit.bank_ref) not in seen:
            refs_by_account[account].add(credit.bank_ref)
    known: set[tuple[str, str]] = set()
    for account, refs in refs_by_account.items():
        for chunk in _chunks(refs):
            known.update(
                (account, ref) for ref in db.session.scalars(
                    select(BankEntry.bank_ref).where(BankEntry.account == account, BankEntry.bank_ref.in_(chunk))
                )
            )
    fresh = []
    for credit, account in keyed:
        key = (account, credit.bank_ref)
        if key not in known and key not in seen:
            seen.add(key)
            fresh.append((credit, account))
    return fresh


def _load_invoices(book: InvoiceBook, credits: list[Credit], owners: dict[str, list[_Owner]]) -> None:
    """Every invoice the credits' references or texts can name, into `book`, locked until the
    commit, in a few queries per creditor: by structured reference; by a token of the text
    (number or reference). An invoice already in the book keeps its state there (this import
    may have paid it)."""
    references: dict[int, set[str]] = defaultdict(set)
    tokens: dict[int, set[str]] = defaultdict(set)
    for credit in credits:
        found = owners.get(account_key(credit.account), [])
        if len(found) != 1:
            continue
        creditor_id = found[0].creditor_id
        if credit.reference:
            key = reference_key(credit.reference)
            references[creditor_id].update((key, key.lower()))
        else:
            tokens[creditor_id].update(number_tokens(credit.remittance))
    locales = _locales(owners)
    for creditor_id, values in references.items():
        for chunk in _chunks(values):
            _add_rows(book, locales, {}, Invoice.creditor_id == creditor_id, Invoice.payment_reference.in_(chunk))
    for creditor_id, values in tokens.items():
        for chunk in _chunks(values):  # two queries, not one with OR: each can use its unique index
            _add_rows(book, locales, {"number": True}, Invoice.creditor_id == creditor_id, Invoice.number.in_(chunk))
        for chunk in _chunks({value.upper() for value in values}):
            _add_rows(book, locales, {}, Invoice.creditor_id == creditor_id, Invoice.payment_reference.in_(chunk))


def _load_open_invoices(book: InvoiceBook, by_amount: list[tuple[Credit, str, int | None]],
                        owners: dict[str, list[_Owner]]) -> None:
    """The open invoices whose balance is one of the amounts of the credits left to amount and
    name (with a payer's name), into `book`, locked, indexed by balance. No index serves a
    balance: one scan of the creditor's invoices per 2,000 amounts."""
    amounts: dict[int, set[int]] = defaultdict(set)
    for credit, _account, creditor_id in by_amount:
        if creditor_id is not None and credit.payer_name:
            amounts[creditor_id].add(credit.amount)
    locales = _locales(owners)
    for creditor_id, values in amounts.items():
        for chunk in _chunks(values):
            _add_rows(book, locales, {"balance": True}, Invoice.creditor_id == creditor_id,
                      Invoice.status.not_in(NOT_OPEN), (Invoice.total - Invoice.amount_paid).in_(chunk))


def _locales(owners: dict[str, list[_Owner]]) -> dict[int, str]:
    return {owner.creditor_id: owner.locale for found in owners.values() for owner in found}


def _add_rows(book: InvoiceBook, locales: dict[int, str], index: dict[str, bool], *conditions) -> None:
    """Load the invoices that meet `conditions`, locked (the invoice rows only) until the commit,
    into `book`, indexed as `index` says (InvoiceBook.add)."""
    rows = db.session.execute(
        select(
            Invoice.id, Invoice.creditor_id, Invoice.number, Invoice.payment_reference, Invoice.currency,
            Invoice.status, Invoice.total, Invoice.amount_paid, Customer.name, Customer.email,
            Customer.preferred_locale, Invoice.due_date, Customer.external_ref,
        )
        .join(Customer, Customer.id == Invoice.customer_id)
        .where(Invoice.livemode.is_(True), *conditions)  # real money pays only live bills (docs/api.md, "Test mode")
        .order_by(Invoice.id)
        .with_for_update(of=Invoice)
    )
    known = book.by_id
    for (invoice_id, creditor_id, number, reference, currency, status, total, paid, customer, email,
         customer_locale, due_date, customer_ref) in rows:
        state = known.get(invoice_id) or InvoiceState(
            invoice_id, creditor_id, number, reference_key(reference or ""), currency, status, total, paid, customer,
            email, receipt_locale(customer_locale, locales.get(creditor_id)), due_date, customer_ref,
        )
        book.add(state, **index)


def open_entries(creditor_id: int | None = None, *, limit: int | None = None) -> list[BankEntry]:
    """Entries kept for an agent (unmatched or ambiguous), oldest first; one creditor's, or all
    (with those of unknown accounts) when `creditor_id` is None."""
    query = select(BankEntry).where(BankEntry.status.in_(EntryStatus.OPEN))
    if creditor_id is not None:
        query = query.where(BankEntry.creditor_id == creditor_id)
    query = query.order_by(BankEntry.booked_on, BankEntry.id)
    if limit is not None:
        query = query.limit(limit)
    return list(db.session.scalars(query))



# --- what an agent decides about a kept entry -------------------------------------------------------


def match_entry(entry: BankEntry, invoice: Invoice, *, actor: str, note: str | None = None):
    """Settle a kept credit against the invoice an agent found for it, exactly as the import would
    have (the same payment id, so a later file with the same entry cannot pay twice)."""
    if entry.status not in EntryStatus.OPEN:
        raise IllegalTransition(f"bank entry {entry.id} is {entry.status}")
    if invoice.creditor_id != entry.creditor_id:
        raise InvalidData({"invoice": "other_creditor"})
    if invoice.currency != entry.currency:
        raise InvalidData({"invoice": "currency"})
    payment = settle(invoice.id, provider=PROVIDER, payment_id=payment_id_of(entry.account, entry.bank_ref),
                     amount=entry.amount, currency=entry.currency, method=METHOD,
                     received_at=datetime.combine(entry.booked_on, time(0), tzinfo=UTC), actor=actor)
    if payment is None:
        raise IllegalTransition(f"bank entry {entry.id} was settled already")
    _resolve(entry, "matched", actor, note)
    entry.invoice_id, entry.payment_id = invoice.id, payment.id
    db.session.flush()
    return payment


def return_entry(entry: BankEntry, *, actor: str, note: str) -> BankEntry:
    """Record that the creditor's bank sent a kept credit back to the payer (it belongs to no bill)."""
    if entry.status not in EntryStatus.OPEN:
        raise IllegalTransition(f"bank entry {entry.id} is {entry.status}")
    if not (note or "").strip():
        raise InvalidData({"note": "required"})
    _resolve(entry, "returned", actor, note)
    db.session.flush()
    return entry


def _resolve(entry: BankEntry, how: str, actor: str, note: str | None) -> None:
    entry.status, entry.resolution = EntryStatus.RESOLVED, how
    entry.resolved_at, entry.resolved_by = utcnow(), actor
    entry.resolution_note = (note or "").strip()[:500] or None
