"""`flask letters batch --date D --out DIR`: the day's letters as PDFs and a manifest for a print-and-mail
service, the letters marked printed, in one transaction; `--reprint-batch` writes a batch's files
again from what was stored (the folder was lost), the same bytes where nothing changed since."""

from __future__ import annotations

import csv
import io
import os
import tempfile
from datetime import date
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

from app.core.dates import parse_date
from app.creditors.commands import creditor_or_fail
from app.dunning.letters import batch as letters
from app.dunning.letters.models import LetterPrint
from app.extensions import db

MANIFEST_FIELDS = ("letter_id", "creditor", "customer", "country", "pages", "sha256", "file")


def _date(value: str) -> date:
    parsed = parse_date(value)
    if parsed is None:
        raise click.BadParameter(f"{value!r} is not a date (2026-12-31)", param_hint="--date")
    return parsed


def _writable(folder: Path) -> Path:
    """The folder, made if missing; a clear refusal when it cannot be written to (nothing printed)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise click.ClickException(f"--out {folder} is not a folder; nothing was printed.") from None
    except OSError as exc:
        raise click.ClickException(f"--out {folder} cannot be made ({exc.strerror}); nothing was printed.") from None
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise click.ClickException(f"--out {folder} is not writable ({exc.strerror}); nothing was printed.") from None
    return folder


def manifest_name(on: date, part: int) -> str:
    return f"manifest-{on.isoformat()}-{part}.csv"


def manifest(prints: list[tuple[LetterPrint, str]]) -> str:
    """The manifest's CSV: a row per file, with its checksum (the file's as written)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=MANIFEST_FIELDS, lineterminator="\n")
    writer.writeheader()
    for printed, checksum in prints:
        row = letters.manifest_row(printed)
        writer.writerow({**row, "sha256": checksum})
    return out.getvalue()


@click.group("letters", cls=AppGroup, help="Letters: print batches for a print-and-mail service.")
def letters_group():
    pass


@letters_group.command("batch", help="Print the day's letters (one PDF each) with a manifest CSV, and mark them "
                                     "printed. Idempotent: a second run prints only letters due since.")
@click.option("--date", "on", required=True, help="The batch's day: the letters' date (2026-12-31).")
@click.option("--out", "out", required=True, type=click.Path(path_type=Path),
              help="The folder for the PDFs and the manifest (made if missing).")
@click.option("--creditor", "slug", help="Only this creditor's letters.")
@click.option("--reprint-batch", "again", is_flag=True,
              help="Write the batch's files and manifests again from the stored letters (the folder was lost): "
                   "no new letters, no new links.")
def batch(on: str, out: Path, slug: str | None, again: bool) -> None:
    day = _date(on)
    folder = _writable(out)
    creditor_id = creditor_or_fail(slug).id if slug else None
    if again:
        _reprint(day, folder, creditor_id)
    else:
        _print(day, folder, creditor_id)


def _print(day: date, folder: Path, creditor_id: int | None) -> None:
    config = current_app.config
    parts: list[Path] = []  # files written under a temporary name, renamed once the transaction commits
    printed: list[tuple[LetterPrint, str]] = []
    withdrawn = pages = 0
    try:
        for result in letters.print_batch(day, base_url=config["PORTAL_BASE_URL"],
                                          ttl_days=config["LINK_DEFAULT_TTL_DAYS"], creditor_id=creditor_id):
            if isinstance(result, letters.Withdrawn):
                withdrawn += 1
                continue
            part = folder / f".{result.print.file_name}.part"
            part.write_bytes(result.pdf)
            parts.append(part)
            printed.append((result.print, result.print.sha256))
            pages += result.print.pages
            if len(printed) % 50 == 0:
                click.echo(f"  {len(printed)} letters printed…")
        if not printed and not withdrawn:
            db.session.rollback()
            existing = letters.batch_prints(day, creditor_id)
            click.echo(f"Nothing new to print for {day.isoformat()}: no letter is due. The batch has "
                       f"{len(existing)} letter(s); --reprint-batch writes their files again.")
            return
        name = None
        if printed:
            name = manifest_name(day, printed[0][0].part)
            manifest_part = folder / f".{name}.part"
            manifest_part.write_text(manifest(printed), encoding="utf-8")
            parts.append(manifest_part)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        for part in parts:
            part.unlink(missing_ok=True)
        raise
    for part in parts:
        os.replace(part, folder / part.name[1:].removesuffix(".part"))
    if printed:
        click.echo(f"Batch {day.isoformat()}, part {printed[0][0].part}: {len(printed)} letter(s) printed, "
                   f"{pages} page(s), to {folder}; manifest {name}.")
    if withdrawn:
        click.echo(f"{withdrawn} letter(s) withdrawn: every bill in them was settled or paused since.")


def _reprint(day: date, folder: Path, creditor_id: int | None) -> None:
    base_url = current_app.config["PORTAL_BASE_URL"]
    by_part: dict[int, list[tuple[LetterPrint, str]]] = {}
    same = changed = missing = dead = 0
    for copy in letters.reprint_batch(day, base_url=base_url, creditor_id=creditor_id):
        if copy.pdf is None:
            missing += 1
            click.echo(f"  letter {copy.print.letter_id}: cannot be made again (its link or its signing key is gone).")
            continue
        (folder / copy.print.file_name).write_bytes(copy.pdf)
        dead += not copy.live
        checksum = copy.print.sha256 if copy.same else letters.checksum(copy.pdf)
        by_part.setdefault(copy.print.part, []).append((copy.print, checksum))
        if copy.same:
            same += 1
        else:
            changed += 1
            click.echo(f"  letter {copy.print.letter_id}: written again, but not the same bytes as printed "
                       "(the template, logo or translations changed): the manifest has the new checksum.")
    db.session.rollback()  # nothing to keep: reading only
    if not by_part and not missing:
        raise click.ClickException(f"No batch for {day.isoformat()}: nothing was printed that day.")
    for part, prints in sorted(by_part.items()):
        (folder / manifest_name(day, part)).write_text(manifest(prints), encoding="utf-8")
    click.echo(f"Batch {day.isoformat()} written again to {folder}: {same + changed} letter(s) in "
               f"{len(by_part)} part(s), {same} with the checksum they were printed with, {changed} changed, "
               f"{missing} could not be made.")
    if dead:
        click.echo(f"{dead} of them carry an address that no longer opens the bill (printed again since, revoked "
                   "or expired): do not post those.")
    if missing:
        raise SystemExit(1)
