"""Bank reconciliation benchmark: import a camt.053 of 100,000 credits against a seeded database.

Seeds one creditor with its customers and open invoices into a fresh database (a temporary
SQLite file, or a temporary database on the PostgreSQL server of `--database`), generates a
camt.053 statement whose credits are mostly KID references to those invoices, some to be found
by amount and payer's name, some by the invoice number in the text, and some that match
nothing. Then times what `flask bank import` does: read the file, parse, match, settle, write
and commit (`import_bank_file` and the commit), and checks the outcome against what was
generated. It is a report: the exit code is 0 even when the target is missed, and non-zero
only when the setup fails or the outcome is wrong. See bench/README.md.

    .venv/bin/python bench/bank_reconcile.py [--entries N] [--database postgresql://…] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import platform
import pstats
import resource
import secrets
import shutil
import sqlite3
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import date, timedelta
from importlib.metadata import version
from pathlib import Path

from flask_migrate import upgrade
from sqlalchemy import func, insert, make_url, select, text

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # run as a script from anywhere: `import app` must work

from app import create_app  # noqa: E402
from app.billing.models import Customer, Invoice, InvoiceLine, InvoiceStatus  # noqa: E402
from app.creditors.references import make_reference  # noqa: E402
from app.creditors.services import CreditorInput, create_creditor  # noqa: E402
from app.extensions import db  # noqa: E402
from app.models import utcnow  # noqa: E402
from app.payments.bank.models import BankEntry, KeptReason  # noqa: E402
from app.payments.bank.parsers import parse_bank_file  # noqa: E402
from app.payments.bank.services import import_bank_file  # noqa: E402
from app.payments.models import Payment  # noqa: E402
from bench.harness import main_in_workdir  # noqa: E402
from tests.support.bankfiles import Entry, Tx, camt053  # noqa: E402

TARGET_SECONDS = 10.0
ACCOUNT = "15032080119"
FIRST_NAMES = ("Kari", "Ola", "Ingrid", "Lars", "Åse", "Øystein", "Sofie", "Jonas", "Marte", "Håkon")
LAST_NAMES = ("Nordmann", "Hansen", "Johansen", "Olsen", "Larsen", "Berg", "Dahl", "Bakken", "Strøm", "Lie")


@dataclass
class Plan:
    """How many credits of each kind the statement holds; what the import must find."""

    by_reference: int
    by_name: int
    by_text: int
    unknown_reference: int
    no_match: int

    @classmethod
    def for_entries(cls, entries: int) -> Plan:
        by_name, by_text = entries * 5 // 100, entries * 2 // 100
        unknown_reference = entries * 25 // 1000
        no_match = entries * 25 // 1000
        return cls(entries - by_name - by_text - unknown_reference - no_match, by_name, by_text,
                   unknown_reference, no_match)

    @property
    def entries(self) -> int:
        return self.by_reference + self.by_name + self.by_text + self.unknown_reference + self.no_match

    @property
    def matched(self) -> int:
        return self.by_reference + self.by_name + self.by_text

    @property
    def kept(self) -> int:
        return self.unknown_reference + self.no_match

    @property
    def invoices(self) -> int:
        return self.matched + self.entries // 20  # and 5 % that nobody pays


# --- database --------------------------------------------------------------------------------


def fresh_postgres(server_url: str) -> tuple[str, str]:
    """A new, empty database on the server of `server_url`: (its URL, its name). The database of
    `server_url` itself is not touched (the tests may be using it)."""
    import psycopg

    url = make_url(server_url.replace("postgres://", "postgresql://", 1))
    name = f"bank_bench_{secrets.token_hex(4)}"
    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return url.set(database=name).render_as_string(hide_password=False), name


def drop_postgres(server_url: str, name: str) -> None:
    import psycopg

    url = make_url(server_url.replace("postgres://", "postgresql://", 1))
    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _libpq(url) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def seed(plan: Plan) -> list[tuple[str, str, int, str]]:
    """One creditor, one customer and one open invoice for each credit that must match (and 5 %
    more); returns (invoice number, KID, balance, customer name) in creation order. Bulk inserts:
    seeding is not what is measured."""
    creditor = create_creditor(CreditorInput(
        slug="bench-bank", name="Bench Kraft AS", country="NO", default_locale="nb", currency="NOK",
        reference_scheme="kid_mod10", bank_account_no=ACCOUNT, support_email="help@bench.example",
    ))
    db.session.flush()
    now, today = utcnow(), date.today()
    invoices = []
    for i in range(plan.invoices):
        name = f"{FIRST_NAMES[i % 10]} {LAST_NAMES[i // 10 % 10]} {i:06d}"
        number = str(300000 + i)
        # Amounts for amount-and-name matching are unique (1,000,000 and up); the others repeat.
        by_name = plan.by_reference <= i < plan.by_reference + plan.by_name
        total = 1_000_000 + i if by_name else 10_000 + i * 37 % 900_000
        invoices.append((number, make_reference("kid_mod10", number), total, name))
    customers = [
        {"creditor_id": creditor.id, "external_ref": f"C{i}", "name": name, "kind": "consumer",
         "email": f"c{i}@example.test", "created_at": now, "updated_at": now}
        for i, (_n, _k, _t, name) in enumerate(invoices)
    ]
    for start in range(0, len(customers), 5000):
        db.session.execute(insert(Customer.__table__), customers[start:start + 5000])
    customer_ids = dict(db.session.execute(
        select(Customer.external_ref, Customer.id).where(Customer.creditor_id == creditor.id)).all())
    rows = [
        {"public_id": secrets.token_urlsafe(16), "creditor_id": creditor.id, "customer_id": customer_ids[f"C{i}"],
         "number": number, "issue_date": today - timedelta(days=20), "due_date": today - timedelta(days=5),
         "currency": "NOK", "payment_reference": kid, "status": InvoiceStatus.OPEN, "subtotal": total,
         "vat_total": 0, "total": total, "amount_paid": 0, "created_at": now, "updated_at": now}
        for i, (number, kid, total, _name) in enumerate(invoices)
    ]
    for start in range(0, len(rows), 5000):
        db.session.execute(insert(Invoice.__table__), rows[start:start + 5000])
    invoice_ids = db.session.execute(select(Invoice.id, Invoice.total).where(Invoice.creditor_id == creditor.id))
    lines = [
        {"invoice_id": invoice_id, "position": 1, "kind": "product", "description": "Electricity",
         "quantity": 1, "unit_price": total, "vat_rate": 0, "net": total, "vat": 0, "gross": total}
        for invoice_id, total in invoice_ids
    ]
    for start in range(0, len(lines), 5000):
        db.session.execute(insert(InvoiceLine.__table__), lines[start:start + 5000])
    db.session.commit()
    return invoices


def statement(plan: Plan, invoices: list[tuple[str, str, int, str]]) -> bytes:
    """The camt.053 (version 08): the credits of the plan, shuffled the same way every run."""
    entries, i = [], 0

    def entry(amount: int, **tx) -> None:
        entries.append(Entry([Tx(amount, ref=f"BANK{len(entries):09d}", **tx)]))

    for _number, kid, total, name in invoices[:plan.by_reference]:
        entry(total, reference=kid, payer=name)
    i = plan.by_reference
    for _number, _kid, total, name in invoices[i:i + plan.by_name]:
        first, last, serial = name.split(" ")
        entry(total, payer=f"{last.upper()} {first.upper()} {serial}")  # another order and case: the same name
    i += plan.by_name
    for number, _kid, total, _name in invoices[i:i + plan.by_text]:
        entry(total, ustrd=f"Faktura {number}, takk", payer="Someone Else")
    for n in range(plan.unknown_reference):
        entry(5000 + n, reference=make_reference("kid_mod10", str(900000 + n)), payer="Nobody Known")
    for n in range(plan.no_match):
        entry(7_777_777 + n, payer="Nobody Known", ustrd="Innbetaling")
    order = sorted(range(len(entries)), key=lambda k: (k * 7919) % len(entries))
    return camt053(ACCOUNT, [entries[k] for k in order], statement_id="BENCH-1")


# --- the run ---------------------------------------------------------------------------------


@dataclass
class Outcome:
    """One import, timed, and what it found and stored."""

    seconds: float
    cpu_seconds: float  # this process's CPU time (SQLite runs in it; PostgreSQL's server does not)
    child_cpu_seconds: float  # the child process that read the file
    commit_seconds: float
    matched: int
    kept: int
    duplicates: int
    kept_by_reason: dict[str, int]
    payments: int
    entries_stored: int
    paid_invoices: int


def make_app(url: str, workdir: Path):
    os.environ["PORTAL_INSTANCE_PATH"] = str(workdir / "instance")
    return create_app({
        "PORTAL_ENV": "development", "SECRET_KEY": secrets.token_urlsafe(48),
        "LINK_SIGNING_KEYS": [secrets.token_urlsafe(48)], "SQLALCHEMY_DATABASE_URI": url, "LOG_LEVEL": "WARNING",
    })


def parse_seconds(data: bytes, runs: int = 3) -> float:
    """Reading the file alone, in this process (the best of `runs`): what the import hands to a child."""
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        parse_bank_file(data)
        best = min(best, time.perf_counter() - started)
    return best


def measure(app, path: Path, profiler: cProfile.Profile | None) -> Outcome:
    """The import as `flask bank import` runs it (read, parse, match, settle, write, commit), timed."""
    with app.app_context():
        children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started, cpu_started = time.perf_counter(), time.process_time()
        if profiler:
            profiler.enable()
        summary = import_bank_file(path.read_bytes(), filename=path.name)
        committing = time.perf_counter()
        db.session.commit()
        if profiler:
            profiler.disable()
        seconds, commit_seconds = time.perf_counter() - started, time.perf_counter() - committing
        cpu_seconds = time.process_time() - cpu_started
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        child_cpu = (children.ru_utime + children.ru_stime) - (children_before.ru_utime + children_before.ru_stime)
        counts = (
            db.session.scalar(select(func.count()).select_from(Payment)),
            db.session.scalar(select(func.count()).select_from(BankEntry)),
            db.session.scalar(select(func.count()).select_from(Invoice).where(Invoice.status == InvoiceStatus.PAID)),
        )
        db.session.remove()
        db.engine.dispose()
    return Outcome(seconds, cpu_seconds, child_cpu, commit_seconds, summary.matched, len(summary.kept),
                   summary.duplicates, dict(summary.kept_by_reason), *counts)


def report(plan: Plan, outcomes: list[Outcome], parse_alone: float, database: str, size: int) -> bool:
    """Print the figures (the median run is judged) and check every run's outcome; True if all are right."""
    times = sorted(o.seconds for o in outcomes)
    median = statistics.median(times)
    typical = min(outcomes, key=lambda o: abs(o.seconds - median))
    ratio = median / TARGET_SECONDS
    print("Bank reconciliation benchmark")
    print(f"  database: {database}")
    print(f"  statement: camt.053.001.08, {plan.entries} credits, {size / 1e6:.1f} MB; {plan.invoices} open invoices")
    print(f"  plan: {plan.by_reference} by KID, {plan.by_name} by amount and name, {plan.by_text} by number in "
          f"the text, {plan.unknown_reference} unknown KIDs, {plan.no_match} matching nothing")
    fresh = database.startswith("SQLite")
    copies = "each on a fresh copy of the seeded database" if fresh else "on the seeded database"
    print(f"  runs: {len(outcomes)}, {copies}\n")
    print(f"import (read, parse, match, settle, write, commit), median  {median:6.2f} s  "
          f"{plan.entries / median:8.0f} entries/s")
    print(f"  runs                                    {', '.join(f'{t:.2f}' for t in times)} s")
    print(f"  CPU, this process (median run)          {typical.cpu_seconds:6.2f} s")
    print(f"  CPU, the child reading the file         {typical.child_cpu_seconds:6.2f} s")
    print(f"  the commit (median run)                 {typical.commit_seconds:6.2f} s")
    print(f"  reading the file alone, in-process      {parse_alone:6.2f} s (best of 3)")
    print(f"target <= {TARGET_SECONDS:.0f} s: ratio {ratio:.2f}  {'PASS' if ratio <= 1 else 'MISS'}\n")
    expected = [
        ("matched", "matched", plan.matched), ("kept for an agent", "kept", plan.kept),
        ("  reference not found", KeptReason.REFERENCE_NOT_FOUND, plan.unknown_reference),
        ("  no match", KeptReason.NO_MATCH, plan.no_match), ("duplicates", "duplicates", 0),
        ("payments stored", "payments", plan.matched), ("bank entries stored", "entries_stored", plan.entries),
        ("invoices now paid", "paid_invoices", plan.matched),
    ]
    print(f"{'outcome (every run)':<24} {'found':>8} {'generated':>10}")
    ok = True
    for label, name, wanted in expected:
        found = {o.kept_by_reason.get(name, 0) if name in KeptReason.values() else getattr(o, name) for o in outcomes}
        right = found == {wanted}
        ok &= right
        shown = "/".join(str(f) for f in sorted(found))
        print(f"{label:<24} {shown:>8} {wanted:>10}  {'ok' if right else 'WRONG'}")
    return ok


