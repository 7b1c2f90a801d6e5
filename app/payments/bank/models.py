"""BankImport (one file, once) and BankEntry (one incoming credit, matched or kept for an agent)."""

from __future__ import annotations

from datetime import date, datetime
from enum import nonmember

from flask_babel import gettext as _
from sqlalchemy import JSON, BigInteger, CheckConstraint, Date, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.core.enums import Codes
from app.extensions import Model
from app.models import UTCDateTime, utcnow


class EntryStatus(Codes):
    MATCHED = "matched"  # settled against an invoice
    UNMATCHED = "unmatched"  # no invoice found: an agent decides
    AMBIGUOUS = "ambiguous"  # several invoices fit: an agent decides, nothing is guessed
    RESOLVED = "resolved"  # an agent settled or returned it by hand

    OPEN = nonmember((UNMATCHED, AMBIGUOUS))  # waiting for an agent


class KeptReason(Codes):
    """Why an entry was kept for an agent. Stored as a code with its facts (`BankEntry.details`) and
    put into words when shown, in the reader's language (`BankEntry.note`)."""

    UNKNOWN_ACCOUNT = "unknown_account"  # no creditor has the credited account
    SHARED_ACCOUNT = "shared_account"  # several creditors have it: which one is not guessed
    REFERENCE_NOT_FOUND = "reference_not_found"  # a structured reference no invoice of the creditor has
    CURRENCY_MISMATCH = "currency_mismatch"  # the invoice found is in another currency
    SEVERAL_INVOICES = "several_invoices"  # the text or amount and name fit more than one invoice
    NO_MATCH = "no_match"  # no reference, and nothing else points at exactly one invoice


def describe_reason(reason: str | None, details: dict | None) -> str:
    """The reason an entry was kept, in words for an agent, in the current locale."""
    d = details or {}
    if reason == KeptReason.UNKNOWN_ACCOUNT:
        return _("No creditor has the account %(account)s.", account=d.get("account", ""))
    if reason == KeptReason.SHARED_ACCOUNT:
        return _("Several creditors have the account %(account)s: %(creditors)s.",
                 account=d.get("account", ""), creditors=", ".join(d.get("creditors", ())))
    if reason == KeptReason.REFERENCE_NOT_FOUND:
        return _("No invoice of this creditor has the reference %(reference)s.", reference=d.get("reference", ""))
    if reason == KeptReason.CURRENCY_MISMATCH:
        return _("Paid in %(currency)s, but invoice %(invoice)s is in %(invoice_currency)s.",
                 currency=d.get("currency", ""), invoice=d.get("invoice", ""),
                 invoice_currency=d.get("invoice_currency", ""))
    if reason == KeptReason.SEVERAL_INVOICES:
        return _("Several invoices fit this payment: %(invoices)s.", invoices=", ".join(d.get("invoices", ())))
    if reason == KeptReason.NO_MATCH:
        return _("No reference, and no single open invoice fits the amount and the payer's name.")
    return reason or ""


class BankImport(Model):
    """One imported file. Its SHA-256 is unique: importing the same file twice changes nothing."""

    __tablename__ = "bank_imports"

    id: Mapped[int] = mapped_column(primary_key=True)
    filename: Mapped[str] = mapped_column(String(300))
    file_format: Mapped[str] = mapped_column(String(20))  # "camt.053", "camt.054", "ocr"
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    entries: Mapped[int] = mapped_column(Integer, default=0)  # credits in the file
    matched: Mapped[int] = mapped_column(Integer, default=0)
    kept: Mapped[int] = mapped_column(Integer, default=0)  # unmatched or ambiguous
    duplicates: Mapped[int] = mapped_column(Integer, default=0)  # credits recorded before (another file)
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class BankEntry(Model):
    """One credit to a creditor's account. (account, bank reference) is unique: an entry seen in
    a camt.054 notification and again in the day's camt.053 is recorded once."""

    __tablename__ = "bank_entries"
    __table_args__ = (
        UniqueConstraint("account", "bank_ref"),
        Index("ix_bank_entries_creditor_id_status", "creditor_id", "status"),
        CheckConstraint(EntryStatus.sql_in("status"), name="status"),
        CheckConstraint(KeptReason.sql_in("reason"), name="reason"),  # NULL when matched
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    import_id: Mapped[int] = mapped_column(ForeignKey("bank_imports.id", ondelete="CASCADE"), index=True)
    creditor_id: Mapped[int | None] = mapped_column(ForeignKey("creditors.id", ondelete="CASCADE"))
    # Compact; a Norwegian IBAN is stored as its 11-digit account number, so that a file naming
    # the account one way and a file naming it the other give the same key.
    account: Mapped[str] = mapped_column(String(34))
    bank_ref: Mapped[str] = mapped_column(String(120))  # the bank's unique id of the entry
    booked_on: Mapped[date] = mapped_column(Date)
    amount: Mapped[int] = mapped_column(BigInteger)  # minor units
    currency: Mapped[str] = mapped_column(String(3))
    reference: Mapped[str | None] = mapped_column(String(35))  # structured: KID or RF
    remittance: Mapped[str | None] = mapped_column(String(500))  # unstructured text
    payer_name: Mapped[str | None] = mapped_column(String(140))
    status: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(String(30))  # KeptReason code: why it was kept
    details: Mapped[dict | None] = mapped_column(JSON)  # the reason's facts (account, reference, invoice numbers)
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id", ondelete="SET NULL"))
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("payments.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Set when an agent settles a kept entry against an invoice, or records that it was sent back.
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    resolved_by: Mapped[str | None] = mapped_column(String(64))
    resolution: Mapped[str | None] = mapped_column(String(12))  # matched | returned
    resolution_note: Mapped[str | None] = mapped_column(String(500))

    @property
    def note(self) -> str:
        """Why the entry was kept for an agent, in the current locale ("" when it was matched)."""
        return describe_reason(self.reason, self.details)
