"""Webhook ingestion benchmark: signed simulator notifications into the real app on PostgreSQL.

Creates a PostgreSQL database of its own (default `bench_webhooks`, dropped at the end), runs the
migrations, seeds invoices of the three demo creditors, each with a live simulator attempt, and
serves the portal with gunicorn (sync workers). Client processes POST signed notifications, each
its own request, over several connections: first every payment's "processing", then every
"succeeded" (unique events: stored, applied, settled), then all of them again, shuffled, with fresh
signatures (duplicates). Prints events/s and latency per phase against the target of 500 unique
events/s, and the database's write counters around the duplicate phase: a duplicate costs no write.
It is a report: the exit code is 0 even when a target is missed; 2 when the setup fails.
See bench/README.md.

    .venv/bin/python bench/webhook_ingest.py [--quick] [--invoices N] [--database URL]
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import platform
import random
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from importlib.metadata import version
from pathlib import Path

import psycopg
from flask_migrate import upgrade
from sqlalchemy import event, func, make_url, select

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # run as a script from anywhere: `import app` must work

from app import create_app  # noqa: E402
from app.billing.models import Invoice  # noqa: E402
from app.billing.schemas import line_amounts  # noqa: E402
from app.billing.services import import_invoice  # noqa: E402
from app.config import normalise_database_url  # noqa: E402
from app.creditors.services import create_creditor  # noqa: E402
from app.demo import demo_creditors  # noqa: E402
from app.extensions import db  # noqa: E402
from app.payments.gateways.simulator import SIGNATURE_HEADER, sign  # noqa: E402
from app.payments.models import Payment, WebhookEvent  # noqa: E402
from app.payments.providers import simulator_for, simulator_secret  # noqa: E402
from app.payments.services import start_payment  # noqa: E402
from bench.harness import (  # noqa: E402
    SetupError,
    create_database,
    database_name,
    drop_database,
    free_port,
    start_gunicorn,
    stop,
    wait_until_up,
)

DEFAULT_DATABASE = "postgresql://postgres@127.0.0.1:5432/bench_webhooks"
TARGET_EVENTS_PER_SECOND = 500
WARMUP_INVOICES = 100
SEED_BATCH = 250

def stats_connect(url: str) -> psycopg.Connection:
    parsed = make_url(normalise_database_url(url))
    return psycopg.connect(
        host=parsed.host or "127.0.0.1", port=parsed.port or 5432, user=parsed.username, password=parsed.password,
        dbname=parsed.database, autocommit=True,
    )


@dataclass
class Counters:
    """What the database wrote, by PostgreSQL's own cumulative statistics.

    Per database, so exact for ours: rows inserted, updated and deleted (aborted ones included: an
    INSERT that fails on a unique key still leaves a dead row), commits, and the values taken from
    sequences. WAL and transaction ids are per server: other databases on it add to them."""

    tup_inserted: int
    tup_updated: int
    tup_deleted: int
    xact_commit: int
    xact_rollback: int
    table_ins: int  # user tables only (pg_stat_user_tables), the same rows as tup_inserted minus catalogs
    table_upd: int
    table_del: int
    webhook_ins: int
    sequence_values: int  # sum of every sequence's last value: nextval() writes (WAL every 32 values)
    wal_lsn: str
    next_xid: int

    def minus(self, before: Counters, conn: psycopg.Connection) -> dict[str, int]:
        delta = {name: getattr(self, name) - getattr(before, name) for name in vars(self)
                 if name not in ("wal_lsn", "next_xid")}
        delta["wal_bytes"] = int(conn.execute("SELECT pg_wal_lsn_diff(%s, %s)", (self.wal_lsn, before.wal_lsn))
                                 .fetchone()[0])
        delta["xids"] = self.next_xid - before.next_xid
        return delta


def read_counters(conn: psycopg.Connection) -> Counters:
    conn.execute("SELECT pg_stat_clear_snapshot()")
    db_row = conn.execute(
        "SELECT tup_inserted, tup_updated, tup_deleted, xact_commit, xact_rollback FROM pg_stat_database"
        " WHERE datname = current_database()"
    ).fetchone()
    tables = conn.execute(
        "SELECT coalesce(sum(n_tup_ins), 0), coalesce(sum(n_tup_upd), 0), coalesce(sum(n_tup_del), 0),"
        " coalesce(sum(n_tup_ins) FILTER (WHERE relname = 'webhook_events'), 0) FROM pg_stat_user_tables"
    ).fetchone()
    sequences = conn.execute("SELECT coalesce(sum(last_value), 0) FROM pg_sequences").fetchone()[0]
    wal, xid = conn.execute(
        "SELECT pg_current_wal_lsn()::text, pg_snapshot_xmax(pg_current_snapshot())::text::bigint"
    ).fetchone()
    return Counters(*map(int, db_row), *map(int, tables), int(sequences), wal, int(xid))


def wal_records(conn: psycopg.Connection, start: str, end: str) -> list[str] | None:
    """The kinds of WAL record written between two positions, by pg_waldump (whole server), when the
    server runs here and its WAL is readable; else None. Says what wrote, where the counters only say
    how much."""
    major = conn.info.server_version // 10000
    tool = shutil.which("pg_waldump") or f"/usr/lib/postgresql/{major}/bin/pg_waldump"
    try:
        directory = conn.execute("SHOW data_directory").fetchone()[0]
        done = subprocess.run([tool, "--stats=record", "-p", f"{directory}/pg_wal", "-s", start, "-e", end],
                              capture_output=True, text=True, timeout=60, check=False)
    except (OSError, psycopg.Error, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    rows = []
    for line in done.stdout.splitlines():
        parts = line.split()
        if len(parts) > 2 and "/" in parts[0] and parts[1].isdigit() and int(parts[1]):
            rows.append(f"{parts[0]} x{parts[1]}")
    return rows


def settle_statistics(conn: psycopg.Connection, timeout: float = 30) -> None:
    """Make the server's backends report their statistics: a backend flushes them at most once a
    second, and an idle one only after ten; one that exits flushes at once. So end the app's
    connections to our database (gunicorn's pools reconnect on the next request: app/core/connections.py),
    and wait until they are gone."""
    conn.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database()"
        " AND pid <> pg_backend_pid()"
    )
    deadline = time.monotonic() + timeout
    while conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
    ).fetchone()[0]:
        if time.monotonic() > deadline:
            raise SetupError("the app's database connections did not end")
        time.sleep(0.1)
    time.sleep(0.2)


def no_autovacuum(conn: psycopg.Connection) -> None:
    """Autovacuum writes too (visibility maps, statistics); in the bench's own tables it would blur
    what the requests wrote. ANALYZE once instead, after seeding."""
    for (table,) in conn.execute("SELECT relname FROM pg_stat_user_tables").fetchall():
        conn.execute(f'ALTER TABLE "{table}" SET (autovacuum_enabled = off)')
    conn.execute("ANALYZE")


# --- data ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seeded:
    slug: str
    secret: str
    ref: str  # the simulator's payment ref of the live attempt
    amount: int
    currency: str


def bench_environment(workdir: Path, database_url: str, port: int, inline: bool = False) -> dict[str, str]:
    """The settings shared by the in-process app and the gunicorn workers."""
    return {
        # production's way by default: the request stores and answers, `flask payments apply-events` applies
        "WEBHOOKS_APPLY_INLINE": "true" if inline else "false",
        "PORTAL_ENV": "development",
        "PORTAL_INSTANCE_PATH": str(workdir / "instance"),
        "DATABASE_URL": database_url,
        "SECRET_KEY": secrets.token_urlsafe(48),
        "LINK_SIGNING_KEYS": secrets.token_urlsafe(48),
        "PORTAL_BASE_URL": f"http://127.0.0.1:{port}",
        "PAYMENTS_SIMULATOR": "true",  # no provider keys in the temporary instance: the simulator stands in
        "LOG_LEVEL": "WARNING",
        "RATELIMIT_STORAGE_URI": "memory://",
        "RATELIMIT_ENABLED": "true",
    }


def invoice_payload(number: int, currency: str, country: str) -> dict:
    today = date.today()
    lines = [{"description": f"Subscription, month {i}", "quantity": "1", "unit_price": 19900 + 100 * i,
              "vat_rate": 2500} for i in range(1, 4)]
    return {
        "number": f"WH-{number}", "issue_date": (today - timedelta(days=14)).isoformat(),
        "due_date": (today + timedelta(days=7)).isoformat(), "currency": currency,
        "customer": {"external_ref": f"C-{number}", "name": f"Customer {number}", "email": f"c{number}@example.test",
                     "address": {"line1": "Street 1", "postcode": "0150", "city": "Oslo", "country": country}},
        "lines": lines,
        "total": sum(line_amounts(Decimal(line["quantity"]), line["unit_price"], line["vat_rate"])[2]
                     for line in lines),
    }


def seed(app, invoices: int) -> list[Seeded]:
    """The demo creditors, and `invoices` invoices spread over them, each with a live simulator
    attempt made by `start_payment` (the simulator keeps its record, as a provider would)."""
    seeded: list[Seeded] = []
    with app.app_context():
        creditors = [create_creditor(data) for data in demo_creditors()]
        db.session.commit()
        secrets_by_slug = {c.slug: simulator_secret(c) for c in creditors}
        for start in range(0, invoices, SEED_BATCH):
            for n in range(start, min(start + SEED_BATCH, invoices)):
                creditor = creditors[n % len(creditors)]
                invoice, _created = import_invoice(
                    creditor, invoice_payload(n, creditor.currency, creditor.country), actor="bench"
                )
                attempt = start_payment(
                    invoice, simulator_for(creditor), amount=invoice.balance, locale=creditor.default_locale,
                    methods=("card",), return_url=lambda ref: f"{app.config['PORTAL_BASE_URL']}/r/{ref}",
                    cancel_url=f"{app.config['PORTAL_BASE_URL']}/b",
                )
                seeded.append(Seeded(creditor.slug, secrets_by_slug[creditor.slug], attempt.provider_ref,
                                     attempt.amount, attempt.currency))
            db.session.commit()
            print(f"  seeded {len(seeded)} of {invoices} invoices", file=sys.stderr, flush=True)
        db.session.remove()
        db.engine.dispose()  # forked client processes must not share its connections
    return seeded


@dataclass(frozen=True)
class Notification:
    path: str
    body: bytes
    secret: str


def notifications(payments: list[Seeded], status: str, tag: str) -> list[Notification]:
    """One notification per payment, as the simulator's hosted page sends them."""
    return [
        Notification(
            f"/webhooks/simulator/{p.slug}",
            json.dumps({"id": f"evt_{tag}_{status}_{i}", "type": f"payment.{status}", "created": int(time.time()),
                        "data": {"ref": p.ref, "status": status, "amount": p.amount, "currency": p.currency,
                                 "method": "card"}}, separators=(",", ":")).encode(),
            p.secret,
        )
        for i, p in enumerate(payments)
    ]


# --- load ----------------------------------------------------------------------------------


@dataclass
class Load:
    events: int
    seconds: float
    latencies_ms: list[float]
    statuses: Counter
    outcomes: Counter
    client_cpu: float = 0.0  # seconds of CPU (user + system) of the client processes
    app_cpu: float | None = None  # of gunicorn's processes
    db_cpu: float | None = None  # of the PostgreSQL backends serving the app

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    def per_event_ms(self, cpu: float | None) -> float | None:
        return None if cpu is None or not self.events else cpu * 1000 / self.events

    def percentile(self, p: float) -> float:
        if not self.latencies_ms:
            return 0.0
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def _client(port: int, work: list[tuple[str, bytes, dict[str, str]]], threads: int, start, results) -> None:
    """One client process: `threads` threads, each with its own connection, POST their share of the
    requests one after another. gunicorn's sync workers close each connection after the answer, so
    every request opens a new one, as with wrk against the same server."""
    shares = [work[i::threads] for i in range(threads)]
    done: list[tuple] = []

    def run(share):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        latencies, statuses, outcomes = [], Counter(), Counter()
        first = time.time()
        for path, body, headers in share:
            sent = time.perf_counter()
            try:
                connection.request("POST", path, body=body, headers=headers)
                response = connection.getresponse()
                answer = response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                connection.close()
                statuses["socket error"] += 1
                continue
            latencies.append((time.perf_counter() - sent) * 1000)
            statuses[status] += 1
            if status == 200:
                outcomes.update(json.loads(answer)["outcomes"])
        done.append((first, time.time(), latencies, statuses, outcomes))
        connection.close()

    workers = [threading.Thread(target=run, args=(share,)) for share in shares]
    start.wait()
    cpu = os.times()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    used = os.times()
    results.put((done, used.user - cpu.user + used.system - cpu.system))


def deliver(port: int, batch: list[Notification], processes: int, threads: int, cpu: CpuMeter | None = None) -> Load:
    """POST every notification once, signed just now, spread over processes x threads connections.
    The clock runs from the first request sent to the last answer received."""
    now = int(time.time())
    work = [(n.path, n.body, {"Content-Type": "application/json", SIGNATURE_HEADER: sign(n.secret, n.body, now)})
            for n in batch]
    context = multiprocessing.get_context("fork")
    start, results = context.Event(), context.Queue()
    clients = [context.Process(target=_client, args=(port, work[i::processes], threads, start, results))
               for i in range(processes)]
    for client in clients:
        client.start()
    before = cpu.sample() if cpu else None
    start.set()
    answers = [results.get(timeout=600) for _ in clients]
    after = cpu.sample() if cpu else None
    for client in clients:
        client.join(timeout=30)
    parts = [part for done, _cpu in answers for part in done]
    load = Load(
        events=len(batch), seconds=max(p[1] for p in parts) - min(p[0] for p in parts),
        latencies_ms=[ms for part in parts for ms in part[2]], statuses=sum((p[3] for p in parts), Counter()),
        outcomes=sum((p[4] for p in parts), Counter()), client_cpu=sum(used for _done, used in answers),
    )
    if cpu:
        load.app_cpu, load.db_cpu = cpu.used(before, after)
    return load


def _cpu_seconds(pid: int) -> tuple[int, float] | None:
    """(process group, user + system CPU seconds) of a process, from Linux's /proc; None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rpartition(")")[2].split()
    except OSError:
        return None
    return int(fields[2]), (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU time of gunicorn's process group and of the PostgreSQL backends connected to our database
    (when the server runs on this machine and /proc shows them). Unlike events/s, hardly moved by
    other work on the same CPUs: the figure to read when the machine is busy."""

    def __init__(self, server_pgid: int, stats: psycopg.Connection):
        self.pgid, self.stats = server_pgid, stats

    def sample(self) -> tuple[float | None, dict[int, float]]:
        if not os.path.isdir("/proc"):
            return None, {}
        app = 0.0
        for entry in os.listdir("/proc"):
            found = _cpu_seconds(int(entry)) if entry.isdigit() else None
            if found and found[0] == self.pgid:
                app += found[1]
        backends = {}
        for (pid,) in self.stats.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall():
            found = _cpu_seconds(pid)
            if found:
                backends[pid] = found[1]
        return app, backends

    @staticmethod
    def used(before, after) -> tuple[float | None, float | None]:
        if before[0] is None or after[0] is None:
            return None, None
        db_cpu = sum(seconds - before[1].get(pid, 0.0) for pid, seconds in after[1].items()) if after[1] else None
        return after[0] - before[0], db_cpu


# --- servers -------------------------------------------------------------------------------


# --- statements of one delivery, in-process -------------------------------------------------


@contextmanager
def recorded_statements(engine):
    """Every statement SQLAlchemy sends, transaction control included (SAVEPOINT is where a write may hide)."""
    seen: list[str] = []

    def before(_conn, _cursor, statement, _parameters, _context, _executemany):
        seen.append(" ".join(statement.split()))

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", before)


def count_statements(app, payment: Seeded) -> dict[str, list[str]]:
    """One payment kept aside, notified through the test client on the same app and database: its
    "processing" (new), the same again (duplicate), its "succeeded" (new: settles). Their statements."""
    client = app.test_client()
    counted = {}
    with app.app_context():
        engine = db.engine
    processing = notifications([payment], "processing", "counted")[0]
    succeeded = notifications([payment], "succeeded", "counted")[0]
    for label, notification in (("processing", processing), ("processing again", processing), ("succeeded", succeeded)):
        with recorded_statements(engine) as seen:
            answer = client.post(notification.path, data=notification.body, headers={
                "Content-Type": "application/json", SIGNATURE_HEADER: sign(payment.secret, notification.body)})
        if answer.status_code != 200:
            raise SetupError(f"the counted notification answered {answer.status_code}: {answer.text[:200]}")
        counted[f"{label}: {answer.json['outcomes'][0]}"] = list(seen)
    return counted


def _apply_worker(app, results) -> None:
    """One worker: what `flask payments apply-events --once` runs, in a forked process of its own."""
    from app.payments.worker import apply_received_events

    outcomes: Counter = Counter()
    try:
        with app.app_context():
            db.engine.dispose(close=False)  # the parent's pooled connections are not ours to use
            while counts := apply_received_events(limit=200):
                outcomes.update(counts)
            db.session.remove()
    finally:
        results.put(dict(outcomes))  # even on failure: the parent must not wait forever


def apply_stored(app, workers: int) -> Load:
    """Apply every stored event with `workers` processes side by side (SKIP LOCKED shares the events
    out), timed until nothing is left."""
    import resource

    context = multiprocessing.get_context("fork")
    results = context.Queue()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    processes = [context.Process(target=_apply_worker, args=(app, results)) for _ in range(workers)]
    for process in processes:
        process.start()
    outcomes: Counter = Counter()
    for _ in processes:
        outcomes.update(results.get(timeout=3600))
    for process in processes:
        process.join()
        if process.exitcode != 0:
            raise SetupError(f"an apply-events worker failed (exit {process.exitcode})")
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return Load(sum(outcomes.values()), seconds, [], Counter(), outcomes, app_cpu=cpu)


# --- report --------------------------------------------------------------------------------


@dataclass
class Phase:
    name: str
    load: Load
    expected: str  # the outcome every event of the phase must have
    goal: str = ""

    @property
    def valid(self) -> bool:
        return self.load.outcomes == Counter({self.expected: self.load.events})


def _ms(value: float | None) -> str:
    return f"{value:6.2f}" if value is not None else "     -"


def per_core(load: Load) -> float | None:
    """Events per second one CPU core would carry, app and database together (the client left out)."""
    app, database = load.per_event_ms(load.app_cpu), load.per_event_ms(load.db_cpu)
    return 1000 / (app + database) if app is not None and database is not None and app + database else None


def print_phases(phases: list[Phase], unique: Load) -> None:
    print(f"{'phase':36} {'events':>6} {'s':>5} {'events/s':>8} {'p50 ms':>6} {'p99 ms':>6}  {'target (ratio)':21}"
          f" {'result':6}  CPU ms per event: app     db client  per core")
    rows = [(phase.name, phase.load, phase.goal, "" if phase.valid else "INVALID") for phase in phases]
    ratio = unique.rate / TARGET_EVENTS_PER_SECOND
    rows.insert(2, ("unique events, both phases", unique, f">= {TARGET_EVENTS_PER_SECOND} ({ratio:.2f}x)",
                    "PASS" if ratio >= 1 else "MISS"))
    for name, load, goal, result in rows:
        latency = f"{load.percentile(50):6.1f} {load.percentile(99):6.1f}" if load.latencies_ms else " " * 13
        core = per_core(load)
        print(f"{name:36} {load.events:6d} {load.seconds:5.2f} {load.rate:8.0f} {latency}  {goal:21} {result:6}"
              f"  {'':17}{_ms(load.per_event_ms(load.app_cpu))} {_ms(load.per_event_ms(load.db_cpu))}"
              f" {_ms(load.per_event_ms(load.client_cpu))}  {f'{core:8.0f}' if core else '       -'}")
    for phase in phases:
        if not phase.valid:
            print(f"  INVALID {phase.name}: outcomes {dict(phase.load.outcomes)}, statuses {dict(phase.load.statuses)}"
                  f" (every event should be {phase.expected!r})")


def print_writes(delta: dict[str, int], duplicates: int, background: dict[str, int], seconds: float,
                 per_unique: dict[str, int], unique_events: int, records: list[str] | None) -> None:
    rows = delta["tup_inserted"] + delta["tup_updated"] + delta["tup_deleted"]
    no_write = rows == 0 and delta["sequence_values"] == 0
    print(f"  rows inserted / updated / deleted (pg_stat_database)  {delta['tup_inserted']} / {delta['tup_updated']}"
          f" / {delta['tup_deleted']}   target 0 / 0 / 0   {'PASS' if rows == 0 else 'MISS'}")
    print(f"  of which user tables (pg_stat_user_tables)            {delta['table_ins']} / {delta['table_upd']}"
          f" / {delta['table_del']}   (webhook_events inserts: {delta['webhook_ins']})")
    print(f"  sequence values taken (nextval)                       {delta['sequence_values']}"
          f"   target 0   {'PASS' if delta['sequence_values'] == 0 else 'MISS'}")
    print(f"  commits / rollbacks                                   {delta['xact_commit']} / {delta['xact_rollback']}"
          "   (a commit of a transaction that wrote nothing writes no WAL)")
    bg_wal = background["wal_bytes"] / background["seconds"] if background["seconds"] else 0
    print(f"  WAL written, whole server                             {delta['wal_bytes']} bytes in {seconds:.1f} s"
          f" ({delta['wal_bytes'] / max(duplicates, 1):.1f} per duplicate); idle background {bg_wal:.0f} bytes/s")
    bg_xids = background["xids"] / background["seconds"] if background["seconds"] else 0
    print(f"  transaction ids assigned, whole server                {delta['xids']} (idle background"
          f" {bg_xids:.1f}/s): a transaction gets one only when it writes")
    if records is not None:
        print(f"  WAL records (pg_waldump, whole server)                {', '.join(records) or 'none'}")
        print("    (Heap2/PRUNE: reads tidying pages that hold row versions the unique phase left dead, as any read"
              " does; Standby/, XLOG/: the server's own)")
    print(f"  => duplicates cost no write: {'YES' if no_write else 'NO'}")
    print(f"  for comparison, per unique event: {per_unique['tup_inserted'] / unique_events:.1f} rows inserted,"
          f" {per_unique['tup_updated'] / unique_events:.1f} updated,"
          f" {per_unique['wal_bytes'] / unique_events:.0f} bytes of WAL")


def print_statements(counted: dict[str, list[str]], show_sql: bool) -> None:
    for label, statements in counted.items():
        kinds = Counter(statement.split(" ", 1)[0].upper() for statement in statements)
        savepoints = kinds["SAVEPOINT"] + kinds["RELEASE"] + kinds["ROLLBACK"]
        print(f"  {label:28} {len(statements) - savepoints:3d} statements: {kinds['SELECT']} SELECT,"
              f" {kinds['INSERT']} INSERT, {kinds['UPDATE']} UPDATE, {kinds['DELETE']} DELETE;"
              f" and {savepoints} SAVEPOINT/RELEASE/ROLLBACK TO")
        if show_sql:
            for statement in statements:
                print(f"      {statement[:160]}")


def print_environment(args, server_version: str, load_before: str) -> None:
    print(f"cpus            {os.cpu_count()} ({platform.machine()}, {platform.system()} {platform.release()})")
    print(f"load average    {load_before} before, {' '.join(f'{v:.2f}' for v in os.getloadavg())} after (1, 5, 15 min)")
    print(f"python          {platform.python_version()}; gunicorn {version('gunicorn')}: {args.workers} sync workers")
    print(f"client          {args.clients} processes x {args.threads} threads = {args.clients * args.threads}"
          " connections, Python http.client, on the same machine")
    print(f"database        {server_version}")
    print(f"flask {version('flask')}, sqlalchemy {version('sqlalchemy')}, psycopg {version('psycopg')}")


# --- main ----------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", default=DEFAULT_DATABASE,
                        help=f"PostgreSQL URL of a database the bench creates and drops (default {DEFAULT_DATABASE})")
    parser.add_argument("--invoices", type=int, default=3000, help="payments to notify about (default 3000)")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn sync workers (default 4)")
    parser.add_argument("--clients", type=int, default=2, help="client processes (default 2)")
    parser.add_argument("--threads", type=int, default=6, help="connections per client process (default 6)")
    parser.add_argument("--quick", action="store_true", help="500 invoices, for development")
    parser.add_argument("--show-sql", action="store_true",
                        help="print the statements of the deliveries counted in-process")
    parser.add_argument("--keep", action="store_true", help="keep the database and the temporary folder")
    parser.add_argument("--inline", action="store_true",
                        help="apply each notification in its request (WEBHOOKS_APPLY_INLINE on, as in development)")
    parser.add_argument("--appliers", type=int, default=2, help="apply-events workers afterwards (default 2)")
    args = parser.parse_args(argv)
    if args.quick:
        args.invoices = 500
    if args.invoices < 10 or args.workers < 1 or args.clients < 1 or args.threads < 1:
        parser.error("--invoices >= 10, --workers, --clients and --threads >= 1")
    return args