def print_environment(database_version: str, load_before: str) -> None:
    print("\nEnvironment")
    print(f"cpus            {os.cpu_count()} ({platform.machine()}, {platform.system()} {platform.release()})")
    print(f"load average    {load_before} before, {load_average()} after (1, 5, 15 min)")
    print(f"python          {platform.python_version()} ({sys.executable})")
    print(f"flask {version('flask')}, sqlalchemy {version('sqlalchemy')}, {database_version}")


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def parse_args(argv: list[str] | None = None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=100_000, help="credits in the statement (default 100000)")
    parser.add_argument("--runs", type=int, default=3, help="imports on fresh copies of the seeded SQLite "
                        "database, the median judged (default 3; PostgreSQL: 1)")
    parser.add_argument("--database", help="a PostgreSQL URL: the benchmark creates a temporary database on "
                        "that server (and drops it); default: a temporary SQLite file")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of the imports")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (and PostgreSQL database)")
    return parser.parse_args(argv)


def seed_database(app, plan: Plan, postgres: bool) -> tuple[list, str]:
    """Migrate and seed; (the invoices, the database's version)."""
    with app.app_context():
        upgrade()
        invoices = seed(plan)
        if postgres:
            db.session.execute(text("ANALYZE"))
            db.session.commit()
            found = f"postgresql {db.session.scalar(text('SHOW server_version'))}"
        else:
            found = f"sqlite {sqlite3.sqlite_version}"
        db.session.remove()
        db.engine.dispose()
    return invoices, found


