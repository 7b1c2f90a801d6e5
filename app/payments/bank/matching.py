"""Which invoice a bank credit pays, decided in memory over the invoices an import has loaded.

Pure: no database. `services.py` loads (and locks) the invoices a file can touch into an
`InvoiceBook`; `decide()` then takes the credits one by one, in file order, against the book's
current state, so that a second payment of the same invoice in the same file sees the first.
The credits that neither a reference nor a number names go to `decide_by_amount()` after every
other credit of the file: a guess by amount and name only looks at what the certain matches
left open.

The rules, scoped to the creditor that owns the credited account:

1. A structured reference (KID or RF): the invoice whose payment reference it is, compared in
   compact form (no spaces, upper case). A reference that no invoice has is kept for an agent:
   no fallback, no guessing.
2. No structured reference: the invoice numbers (or payment references) written in the
   unstructured text, as whole tokens. Exactly one invoice: it; several: kept as ambiguous.
3. Still nothing: the open invoices whose balance is the amount and whose customer's name is
   the payer's name (case, accents, punctuation and word order ignored). Exactly one: it;
   several: ambiguous; none: kept.

An invoice in another currency than the credit is never settled by it: kept, with both currencies
in the note. Paid and closed invoices can be found by reference or number (the payment is then
owed back, which settlement records); amount and name only look at open invoices.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache

from app.billing.models import InvoiceStatus
from app.payments.bank.models import EntryStatus, KeptReason
from app.payments.bank.parsers import Credit

# Letters that Unicode does not decompose into a base letter and an accent, as banks spell them.
TRANSLITERATE = str.maketrans({"ø": "o", "æ": "ae", "đ": "d", "ł": "l", "þ": "th", "ð": "d", "œ": "oe"})
NOT_OPEN = (InvoiceStatus.PAID, *InvoiceStatus.CLOSED)
TOKEN_SPLIT = re.compile(r"[\s,;:]+")
TOKEN_TRIM = ".()[]{}'\"#*"  # noqa: S105  punctuation, not a password


@lru_cache(maxsize=1024)
def account_key(account: str) -> str:
    """The key an account is known by: compact, upper case; a Norwegian IBAN by its 11-digit
    account number (NOkk + 11 digits), so the IBAN and the domestic number of one account agree."""
    compact = "".join(ch for ch in account if ch.isalnum()).upper()
    if len(compact) == 15 and compact.startswith("NO") and compact[2:].isdigit():
        return compact[4:]
    return compact


def reference_key(reference: str) -> str:
    """'rf18 5390 0754 7034' -> 'RF18539007547034'; a KID stays its digits (leading zeros count)."""
    return "".join(reference.split()).upper()


@lru_cache(maxsize=4096)
def name_key(name: str | None) -> str:
    """'NORDMANN, KARI' and 'Kari  Nordmann' -> 'kari nordmann'; 'Øyvind Ås' -> 'as oyvind'."""
    if not name:
        return ""
    folded = unicodedata.normalize("NFKD", name.casefold().translate(TRANSLITERATE))
    letters = "".join(ch if ch.isalnum() else " " for ch in folded if not unicodedata.combining(ch))
    return " ".join(sorted(letters.split()))


def number_tokens(text: str | None) -> set[str]:
    """The words of a remittance text that could be an invoice number: whole tokens with a digit."""
    if not text:
        return set()
    tokens = (token.strip(TOKEN_TRIM) for token in TOKEN_SPLIT.split(text))
    return {token for token in tokens if any(ch.isdigit() for ch in token)}


@dataclass(slots=True)
class InvoiceState:
    """What matching and settlement need of one invoice, kept current as payments land."""

    id: int
    creditor_id: int
    number: str
    reference: str  # compact payment reference
    currency: str
    status: str
    total: int
    amount_paid: int
    customer_name: str
    customer_email: str | None = None
    locale: str | None = None  # the receipt's language: the customer's, else the creditor's
    # What the creditor's `payment.succeeded` event carries of the bill beyond the above (events.catalogue)
    due_date: date | None = None
    external_ref: str | None = None  # the customer's
    livemode: bool = True  # a bank file pays live bills only (services._add_rows)

    @property
    def balance(self) -> int:
        return self.total - self.amount_paid

    @property
    def is_closed(self) -> bool:
        return self.status in InvoiceStatus.CLOSED

    @property
    def is_open(self) -> bool:
        return self.status not in NOT_OPEN and self.balance > 0


@dataclass
class InvoiceBook:
    """The invoices an import may touch, by reference, by number and by open balance."""

    by_id: dict[int, InvoiceState] = field(default_factory=dict)
    by_reference: dict[tuple[int, str], int] = field(default_factory=dict)
    by_number: dict[tuple[int, str], int] = field(default_factory=dict)
    by_balance: dict[tuple[int, int], set[int]] = field(default_factory=lambda: defaultdict(set))

    def add(self, state: InvoiceState, *, number: bool = False, balance: bool = False) -> InvoiceState:
        """Index an invoice by reference, and by number or open balance when the query that found it
        looked for those (an invoice's first load wins: later ones read the same locked row)."""
        known = self.by_id.setdefault(state.id, state)
        if known is state and state.reference:
            self.by_reference[(state.creditor_id, state.reference)] = state.id
        if number:
            self.by_number[(state.creditor_id, state.number)] = state.id
        if balance:
            self.reindex(known)
        return known

    def reindex(self, state: InvoiceState) -> None:
        """After a payment changed the balance: findable by its new balance."""
        self.by_balance[(state.creditor_id, state.balance)].add(state.id)

    def with_reference(self, creditor_id: int, reference: str) -> InvoiceState | None:
        invoice_id = self.by_reference.get((creditor_id, reference_key(reference)))
        return self.by_id[invoice_id] if invoice_id is not None else None

    def named_in(self, creditor_id: int, tokens: set[str]) -> list[InvoiceState]:
        """Invoices whose number or payment reference is one of the tokens, in id order."""
        ids = set()
        for token in tokens:
            for index in (self.by_number, self.by_reference):
                found = index.get((creditor_id, token)) or index.get((creditor_id, token.upper()))
                if found is not None:
                    ids.add(found)
        return [self.by_id[i] for i in sorted(ids)]

    def open_with(self, creditor_id: int, amount: int, currency: str, payer: str) -> list[InvoiceState]:
        """Open invoices in this currency whose balance is `amount` and whose customer is `payer` (a name key)."""
        found = []
        for invoice_id in sorted(self.by_balance.get((creditor_id, amount), ())):
            state = self.by_id[invoice_id]
            if state.is_open and state.balance == amount and state.currency == currency \
                    and name_key(state.customer_name) == payer:
                found.append(state)
        return found


@dataclass(frozen=True, slots=True)
class Decision:
    status: str  # EntryStatus
    invoice: InvoiceState | None = None  # the invoice to settle (MATCHED)
    reason: str | None = None  # KeptReason (UNMATCHED, AMBIGUOUS)
    details: dict | None = None


def decide(credit: Credit, creditor_id: int, book: InvoiceBook) -> Decision | None:
    """The invoice this credit's reference, or the invoice number in its text, names, or why it is
    kept for an agent; None when neither says anything: then `decide_by_amount`."""
    if credit.reference:
        invoice = book.with_reference(creditor_id, credit.reference)
        if invoice is None:
            return kept(KeptReason.REFERENCE_NOT_FOUND, reference=reference_key(credit.reference))
        return _settle_if_same_currency(credit, invoice)
    named = book.named_in(creditor_id, number_tokens(credit.remittance))
    if len(named) == 1:
        return _settle_if_same_currency(credit, named[0])
    if len(named) > 1:
        return ambiguous(named)
    return None


def decide_by_amount(credit: Credit, creditor_id: int, book: InvoiceBook) -> Decision:
    """The one open invoice whose balance is the amount and whose customer is the payer, or why
    the credit is kept for an agent."""
    payer = name_key(credit.payer_name)
    candidates = book.open_with(creditor_id, credit.amount, credit.currency, payer) if payer else []
    if len(candidates) == 1:
        return Decision(EntryStatus.MATCHED, invoice=candidates[0])
    if len(candidates) > 1:
        return ambiguous(candidates)
    return kept(KeptReason.NO_MATCH)


def _settle_if_same_currency(credit: Credit, invoice: InvoiceState) -> Decision:
    if credit.currency != invoice.currency:
        return kept(KeptReason.CURRENCY_MISMATCH, currency=credit.currency, invoice=invoice.number,
                    invoice_currency=invoice.currency)
    return Decision(EntryStatus.MATCHED, invoice=invoice)


def kept(reason: str, **details) -> Decision:
    return Decision(EntryStatus.UNMATCHED, reason=reason, details=details)


def ambiguous(candidates: list[InvoiceState]) -> Decision:
    return Decision(EntryStatus.AMBIGUOUS, reason=KeptReason.SEVERAL_INVOICES,
                    details={"invoices": [c.number for c in candidates]})
