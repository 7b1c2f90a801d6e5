"""Each printing of a letter: the batch it went in (its date and the run's part), its link (a short
code, derived again from the link when the same file is written again: never stored), the PDF's
pages and SHA-256, its file name in the batch folder, and what it said (`facts`, the snapshot the
PDF is made from, so that the same file can be made again whatever happened to the bills since)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Date, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.dunning.models import Letter
from app.extensions import Model
from app.models import UTCDateTime, utcnow


class LetterPrint(Model):
    __tablename__ = "letter_prints"
    __table_args__ = (
        Index("ix_letter_prints_letter_id", "letter_id"),
        Index("ix_letter_prints_batch", "batch", "part"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    creditor_id: Mapped[int] = mapped_column(ForeignKey("creditors.id", ondelete="CASCADE"))
    letter_id: Mapped[int] = mapped_column(ForeignKey("letters.id", ondelete="CASCADE"))
    link_id: Mapped[int | None] = mapped_column(ForeignKey("access_links.id", ondelete="SET NULL"))
    batch: Mapped[date] = mapped_column(Date)  # the batch's date: the letter's date
    part: Mapped[int] = mapped_column(Integer, default=1)  # the batch's first run, second run...
    locale: Mapped[str] = mapped_column(String(8))
    pages: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    file_name: Mapped[str] = mapped_column(String(120))
    facts: Mapped[dict] = mapped_column(JSON)
    printed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    letter: Mapped[Letter] = relationship()