def run(args, workdir: Path) -> None:
    database_url = normalise_database_url(args.database)
    port = free_port()
    env = bench_environment(workdir, database_url, port, args.inline)
    stored_outcome = "applied" if args.inline else "received"
    os.environ.update(env)  # the in-process app reads the same settings as the workers
    create_database(database_url)
    args.created = True
    app = create_app()
    with app.app_context():
        upgrade()
    print(f"Webhook ingestion benchmark: seeding {args.invoices} invoices ...", file=sys.stderr, flush=True)
    seeded = seed(app, args.invoices + WARMUP_INVOICES + 1)
    counted_payment, warmup, payments = seeded[0], seeded[1:WARMUP_INVOICES + 1], seeded[WARMUP_INVOICES + 1:]
    stats = stats_connect(database_url)
    no_autovacuum(stats)
    server_version = stats.execute("SELECT version()").fetchone()[0].split(" on ")[0]

    processing = notifications(payments, "processing", "bench")
    succeeded = notifications(payments, "succeeded", "bench")
    duplicates = processing + succeeded
    random.Random(500).shuffle(duplicates)
    warm = notifications(warmup, "processing", "warm") + notifications(warmup, "succeeded", "warm")

    load_before = " ".join(f"{v:.2f}" for v in os.getloadavg())
    server = start_gunicorn("portal", "wsgi:app", ROOT, port, env, workdir, workers=args.workers,
                            extra=("--backlog", "2048"))
    try:
        wait_until_up(server, "/healthz")
        cpu = CpuMeter(server.process.pid, stats)
        deliver(port, warm + warm, args.clients, args.threads)  # each worker imports, connects, fills its caches
        if not args.inline:
            apply_stored(app, 1)  # the warm-up's events, out of the way of the measured ones
        settle_statistics(stats)
        before_unique = read_counters(stats)
        print(f"  unique: {len(processing)} processing, then {len(succeeded)} succeeded ...",
              file=sys.stderr, flush=True)
        phases = [
            Phase("unique: payment.processing", deliver(port, processing, args.clients, args.threads, cpu),
                  stored_outcome),
            Phase("unique: payment.succeeded" + (" (settles)" if args.inline else ""),
                  deliver(port, succeeded, args.clients, args.threads, cpu), stored_outcome),
        ]
        if not args.inline:
            print(f"  applying the {len(processing) + len(succeeded)} stored events with {args.appliers} workers ...",
                  file=sys.stderr, flush=True)
            applied = apply_stored(app, args.appliers)
        settle_statistics(stats)
        before = read_counters(stats)
        idle_seconds = 3.0
        time.sleep(idle_seconds)
        idle = read_counters(stats)
        background = {**idle.minus(before, stats), "seconds": idle_seconds}
        print(f"  duplicates: {len(duplicates)} ...", file=sys.stderr, flush=True)
        duplicate_load = deliver(port, duplicates, args.clients, args.threads, cpu)
        phases.append(Phase("duplicates (all again, shuffled)", duplicate_load, "duplicate"))
        settle_statistics(stats)
        after = read_counters(stats)
        records = wal_records(stats, idle.wal_lsn, after.wal_lsn)
    finally:
        stop(server)
    per_unique = before.minus(before_unique, stats)
    delta = after.minus(idle, stats)

    counted = count_statements(app, counted_payment)
    if not args.inline:
        apply_stored(app, 1)  # the counted payment's events
    with app.app_context():
        paid = db.session.scalar(select(func.count(Payment.id)))
        stored = db.session.scalar(select(func.count(WebhookEvent.id)))
        open_invoices = db.session.scalar(select(func.count(Invoice.id)).where(Invoice.status != "paid"))
        db.session.remove()
        db.engine.dispose()
    stats.close()

    loads = [phase.load for phase in phases[:2]]
    unique = Load(
        sum(load.events for load in loads), sum(load.seconds for load in loads), [], Counter(), Counter(),
        client_cpu=sum(load.client_cpu for load in loads),
        app_cpu=None if None in (loads[0].app_cpu, loads[1].app_cpu) else loads[0].app_cpu + loads[1].app_cpu,
        db_cpu=None if None in (loads[0].db_cpu, loads[1].db_cpu) else loads[0].db_cpu + loads[1].db_cpu,
    )
    for phase in phases[:2]:
        phase.goal = f"({phase.load.rate / TARGET_EVENTS_PER_SECOND:.2f}x)"

    print("\nWebhook ingestion benchmark")
    print(f"  data: {len(payments)} payments (and {WARMUP_INVOICES} for the warm-up) of the 3 demo creditors, each an"
          " invoice with a live simulator attempt,")
    print(f"  in a new PostgreSQL database {database_name(database_url)}; every notification signed"
          f" (HMAC-SHA256, {SIGNATURE_HEADER}) and POSTed as its own request\n")
    print_phases(phases, unique)
    if not args.inline:
        print(f"\nApplied afterwards by {args.appliers} `flask payments apply-events` workers (each event in its own"
              " transaction: attempt, settlement, ledger, receipt)")
        print(f"  {applied.events} events in {applied.seconds:.2f} s: {applied.rate:.0f} events/s,"
              f" {applied.per_event_ms(applied.app_cpu):.2f} ms worker CPU per event;"
              f" outcomes {dict(applied.outcomes)}")
    print(f"\nWrites during the duplicate phase ({len(duplicates)} duplicates; pg_stat_* read with the app's"
          " connections ended, so every backend has reported)")
    print_writes(delta, len(duplicates), background, duplicate_load.seconds, per_unique, unique.events, records)
    print("\nStatements of one delivery (in-process test client, same app and database)")
    print_statements(counted, args.show_sql)
    expected = (len(seeded), 2 * len(seeded), 0)
    print(f"\nAfterwards: {paid} payments, {stored} stored events, {open_invoices} invoices not paid"
          f" ({'as expected' if (paid, stored, open_invoices) == expected else f'expected {expected}: INVALID'})")
    print("\nEnvironment")
    print_environment(args, server_version, load_before)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.created = False  # drop only the database this run created
    workdir = Path(tempfile.mkdtemp(prefix="portal-bench-webhooks-"))
    try:
        run(args, workdir)
    except (SetupError, psycopg.OperationalError) as exc:
        print(f"bench setup failed: {exc}", file=sys.stderr)
        return 2
    finally:
        if args.keep:
            print(f"\nkept {workdir} and the database", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
            if args.created:
                try:
                    drop_database(normalise_database_url(args.database))
                except (SetupError, psycopg.Error) as exc:
                    print(f"could not drop the bench database: {exc}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
