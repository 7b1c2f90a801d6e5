"""BankImport (one file, once) and BankEntry (one incoming credit, matched or kept for an agent)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models import UTCDateTime, utcnow


class EntryStatus:
    MATCHED = "matched"  # settled against an invoice
    UNMATCHED = "unmatched"  # no invoice found: an agent decides
    AMBIGUOUS = "ambiguous"  # several invoices fit: an agent decides, nothing is guessed
    RESOLVED = "resolved"  # an agent settled or returned it by hand

    ALL = (MATCHED, UNMATCHED, AMBIGUOUS, RESOLVED)
    OPEN = (UNMATCHED, AMBIGUOUS)


class BankImport(db.Model):
    """One imported file. Its SHA-256 is unique: importing the same file twice changes nothing."""

    __tablename__ = "bank_imports"

    id: Mapped[int] = mapped_column(primary_key=True)
    filename: Mapped[str] = mapped_column(String(300))
    file_format: Mapped[str] = mapped_column(String(20))  # "camt.053", "camt.054", "ocr"
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    entries: Mapped[int] = mapped_column(Integer, default=0)
    matched: Mapped[int] = mapped_column(Integer, default=0)
    kept: Mapped[int] = mapped_column(Integer, default=0)  # unmatched or ambiguous
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class BankEntry(db.Model):
    """One credit to a creditor's account. (account, bank reference) is unique: an entry seen in
    a camt.054 notification and again in the day's camt.053 is recorded once."""

    __tablename__ = "bank_entries"
    __table_args__ = (
        UniqueConstraint("account", "bank_ref"),
        Index("ix_bank_entries_creditor_id_status", "creditor_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    import_id: Mapped[int] = mapped_column(ForeignKey("bank_imports.id", ondelete="CASCADE"), index=True)
    creditor_id: Mapped[int | None] = mapped_column(ForeignKey("creditors.id", ondelete="CASCADE"))
    account: Mapped[str] = mapped_column(String(34))  # IBAN or Norwegian account number, compact
    bank_ref: Mapped[str] = mapped_column(String(120))  # the bank's unique id of the entry
    booked_on: Mapped[date] = mapped_column(Date)
    amount: Mapped[int] = mapped_column(BigInteger)  # minor units
    currency: Mapped[str] = mapped_column(String(3))
    reference: Mapped[str | None] = mapped_column(String(35))  # structured: KID or RF
    remittance: Mapped[str | None] = mapped_column(String(500))  # unstructured text
    payer_name: Mapped[str | None] = mapped_column(String(140))
    status: Mapped[str] = mapped_column(String(20))
    note: Mapped[str | None] = mapped_column(String(300))  # why it was kept, for the agent
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id", ondelete="SET NULL"))
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("payments.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
