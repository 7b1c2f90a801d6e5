"""`flask invoices import`: load invoices from a JSON Lines file, all or nothing; `flask invoices
remind`: record a reminder the creditor sent.

Every line is tried, each in its own savepoint, so that one run reports every bad line;
if any line is bad the whole file is rolled back and nothing is written.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path

import click
from flask.cli import AppGroup

from app.billing.models import REMINDER_CHANNELS
from app.billing.services import find_invoice, import_invoice, record_reminder
from app.commands import cli_transaction, format_errors
from app.creditors.commands import creditor_or_fail
from app.creditors.models import Creditor
from app.errors import Conflict, InvalidData
from app.extensions import db

ACTOR = "cli"


@dataclass
class ImportReport:
    created: int = 0
    unchanged: int = 0
    problems: list[str] = field(default_factory=list)  # "line 3: …", one entry per bad line

    @property
    def total(self) -> int:
        return self.created + self.unchanged + len(self.problems)


def read_rows(path: Path) -> list[tuple[int, bytes]]:
    """(line number, raw bytes) of every line that is not blank; numbers count blank lines too."""
    with path.open("rb") as handle:
        return [(number, raw) for number, raw in enumerate(handle, start=1) if raw.strip()]


def decode_row(raw: bytes, first: bool) -> object:
    """One line's JSON value, or InvalidData saying why it is not JSON."""
    try:
        text = raw.decode("utf-8-sig" if first else "utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidData({"line": f"not UTF-8 text (byte {exc.start + 1})"}) from None
    try:
        return json.loads(text.strip())
    except json.JSONDecodeError as exc:
        raise InvalidData({"line": f"not valid JSON: {exc.msg} (column {exc.colno})"}) from None
    except RecursionError:
        raise InvalidData({"line": "not valid JSON: nested too deeply"}) from None


def import_row(creditor: Creditor, raw: bytes, first: bool) -> bool:
    """Import one line in a savepoint (a bad line leaves nothing behind); True if created."""
    payload = decode_row(raw, first)
    with db.session.begin_nested():
        _invoice, created = import_invoice(creditor, payload, actor=ACTOR)  # dunning hears `invoice_imported`
    return created


def describe_problem(number: int, exc: InvalidData | Conflict) -> str:
    """'line 3: not valid JSON …', or 'line 3:' followed by every field's problem, one per line."""
    if isinstance(exc, Conflict):
        return f"line {number}: {exc}"
    if list(exc.errors) == ["line"]:
        return f"line {number}: {exc.errors['line']}"
    return f"line {number}:\n{format_errors(exc.errors)}"


def import_rows(creditor: Creditor, rows: list[tuple[int, bytes]], label: str) -> ImportReport:
    """Try every row, behind a progress bar; count what was created and collect every problem."""
    report = ImportReport()
    # Progress is a remark, not output: stderr, like the problems; stdout keeps the summary.
    with click.progressbar(rows, label=label, show_pos=True, file=sys.stderr) as bar:
        for number, raw in bar:
            try:
                created = import_row(creditor, raw, first=number == 1)
            except (InvalidData, Conflict) as exc:
                report.problems.append(describe_problem(number, exc))
            else:
                if created:
                    report.created += 1
                else:
                    report.unchanged += 1
    return report


@click.group(cls=AppGroup, help="Import invoices; record the reminders sent for them.")
def invoices():
    pass


@invoices.command(
    "import",
    help="Import invoices from FILE, one JSON object per line in the API's invoice schema "
    "(see docs/api.md); blank lines are skipped. All or nothing: every line is checked and every "
    "bad line reported with its number; if any line is bad, nothing from the file is written. "
    "Importing the same invoice again leaves it unchanged.",
)
@click.argument("file", type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path))
@click.option("--creditor", "slug", required=True, help="Slug of the creditor the invoices belong to.")
def import_invoices(file: Path, slug: str):
    creditor = creditor_or_fail(slug)
    rows = read_rows(file)
    try:
        report = import_rows(creditor, rows, label=f"Importing {file.name}")
    except BaseException:
        db.session.rollback()
        raise
    if report.problems:
        db.session.rollback()
        for problem in report.problems:
            click.echo(problem, err=True)
        bad = len(report.problems)
        raise click.ClickException(
            f"{bad} of {report.total} invoice line{'s' if report.total != 1 else ''} in {file.name} "
            f"{'is' if bad == 1 else 'are'} bad; nothing was imported."
        )
    db.session.commit()
    click.echo(f"{file.name}: created {report.created}, unchanged {report.unchanged}.")


@invoices.command("remind", help="Record a reminder your dunning system sent for invoice NUMBER (the API's "
                                 "POST /invoices/{number}/reminders). --final marks the last one before debt "
                                 "collection.")
@click.argument("number")
@click.option("--creditor", "slug", required=True)
@click.option("--channel", type=click.Choice(REMINDER_CHANNELS), required=True)
@click.option("--final", is_flag=True, help="The final reminder: the count of days to the hand-off starts.")
@click.option("--sent-at", "sent_at", type=click.DateTime(["%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"]),
              help="When it was sent, in UTC (default: now).")
def remind(number: str, slug: str, channel: str, final: bool, sent_at):
    creditor = creditor_or_fail(slug)
    invoice = find_invoice(creditor, number)
    if invoice is None:
        raise click.ClickException(f"{creditor.slug} has no invoice {number!r}.")
    with cli_transaction("Reminder not recorded"):
        reminder, _created = record_reminder(
            invoice, channel=channel, final=final, actor=ACTOR,
            sent_at=sent_at.replace(tzinfo=UTC) if sent_at else None)
    click.echo(f"{'Final reminder' if reminder.final else 'Reminder'} of {number} by {channel} recorded "
               f"({reminder.sent_at:%Y-%m-%d %H:%M} UTC).")
