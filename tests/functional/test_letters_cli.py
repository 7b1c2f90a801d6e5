"""`flask letters batch`: one PDF per letter due and a manifest (page count and checksum per file) for a
print-and-mail service, the letters marked printed, all in one transaction; a second run prints
nothing new and says so; a later run of the same day makes the batch's next part; --reprint-batch
writes a lost folder again, byte for byte; a folder that cannot be written to is refused."""

from __future__ import annotations

import csv
import hashlib
import io
import os
import shutil
from datetime import timedelta

import pypdf
import pytest
from sqlalchemy import select

from app.dunning.letters import batch as batch_module
from app.dunning.letters.models import LetterPrint
from app.dunning.models import Letter, LetterStatus
from app.extensions import db
from app.links import codes
from app.links.models import AccessLink
from tests.functional.dunning.letters import letter_bills
from tests.unit.dunning.conftest import TODAY, creditor_with_plan

DAY = TODAY.isoformat()


def cli(app, *args):
    return app.test_cli_runner().invoke(args=["letters", *args])


def decide(app, creditor=None, plan=None, **kw):
    """A creditor (Norway's plan) whose customer has a letter decided today."""
    with app.test_request_context():
        if creditor is None:
            creditor, plan = creditor_with_plan("NO", "NO")
        invoices = letter_bills(creditor, plan, **kw)
        db.session.commit()
    return creditor, plan, invoices


def manifest_rows(folder, part=1):
    with open(folder / f"manifest-{DAY}-{part}.csv", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def listing(folder):
    return {path.name: path.stat().st_mtime_ns for path in folder.iterdir()}


def test_a_batch_writes_each_letter_and_a_manifest_marks_them_printed_and_runs_once(app, session, tmp_path):
    creditor, plan, _first = decide(app)
    _c, _p, _second = decide(app, creditor, plan, count=2, ref="C-2")
    out = tmp_path / "print" / "2026-12-08"  # made when missing
    result = cli(app, "batch", "--date", DAY, "--out", str(out))
    assert result.exit_code == 0, result.output
    rows = manifest_rows(out)
    pages = sum(int(row["pages"]) for row in rows)
    assert f"Batch {DAY}, part 1: 2 letter(s) printed, {pages} page(s)" in result.output
    assert [row["customer"] for row in rows] == ["C-1", "C-2"]
    assert list(rows[0]) == ["letter_id", "creditor", "customer", "country", "pages", "sha256", "file"]
    letters = {letter.id: letter for letter in db.session.scalars(select(Letter))}
    for row in rows:
        content = (out / row["file"]).read_bytes()
        assert hashlib.sha256(content).hexdigest() == row["sha256"]
        assert len(pypdf.PdfReader(io.BytesIO(content)).pages) == int(row["pages"])
        assert (row["creditor"], row["country"]) == (creditor.slug, "NO")
        letter = letters[int(row["letter_id"])]
        assert (letter.status, letter.batch, letter.pages, letter.sha256) == (
            "printed", TODAY, int(row["pages"]), row["sha256"])
        assert letter.printed_at is not None
    assert sorted(listing(out)) == sorted([row["file"] for row in rows] + [f"manifest-{DAY}-1.csv"])  # no leftovers

    before = listing(out)
    again = cli(app, "batch", "--date", DAY, "--out", str(out))
    assert again.exit_code == 0 and f"Nothing new to print for {DAY}" in again.output
    assert "The batch has 2 letter(s)" in again.output and listing(out) == before

    decide(app, creditor, plan, ref="C-3")  # decided later the same day: the batch's second part
    later = cli(app, "batch", "--date", DAY, "--out", str(out))
    assert later.exit_code == 0 and "part 2: 1 letter(s) printed" in later.output
    assert [row["customer"] for row in manifest_rows(out, 2)] == ["C-3"]
    assert all(listing(out)[name] == mtime for name, mtime in before.items())  # part 1 untouched


def test_a_lost_folder_is_written_again_with_the_same_bytes_and_no_new_links(app, session, tmp_path):
    creditor, plan, _invoices = decide(app)
    decide(app, creditor, plan, ref="C-2", count=3)
    out = tmp_path / "out"
    assert cli(app, "batch", "--date", DAY, "--out", str(out)).exit_code == 0
    printed = {name: (out / name).read_bytes() for name in os.listdir(out)}
    links = db.session.scalar(select(db.func.count()).select_from(AccessLink))
    shutil.rmtree(out)
    result = cli(app, "batch", "--date", DAY, "--out", str(out), "--reprint-batch")
    assert result.exit_code == 0, result.output
    assert "2 letter(s) in 1 part(s), 2 with the checksum they were printed with, 0 changed" in result.output
    assert {name: (out / name).read_bytes() for name in os.listdir(out)} == printed
    assert db.session.scalar(select(db.func.count()).select_from(AccessLink)) == links
    with app.test_request_context():
        for link in db.session.scalars(select(AccessLink).where(AccessLink.code_hash.is_not(None))):
            assert codes.resolve_code(codes.code_of(link)).ok  # the copies' codes are the live ones

    nothing = cli(app, "batch", "--date", (TODAY + timedelta(days=1)).isoformat(), "--out", str(out),
                  "--reprint-batch")
    assert nothing.exit_code == 1 and "No batch for 2026-12-09" in nothing.output


def test_a_folder_that_cannot_be_written_to_is_refused_and_nothing_is_printed(app, session, tmp_path):
    decide(app)
    a_file = tmp_path / "not-a-folder"
    a_file.write_text("x")
    for out, words in ((a_file, "is not a folder"), (a_file / "below", "cannot be made")):
        result = cli(app, "batch", "--date", DAY, "--out", str(out))
        assert result.exit_code == 1 and words in result.output and "nothing was printed" in result.output
    if os.geteuid() != 0:  # root writes anywhere: the permission test needs another user
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o555)
        result = cli(app, "batch", "--date", DAY, "--out", str(locked))
        assert result.exit_code == 1 and "is not writable" in result.output
    assert db.session.scalars(select(Letter.status)).all() == [LetterStatus.PENDING]
    assert cli(app, "batch", "--date", "31.02.2026", "--out", str(tmp_path)).exit_code == 2  # not a date


