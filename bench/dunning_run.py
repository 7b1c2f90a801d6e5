"""Dunning run benchmark: `flask dunning run` over 1,000,000 open invoices of 50,000 customers on
PostgreSQL, 100,000 of them with a step due today.

Creates a PostgreSQL database of its own (default `bench_dunning`, dropped at the end unless
--keep), runs the migrations, makes a Norwegian creditor with the shipped plan for Norway
(`app/dunning/default_plans/norway.yaml`), and generates the rows in SQL (`generate_series`):
50,000 customers (one in twenty reachable by letter only), 20 invoices each; each customer's first
two invoices are due for a step today (one a pre-due nudge, one the reminder with its fee: one
consolidated message per customer), the other 900,000 later. Then runs `flask dunning run --date D`
as a child process, twice, and reports each run's wall time and the child's peak memory (maximum
resident set size, from wait4) against the targets: the first run decides and writes everything in
at most 60 s with at most 300 MB; the second, the same day, writes nothing in at most 10 s.
It is a report: the exit code is 0 even when a target is missed; 2 when the setup fails.

    .venv/bin/python bench/dunning_run.py [--customers N] [--per-customer N] [--database URL] [--keep]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # run as a script from anywhere: `import app` must work

from bench.harness import SetupError, connect, create_database, drop_database, dunning_creditor  # noqa: E402

DEFAULT_DATABASE = "postgresql://postgres@127.0.0.1:5432/bench_dunning"
TODAY = date(2026, 12, 8)  # a Tuesday, no holiday in Norway: SMS may go at 10:00
TARGET_FIRST_SECONDS, TARGET_MEMORY_MB, TARGET_SECOND_SECONDS = 60, 300, 10
SECRET = "bench-secret-" + "s" * 40


def environment(url: str, workdir: Path) -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": url, "PORTAL_ENV": "development", "SECRET_KEY": SECRET,
            "LINK_SIGNING_KEYS": SECRET, "PORTAL_INSTANCE_PATH": str(workdir), "LOG_LEVEL": "WARNING",
            "FLASK_APP": "wsgi", "PORTAL_BASE_URL": "https://pay.example.test"}


def flask(env: dict[str, str], *args: str, input_text: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flask", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, input=input_text, check=False)




def generate(conn: psycopg.Connection, creditor_id: int, plan_id: int, customers: int, per_customer: int) -> None:
    """Customers and invoices in SQL. Invoice i belongs to customer (i - 1) % customers + 1 (of this run's
    ids); the first `customers` invoices are nudges due today (due in 3 days), the next `customers` are
    reminders due today (14 days overdue, with the fee), the rest have their next step 1 to 60 days ahead."""
    with conn.cursor() as cur:
        cur.execute("SELECT coalesce(max(id), 0) FROM customers")
        base = cur.fetchone()[0]
        cur.execute("""
            INSERT INTO customers (id, creditor_id, external_ref, name, kind, email, phone, address_line1, postcode,
                                   city, country, preferred_locale, created_at, updated_at, email_allowed, sms_allowed)
            SELECT %(base)s + i, %(creditor)s, 'C' || i, 'Customer ' || i, 'consumer', 'c' || i || '@example.test',
                   CASE WHEN i %% 20 = 0 THEN NULL ELSE '+479' || lpad(i::text, 7, '0') END,
                   'Storgata ' || (i %% 200 + 1), lpad((i %% 9000 + 1000)::text, 4, '0'), 'Oslo', 'NO',
                   CASE WHEN i %% 7 = 0 THEN 'en' ELSE 'nb' END, now(), now(),
                   i %% 20 <> 0, i %% 20 <> 0
            FROM generate_series(1, %(n)s) AS i
        """, {"base": base, "creditor": creditor_id, "n": customers})
        cur.execute("SELECT setval(pg_get_serial_sequence('customers', 'id'), (SELECT max(id) FROM customers))")
        total = customers * per_customer
        cur.execute("""
            INSERT INTO invoices (public_id, creditor_id, customer_id, number, issue_date, due_date, currency,
                                  payment_reference, status, subtotal, vat_total, total, amount_paid, credited,
                                  created_at, updated_at, dunning_plan_id, dunning_excluded, dunning_next_on,
                                  dunning_next_position)
            SELECT md5('bench' || i), %(creditor)s, %(base)s + (i - 1) %% %(customers)s + 1, (1000000 + i)::text,
                   d.due - 14, d.due, 'NOK', (1000000 + i)::text, 'open', 80000, 20000, 100000, 0, 0, now(), now(),
                   %(plan)s, false, d.next_on, d.position
            FROM generate_series(1, %(total)s) AS i,
            LATERAL (SELECT
                CASE WHEN i <= %(customers)s THEN %(today)s::date + 3
                     WHEN i <= 2 * %(customers)s THEN %(today)s::date - 14
                     ELSE %(today)s::date - 14 + (i %% 60) END AS due,
                CASE WHEN i <= %(customers)s THEN 1 ELSE 2 END AS position,
                CASE WHEN i <= 2 * %(customers)s THEN %(today)s::date
                     ELSE %(today)s::date + 1 + (i %% 60) END AS next_on) AS d
        """, {"creditor": creditor_id, "base": base, "customers": customers, "plan": plan_id, "total": total,
              "today": TODAY})
    conn.commit()
    conn.autocommit = True
    conn.execute("VACUUM ANALYZE customers")
    conn.execute("VACUUM ANALYZE invoices")
    conn.autocommit = False


def counts(conn: psycopg.Connection) -> dict[str, int]:
    found = {}
    for table in ("dunning_notices", "dunning_messages", "outbox_messages", "letters", "reminders", "invoice_lines",
                  "invoice_events"):
        found[table] = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    conn.commit()
    return found


def timed_run(env: dict[str, str]) -> tuple[float, float, str]:
    """`flask dunning run` in a child: wall seconds, peak RSS in MB (wait4's ru_maxrss is in KB), output."""
    started = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", "flask", "dunning", "run", "--date", TODAY.isoformat(),
                              "--creditor", "bench"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    output = child.stdout.read()
    _pid, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        print(output)
        raise SystemExit(f"flask dunning run exited with {child.returncode}")
    return seconds, usage.ru_maxrss / 1024, output


def summary_line(output: str) -> str:
    return next((line for line in output.splitlines() if " carrying " in line), output.strip()[-300:])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", default=os.environ.get("BENCH_DUNNING_DATABASE_URL", DEFAULT_DATABASE))
    parser.add_argument("--customers", type=int, default=50_000)
    parser.add_argument("--per-customer", type=int, default=20)
    parser.add_argument("--keep", action="store_true", help="Keep the database afterwards.")
    args = parser.parse_args()
    workdir = Path(os.environ.get("TMPDIR", "/tmp")) / f"dunning-bench-{os.getpid()}"
    workdir.mkdir(parents=True, exist_ok=True)
    env = environment(args.database, workdir)
    try:
        create_database(args.database)
    except SetupError as exc:
        print(exc)
        return 2
    try:
        migrated = flask(env, "db", "upgrade")
        if migrated.returncode != 0:
            print(migrated.stderr[-2000:])
            return 2
        made = dunning_creditor(env, ROOT)
        if made is None:
            return 2
        creditor_id, plan_id, _steps = made
        total = args.customers * args.per_customer
        print(f"Generating {args.customers:,} customers and {total:,} open invoices "
              f"({2 * args.customers:,} with a step due {TODAY.isoformat()})...")
        started = time.perf_counter()
        with connect(args.database) as conn:
            generate(conn, creditor_id, plan_id, args.customers, args.per_customer)
            print(f"  generated in {time.perf_counter() - started:.1f} s")
            before = counts(conn)
            first_seconds, first_mb, first_output = timed_run(env)
            after_first = counts(conn)
            second_seconds, second_mb, second_output = timed_run(env)
            after_second = counts(conn)
    finally:
        if not args.keep:
            drop_database(args.database)
    written = {table: after_first[table] - before[table] for table in before}
    again = {table: after_second[table] - after_first[table] for table in before}
    print(f"\nPython {platform.python_version()}, PostgreSQL, {os.cpu_count()} CPUs")
    print("first run:  " + summary_line(first_output))
    print("second run: " + summary_line(second_output))
    print(f"\n{'run':<12}{'seconds':>9}{'peak MB':>9}  {'target':<26}result")
    ok1 = first_seconds <= TARGET_FIRST_SECONDS and first_mb <= TARGET_MEMORY_MB
    ok2 = second_seconds <= TARGET_SECOND_SECONDS and not any(again.values())
    print(f"{'first':<12}{first_seconds:>9.1f}{first_mb:>9.0f}  {'<= 60 s, <= 300 MB':<26}{'PASS' if ok1 else 'MISS'}")
    print(f"{'second':<12}{second_seconds:>9.1f}{second_mb:>9.0f}  {'<= 10 s, writes nothing':<26}"
          f"{'PASS' if ok2 else 'MISS'}")
    print("\nrows written by the first run:  " + ", ".join(f"{t} {n:,}" for t, n in written.items()))
    print("rows written by the second run: " + ", ".join(f"{t} {n:,}" for t, n in again.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