def run(args, workdir: Path) -> bool:
    load_before = load_average()
    plan = Plan.for_entries(args.entries)
    pg_name, seeded = None, workdir / "seeded.db"
    if args.database:
        url, pg_name = fresh_postgres(args.database)
        shown, runs = f"PostgreSQL, temporary database {pg_name}", 1
    else:
        url, shown, runs = f"sqlite:///{seeded}", f"SQLite, temporary files in {workdir}", max(args.runs, 1)
    try:
        print(f"seeding {plan.invoices} invoices and writing the statement ...", file=sys.stderr, flush=True)
        invoices, database_version = seed_database(make_app(url, workdir), plan, bool(pg_name))
        path = workdir / "statement.xml"
        path.write_bytes(statement(plan, invoices))
        parse_alone = parse_seconds(path.read_bytes())
        profiler = cProfile.Profile() if args.profile else None
        outcomes = []
        for n in range(runs):
            print(f"importing, run {n + 1} of {runs} ...", file=sys.stderr, flush=True)
            if not pg_name:
                copy = workdir / f"run-{n}.db"
                shutil.copyfile(seeded, copy)
                url = f"sqlite:///{copy}"
            outcomes.append(measure(make_app(url, workdir), path, profiler))
            if not pg_name and not args.keep:
                copy.unlink()
        ok = report(plan, outcomes, parse_alone, shown, path.stat().st_size)
        print_environment(database_version, load_before)
        if profiler:
            print("\nProfile of the imports (cumulative, top 30):")
            pstats.Stats(profiler).sort_stats(os.environ.get("BENCH_PROFILE_SORT", "cumulative")).print_stats(
                os.environ.get("BENCH_PROFILE_FILTER", ""), int(os.environ.get("BENCH_PROFILE_LINES", "30")))
        return ok
    finally:
        if pg_name and not args.keep:
            drop_postgres(args.database, pg_name)


def main(argv: list[str] | None = None) -> int:
    return main_in_workdir(run, parse_args(argv), "bank-bench-")

if __name__ == "__main__":
    sys.exit(main())