def test_a_failure_half_way_leaves_no_file_and_no_letter_printed(app, session, tmp_path, monkeypatch):
    creditor, plan, _invoices = decide(app)
    decide(app, creditor, plan, ref="C-2")
    real = batch_module.render_letter
    calls = []

    def breaks_on_the_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("the printer's font is gone")
        return real(*args, **kwargs)

    monkeypatch.setattr(batch_module, "render_letter", breaks_on_the_second)
    out = tmp_path / "out"
    result = cli(app, "batch", "--date", DAY, "--out", str(out))
    assert result.exit_code == 1 and isinstance(result.exception, RuntimeError)
    assert list(out.iterdir()) == []
    assert set(db.session.scalars(select(Letter.status))) == {LetterStatus.PENDING}
    assert db.session.scalars(select(LetterPrint)).all() == []


@pytest.mark.parametrize("slug_of", [lambda creditor: creditor.slug, lambda _creditor: "nobody"])
def test_one_creditors_letters(app, session, tmp_path, slug_of):
    creditor, _plan, _invoices = decide(app)
    other, _other_plan, _other_invoices = decide(app)
    result = cli(app, "batch", "--date", DAY, "--out", str(tmp_path), "--creditor", slug_of(creditor))
    if slug_of(creditor) == "nobody":
        assert result.exit_code == 1 and "No creditor with slug 'nobody'" in result.output
        return
    assert result.exit_code == 0 and "1 letter(s) printed" in result.output
    assert [row["creditor"] for row in manifest_rows(tmp_path)] == [creditor.slug]
    assert db.session.scalar(select(Letter.status).where(Letter.creditor_id == other.id)) == LetterStatus.PENDING


def test_a_batch_written_again_after_a_letter_was_printed_again_says_which_copy_not_to_post(app, session, tmp_path):
    decide(app)
    assert cli(app, "batch", "--date", DAY, "--out", str(tmp_path / "first")).exit_code == 0
    with app.test_request_context():
        batch_module.request_reprint(db.session.scalars(select(Letter)).one(), actor="agent:1")
        db.session.commit()
    tomorrow = (TODAY + timedelta(days=1)).isoformat()
    assert cli(app, "batch", "--date", tomorrow, "--out", str(tmp_path / "second")).exit_code == 0
    again = cli(app, "batch", "--date", DAY, "--out", str(tmp_path / "again"), "--reprint-batch")
    assert again.exit_code == 0 and "1 with the checksum they were printed with" in again.output
    assert "1 of them carry an address that no longer opens the bill" in again.output
