"""`flask bank import FILE` and `flask bank unmatched`: settle bank transfers from the bank's files,
and list what is kept for an agent.

An import is one transaction, committed once at the end: a file is imported whole or not at all.
That holds for the largest files too (100,000 entries in a few seconds, see bench/bank_reconcile.py);
importing in chunks would leave a half-imported file behind a failure, whose SHA-256 says "done".
"""

from __future__ import annotations

from pathlib import Path

import click
from flask.cli import AppGroup
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError

from app.creditors.commands import creditor_or_fail
from app.creditors.models import Creditor
from app.extensions import db
from app.money import exponent, to_decimal
from app.payments.bank.models import BankEntry
from app.payments.bank.parsers import FORMATS, BankFileError
from app.payments.bank.services import ImportSummary, KeptEntry, import_bank_file, open_entries

KEPT_SHOWN = 20  # kept entries listed after an import; `flask bank unmatched` lists them all


@click.group(cls=AppGroup, help="Bank transfers: import bank files, list the entries kept for an agent.")
def bank():
    pass


@bank.command(
    "import",
    help="Import a bank file: an ISO 20022 camt.053 statement or camt.054 notification (any version), "
    "or a Nets OCR giro file. Each credit is recorded once, settled against the invoice it pays (by "
    "KID or RF reference; without one, by the invoice number in the text, or by amount and the payer's "
    "name) or kept for an agent with the reason. All or nothing; importing the same file again changes nothing.",
)
@click.argument("file", type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path))
@click.option("--format", "file_format", type=click.Choice(FORMATS), default=None,
              help="The file's format, when detection by content (XML namespace, OCR start record) is not wanted.")
def import_file(file: Path, file_format: str | None):
    data = file.read_bytes()
    try:
        summary = import_bank_file(data, filename=file.name, file_format=file_format)
        db.session.commit()
    except BankFileError as exc:
        db.session.rollback()
        raise click.ClickException(f"{file.name} was not imported: {exc}. Nothing was changed.") from None
    except IntegrityError:
        db.session.rollback()
        raise click.ClickException(
            f"{file.name} was not imported: another import recorded some of the same entries at the same time. "
            "Nothing was changed; run the command again."
        ) from None
    except OperationalError as exc:  # a deadlock with another import, a busy SQLite database
        db.session.rollback()
        raise click.ClickException(
            f"{file.name} was not imported: the database refused ({type(exc.orig).__name__}: {exc.orig}). "
            "Nothing was changed; run the command again."
        ) from None
    except BaseException:
        db.session.rollback()
        raise
    click.echo(describe_import(summary))


def describe_import(summary: ImportSummary) -> str:
    """The summary printed after an import: counts, the amount settled, what was kept and why."""
    name = f"{summary.filename} ({summary.file_format})"
    if summary.already_imported:
        when = f" on {summary.imported_at:%Y-%m-%d %H:%M} UTC" if summary.imported_at else ""
        return f"{name} was imported before{when}; nothing was changed."
    settled = ", ".join(money(amount, currency)
                        for currency, amount in sorted(summary.matched_amounts.items())) or "nothing"
    lines = [
        f"{name}: {_count(summary.entries, 'credit')}.",
        f"  matched and settled: {summary.matched} ({settled})",
        f"  duplicates (recorded before): {summary.duplicates}",
        f"  kept for an agent: {len(summary.kept)}",
    ]
    lines += [f"    {reason}: {count}" for reason, count in sorted(summary.kept_by_reason.items())]
    if summary.ignored:
        lines.append(f"  ignored (debits, reversals, not booked): {summary.ignored}")
    if summary.kept:
        lines.append("Kept for an agent:")
        lines += [f"  {_kept_line(entry)}" for entry in summary.kept[:KEPT_SHOWN]]
        if len(summary.kept) > KEPT_SHOWN:
            lines.append(f"  … and {len(summary.kept) - KEPT_SHOWN} more: flask bank unmatched")
    return "\n".join(lines)


def money(amount: int, currency: str) -> str:
    """'NOK 1,234.50': the command line speaks English, like every other command."""
    return f"{currency} {to_decimal(amount, currency):,.{exponent(currency)}f}"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _kept_line(entry: KeptEntry) -> str:
    return " ".join(filter(None, (
        entry.booked_on.isoformat(), money(entry.amount, entry.currency), entry.payer_name,
        f"ref {entry.reference}" if entry.reference else None,
        f"“{entry.remittance}”" if entry.remittance and not entry.reference else None,
    ))) + f": {entry.note}"


@bank.command("unmatched", help="List the bank entries kept for an agent (unmatched or ambiguous), oldest first.")
@click.option("--creditor", "slug", default=None, help="Only this creditor's entries (by slug). "
              "Without it, every creditor's, and those of accounts no creditor has.")
def unmatched(slug: str | None):
    creditor_id = creditor_or_fail(slug).id if slug else None
    entries = open_entries(creditor_id)
    if not entries:
        click.echo("No bank entries are waiting for an agent.")
        return
    slugs = dict(db.session.execute(select(Creditor.id, Creditor.slug)).all())
    for entry in entries:
        click.echo(_entry_line(entry, slugs.get(entry.creditor_id, "-")))
        click.echo(f"    {entry.note}")
    click.echo(f"{len(entries)} {'entry' if len(entries) == 1 else 'entries'} waiting for an agent.")


def _entry_line(entry: BankEntry, creditor: str) -> str:
    return "  ".join(filter(None, (
        f"#{entry.id}", entry.booked_on.isoformat(), money(entry.amount, entry.currency),
        entry.status, creditor, entry.account, entry.payer_name,
        f"ref {entry.reference}" if entry.reference else None,
        f"“{entry.remittance}”" if entry.remittance else None,
    )))
