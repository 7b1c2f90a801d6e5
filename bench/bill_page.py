"""Bill page benchmark: throughput and latency of the customer pages, as ratios to a floor.

Serves the portal with gunicorn (2 sync workers) on the demo data in a temporary SQLite
database and, in the same run, a floor app (one Flask route rendering a 5 KB template).
Loads each in turn with wrk and prints req/s, p50 and p99 for the bill page of a 10-line
invoice, the bill page of an invoice showing two targeted content blocks, /l/<valid token>,
/l/<forged token> and the floor, with the ratio of each to the
floor. Then counts the SQL statements of those requests in-process (Flask test client on the
same app and database). It is a report: the exit code is 0 even when a target is missed,
and non-zero only when the setup fails. See bench/README.md.

    .venv/bin/python bench/bill_page.py [--quick] [--duration S] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import http.client
import os
import platform
import pstats
import re
import secrets
import shutil
import sqlite3
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from importlib.metadata import version
from pathlib import Path

from flask_migrate import upgrade
from sqlalchemy import event, select

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # run as a script from anywhere: `import app` must work

from app import create_app  # noqa: E402
from app.billing.services import find_invoice  # noqa: E402
from app.content.services import create_block  # noqa: E402
from app.creditors.models import Creditor  # noqa: E402
from app.demo import demo_invoice_numbers, load_demo  # noqa: E402
from app.extensions import db  # noqa: E402
from app.links.services import get_signer, issue_link  # noqa: E402
from app.page_cache import get_page_cache  # noqa: E402
from bench.harness import Server, SetupError, free_port, main_in_workdir, start_gunicorn, stop, wait_until_up  # noqa: E402

BENCH_DIR = ROOT / "bench"
WORKERS = 2
LINK_RATE_LIMIT = "1000000 per minute"
TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")
MAX_BILL_STATEMENTS = 5
#: The bill page with two targeted content blocks: at most this many bytes (issue 18).
MAX_BLOCKS_PAGE_BYTES = 40 * 1024
BLOCKS_INVOICE = "due_soon_en"  # its customer gets the tag the two blocks target
SOCKET_ERRORS = ("connect", "read", "write", "timeout")
NOISY_SPREAD = 0.15  # the floor's req/s moving more than this during a run makes its ratios doubtful


# --- data ------------------------------------------------------------------------------


@dataclass
class BenchData:
    """What the load runs and the statement counts need: public ids, tokens, line counts."""

    public_ids: dict[str, str]  # "one_line" | "ten_lines" | "two_hundred_lines" -> public id
    line_counts: dict[str, int]
    tokens: dict[str, str]  # same keys -> a valid /l/ token for that invoice
    forged: str  # a well-formed token with a wrong signature


def bench_environment(workdir: Path, port: int) -> dict[str, str]:
    """The settings shared by the in-process app and the gunicorn workers."""
    return {
        "PORTAL_ENV": "development",
        "PORTAL_INSTANCE_PATH": str(workdir / "instance"),
        "DATABASE_URL": f"sqlite:///{workdir / 'bench.db'}",
        "SECRET_KEY": secrets.token_urlsafe(48),
        "LINK_SIGNING_KEYS": secrets.token_urlsafe(48),
        "PORTAL_BASE_URL": f"http://127.0.0.1:{port}",
        "LOG_LEVEL": "WARNING",
        "RATELIMIT_STORAGE_URI": "memory://",
        "RATELIMIT_ENABLED": "true",
        "LINK_RATE_LIMIT": LINK_RATE_LIMIT,
    }


def forge(token: str) -> str:
    """The same token with one character of its signature changed: valid shape, wrong signature."""
    head, _, signature = token.rpartition(".")
    first = signature[0]
    return f"{head}.{'B' if first == 'A' else 'A'}{signature[1:]}"


def prepare_data(app) -> BenchData:
    """Migrate, load the demo data, issue one link per benchmarked invoice; commit."""
    with app.app_context():
        upgrade()
        load_demo()
        db.session.commit()
        numbers = demo_invoice_numbers()
        public_ids, line_counts, tokens = {}, {}, {}
        for name in ("one_line", "ten_lines", "two_hundred_lines", BLOCKS_INVOICE):
            slug, number = numbers[name]
            creditor = db.session.scalar(select(Creditor).where(Creditor.slug == slug))
            invoice = find_invoice(creditor, number) if creditor else None
            if invoice is None:
                raise SetupError(f"demo invoice {name} ({slug} {number}) not found")
            issued = issue_link(
                invoice, channel="sms", ttl_days=30, signer=get_signer(),
                base_url=app.config["PORTAL_BASE_URL"], actor="bench",
            )
            public_ids[name], line_counts[name], tokens[name] = invoice.public_id, len(invoice.lines), issued.token
        db.session.commit()
        forged = forge(tokens["ten_lines"])
        if get_signer().unsign(forged, "bill") is not None:
            raise SetupError("the forged token verifies; the forgery is wrong")
    return BenchData(public_ids, line_counts, tokens, forged)


def add_two_blocks(public_id: str) -> None:
    """Two content blocks of the invoice's creditor, targeted at a tag only its customer has (the other
    benchmarked bills show none): an information block and an engagement block with a link."""
    from app.billing.models import Invoice

    invoice = db.session.scalar(select(Invoice).where(Invoice.public_id == public_id))
    invoice.customer.content_tags = ["bench-blocks"]
    body = ("From 1 January our prices follow the spot price. **Nothing changes for you** if you have a fixed "
            "price.\n\n- no new contract\n- no fee\n\nRead more on [our site](https://example.test/prices).")
    for name, kind, priority, action in (("prices", "information", 2, "none"), ("app", "engagement", 1, "link")):
        texts = {locale: {"title": f"{name.capitalize()}: what changes ({locale})", "body": body,
                          "cta": "Open" if action == "link" else ""} for locale in ("en", "nb", "de")}
        create_block(invoice.creditor, {
            "name": name, "kind": kind, "placements": ["bill"], "priority": priority, "action": action,
            "target_url": "https://example.test/app" if action == "link" else None,
            "tags": ["bench-blocks"], "statuses": ["due_soon", "not_due"], "texts": texts})


# --- SQL statement counts ----------------------------------------------------------------


@contextmanager
def recorded_statements(engine):
    """Collect every SQL statement SQLite runs for `engine` (transaction control left out).

    Counted at the driver (sqlite3's trace callback), not through SQLAlchemy's events: the
    portal's hot reads run on the driver connection (app/readpath.py) and must be counted too.
    The pool is emptied first so that every connection used while recording is traced."""
    seen: list[str] = []

    def trace(statement: str) -> None:
        text = statement.lstrip().upper()
        if not text.startswith(TRANSACTION_CONTROL) and not text.startswith("PRAGMA"):
            seen.append(" ".join(statement.split()))

    def on_connect(dbapi_connection, _record):
        dbapi_connection.set_trace_callback(trace)

    engine.dispose()
    event.listen(engine, "connect", on_connect)
    try:
        yield seen
    finally:
        event.remove(engine, "connect", on_connect)
        engine.dispose()


@dataclass
class Counted:
    label: str
    status: int
    statements: list[str]
    goal: str = ""
    ok: bool | None = None  # None when the request has no target


FORGED_LABEL = "/l/<forged>"
INVOICES = (("one_line", "1-line"), ("ten_lines", "10-line"), ("two_hundred_lines", "200-line"),
            (BLOCKS_INVOICE, "blocks"))


def count_request(app, client, label: str, path: str) -> Counted:
    with app.app_context():
        engine = db.engine
    with recorded_statements(engine) as seen:
        response = client.get(path)
    return Counted(label, response.status_code, list(seen))


def page_blocks(app, client, public_id: str) -> int:
    """How many content blocks the bill page shows."""
    return client.get(f"/b/{public_id}").get_data(as_text=True).count('class="card content-block')


def count_statements(app, data: BenchData) -> list[Counted]:
    """One request each through the test client: the forged link; for each invoice, its link
    opened twice (the second open is what the load run sees) and the bill page."""
    forged = count_request(app, app.test_client(), FORGED_LABEL, f"/l/{data.forged}")
    forged.goal, forged.ok = "0", not forged.statements
    results, one_line = [forged], None
    for name, label in INVOICES:
        client = app.test_client()
        for when in ("first open", "opened again"):
            results.append(count_request(app, client, f"/l/<valid> {label}, {when}", f"/l/{data.tokens[name]}"))
        page = count_request(app, client, f"/b/<id> {label} invoice, rendered", f"/b/{data.public_ids[name]}")
        if name == BLOCKS_INVOICE:
            # The same bill without blocks, then with two: the first render reads the creditor's blocks into
            # this process (two statements, once per process and change of a block); a render after that
            # (a new day, a change of the bill) reads none. So does a creditor's first bill page in a process
            # read its payment providers (`payments.providers._choices`, kept for its updated_at): the
            # renders compared are those after each first one.
            page.label = f"/b/<id> {label}: none, first render"
            results.append(page)
            with app.app_context():
                get_page_cache().clear()
            page = count_request(app, client, f"/b/<id> {label}: none yet, rendered", f"/b/{data.public_ids[name]}")
            results.append(page)
            with app.app_context():
                add_two_blocks(data.public_ids[name])
                db.session.commit()
                get_page_cache().clear()
            first = count_request(app, client, f"/b/<id> {label}: 2, first render", f"/b/{data.public_ids[name]}")
            results.append(first)
            with app.app_context():
                get_page_cache().clear()
            blocks = count_request(app, client, f"/b/<id> {label}: 2, rendered", f"/b/{data.public_ids[name]}")
            shown = page_blocks(app, client, data.public_ids[name])
            blocks.goal = f"<= {MAX_BILL_STATEMENTS}, same as none; {shown} shown"
            blocks.ok = len(blocks.statements) == len(page.statements) <= MAX_BILL_STATEMENTS and shown == 2
            page = blocks
        again = count_request(app, client, f"/b/<id> {label} invoice, cached", f"/b/{data.public_ids[name]}")
        n = len(page.statements)
        if name == "one_line":
            one_line = n
            page.goal, page.ok = f"<= {MAX_BILL_STATEMENTS}", n <= MAX_BILL_STATEMENTS
        elif name == "two_hundred_lines":
            # Lines add no statement: no more than the 1-line bill of the same creditor. It may need fewer:
            # a bill with a next reminder step reads the creditor's dunning settings for "what happens next".
            page.goal, page.ok = f"<= {MAX_BILL_STATEMENTS}, <= 1-line", n <= MAX_BILL_STATEMENTS and n <= one_line
        results += [page, again]
    return results


# --- servers -----------------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes


def http_get(port: int, path: str, cookie: str | None = None, timeout: float = 10) -> Answer:
    """One GET without following redirects."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path, headers={"Cookie": cookie} if cookie else {})
        response = connection.getresponse()
        return Answer(response.status, response.headers, response.read())
    finally:
        connection.close()


def session_cookie(answer: Answer) -> str:
    """`name=value` of the session cookie a link sets."""
    jar = SimpleCookie()
    for header in answer.headers.get_all("Set-Cookie") or []:
        jar.load(header)
    if not jar:
        raise SetupError("GET /l/<valid token> set no cookie")
    return "; ".join(f"{morsel.key}={morsel.value}" for morsel in jar.values())


# --- load --------------------------------------------------------------------------------


@dataclass
class Target:
    name: str
    server: Server
    path: str
    expected_status: int
    min_ratio: float | None  # None for the floor itself
    headers: dict[str, str] = field(default_factory=dict)
    no_sql: bool = False  # the target also asks for zero SQL statements
    max_bytes: int | None = None  # the target also asks for a body of at most this size
    size: int = 0  # bytes of the body, from the check before the load


@dataclass
class Load:
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    unexpected: int  # responses whose class differs from what the target expects
    socket_errors: dict[str, int]
    cpu_seconds: float | None = None  # user + system time of the server's processes during the run

    @property
    def cpu_ms(self) -> float | None:
        """Server CPU per request: unlike req/s, hardly moved by other work on the machine."""
        if self.cpu_seconds is None or not self.requests:
            return None
        return self.cpu_seconds * 1000 / self.requests


def group_cpu_seconds(pgid: int) -> float | None:
    """User + system CPU time of every live process in a process group, from Linux's /proc; else None."""
    if not os.path.isdir("/proc"):
        return None
    ticks = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rpartition(")")[2].split()
        except OSError:
            continue  # the process ended meanwhile
        if int(fields[2]) == pgid:  # fields after the command: state, ppid, pgrp, ... utime (12th), stime
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def check(target: Target) -> None:
    """One request before the load: the expected status, else stop with the server's log."""
    answer = http_get(target.server.port, target.path, cookie=target.headers.get("Cookie"))
    if answer.status != target.expected_status:
        raise SetupError(
            f"{target.name}: GET {target.path[:40]} answered {answer.status}, expected "
            f"{target.expected_status}\n{target.server.log_tail()}"
        )
    target.size = len(answer.body)


UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


def _duration_ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if not match:
        raise SetupError(f"cannot read wrk's duration {text!r}")
    return float(match.group(1)) * UNITS_MS[match.group(2)]


def parse_wrk(output: str, expect_error_status: bool) -> Load:
    """Requests, req/s, p50, p99, unexpected statuses and socket errors from `wrk --latency`."""
    def find(pattern: str) -> str:
        match = re.search(pattern, output, re.MULTILINE)
        if not match:
            raise SetupError(f"wrk output without {pattern!r}:\n{output}")
        return match.group(1)

    requests = int(find(r"^\s*(\d+) requests in"))
    non_2xx_3xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    bad = int(non_2xx_3xx.group(1)) if non_2xx_3xx else 0
    return Load(
        requests=requests,
        rps=float(find(r"^Requests/sec:\s+([\d.]+)")),
        p50_ms=_duration_ms(find(r"^\s+50%\s+(\S+)")),
        p99_ms=_duration_ms(find(r"^\s+99%\s+(\S+)")),
        unexpected=requests - bad if expect_error_status else bad,
        socket_errors=dict(zip(SOCKET_ERRORS, map(int, errors.groups()), strict=True))
        if errors else {},
    )


def run_wrk(target: Target, seconds: int, threads: int, connections: int) -> Load:
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "5s"]
    for name, value in target.headers.items():
        command += ["-H", f"{name}: {value}"]
    command.append(target.server.url(target.path))
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 30, check=False)
    except subprocess.TimeoutExpired as exc:
        raise SetupError(f"wrk did not finish within {seconds + 30} s on {target.name}") from exc
    if done.returncode != 0:
        raise SetupError(f"wrk failed on {target.name}: {done.stderr.strip() or done.stdout.strip()}")
    return parse_wrk(done.stdout, expect_error_status=target.expected_status >= 400)


# --- report ------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


@dataclass
class Measured:
    target: Target
    load: Load
    floor: Load  # the floor runs just before and after this one, combined

    @property
    def ratio(self) -> float:
        return self.load.rps / self.floor.rps if self.floor.rps else 0.0

    @property
    def cpu_ratio(self) -> float | None:
        """The floor's server CPU per request over this target's: the ratio a quiet machine would show."""
        if self.load.cpu_ms is None or self.floor.cpu_ms is None or not self.load.cpu_ms:
            return None
        return self.floor.cpu_ms / self.load.cpu_ms


def combine(loads: list[Load]) -> Load:
    """Several runs of one target as one: summed counts, mean rates and percentiles."""
    n = len(loads)
    cpu = [load.cpu_seconds for load in loads]
    return Load(
        requests=sum(load.requests for load in loads),
        rps=sum(load.rps for load in loads) / n,
        p50_ms=sum(load.p50_ms for load in loads) / n,
        p99_ms=sum(load.p99_ms for load in loads) / n,
        unexpected=sum(load.unexpected for load in loads),
        socket_errors={k: sum(load.socket_errors.get(k, 0) for load in loads) for k in SOCKET_ERRORS},
        cpu_seconds=None if None in cpu else sum(cpu),
    )


def judge(item: Measured, no_sql_statements: int) -> tuple[str, str]:
    """The target's wording and PASS, MISS or INVALID (the server gave other answers than expected)."""
    target = item.target
    goal = f">= {target.min_ratio:.2f}" + (" and 0 SQL" if target.no_sql else "") \
        + (f", <= {target.max_bytes // 1024} KB" if target.max_bytes else "")
    result = verdict(item.ratio >= target.min_ratio and (no_sql_statements == 0 or not target.no_sql)
                     and (target.max_bytes is None or target.size <= target.max_bytes))
    if item.load.unexpected:
        result = f"INVALID: {item.load.unexpected} answers other than {target.expected_status}"
    return goal, result


def _optional(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _row(name: str, load: Load, size: int, ratios: tuple[float, float | None], goal: str, result: str) -> str:
    return (f"{name:<28} {load.rps:>7.0f} {load.p50_ms:>7.1f} {load.p99_ms:>7.1f} {size / 1024:>5.1f} "
            f"{_optional(load.cpu_ms, '.2f'):>7} {ratios[0]:>6.2f} {_optional(ratios[1], '.2f'):>6}  "
            f"{goal:<20} {result}").rstrip()


def print_load_table(floor: Target, floor_runs: list[Load], measured: list[Measured], no_sql_statements: int) -> None:
    print(f"{'request':<28} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'KB':>5} {'CPU ms':>7} {'ratio':>6} "
          f"{'CPU r.':>6}  {'target (ratio)':<20} result")
    print(_row(floor.name, combine(floor_runs), floor.size, (1.0, 1.0), "(the floor)", ""))
    for item in measured:
        goal, result = judge(item, no_sql_statements)
        print(_row(item.target.name, item.load, item.target.size, (item.ratio, item.cpu_ratio), goal, result))
    rates = [load.rps for load in floor_runs]
    spread = (max(rates) - min(rates)) / max(rates) if max(rates) else 0.0
    print(f"  floor runs: {', '.join(f'{r:.0f}' for r in rates)} req/s (spread {spread:.0%})")
    if spread > NOISY_SPREAD:
        print(f"  the floor moved by more than {NOISY_SPREAD:.0%} during the run: the machine was busy, the req/s"
              " ratios are rough (the CPU ratios hold better); run again on a quiet machine")
    runs = [(floor.name, combine(floor_runs))] + [(item.target.name, item.load) for item in measured]
    for name, load in runs:
        if any(load.socket_errors.values()):
            print(f"  wrk socket errors on {name}: " + ", ".join(f"{k} {v}" for k, v in load.socket_errors.items()))


def print_sql_table(counted: list[Counted], show_sql: bool) -> None:
    print(f"{'request':<36} {'status':>6} {'statements':>10}  {'target':<26} result")
    for item in counted:
        result = "" if item.ok is None else verdict(item.ok)
        print(f"{item.label:<36} {item.status:>6} {len(item.statements):>10}  {item.goal:<26} {result}".rstrip())
        if show_sql:
            for statement in item.statements:
                print(f"      {statement[:150]}")


def tool_version(command: list[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return "not found"
    return (done.stdout or done.stderr).splitlines()[0].strip() if (done.stdout or done.stderr) else "unknown"


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def print_environment(args, load_before: str) -> None:
    print(f"cpus            {os.cpu_count()} ({platform.machine()}, {platform.system()} {platform.release()})")
    print(f"load average    {load_before} before the load runs, {load_average()} after (1, 5, 15 min)")
    print(f"python          {platform.python_version()} ({sys.executable})")
    print(f"gunicorn        {version('gunicorn')}: {WORKERS} sync workers, --no-control-socket")
    print(f"wrk             {tool_version(['wrk', '--version'])}")
    print(f"wrk load        -t{args.threads} -c{args.connections}, {args.warmup} s warm-up + {args.duration} s per run;"
          " the floor runs before and after each target")
    print(f"flask {version('flask')}, sqlalchemy {version('sqlalchemy')}, sqlite {sqlite3.sqlite_version}")


def print_profile(app, data: BenchData, requests: int) -> None:
    """cProfile of the bill page (10-line invoice, with the cookie its link gave) and of a valid link
    opened again without a session (as wrk sends it), served in-process: the WSGI app called directly
    with the environ a browser's request gives (the test client's own work left out), so that the
    calls per request are the server's. What was loaded before is frozen out of the garbage
    collector's reach, as `wsgi.py` does in the workers (else a full collection lands in the profile)."""
    import gc

    from werkzeug.test import EnvironBuilder

    client = app.test_client()
    client.get(f"/l/{data.tokens['ten_lines']}")
    cookie = "; ".join(f"{c.key}={c.value}" for c in client._cookies.values())
    for label, path, headers in (
            ("/b/<id> 10-line", f"/b/{data.public_ids['ten_lines']}", {"Cookie": cookie}),
            ("/l/<valid> 10-line, opened again without a session", f"/l/{data.tokens['ten_lines']}", {})):
        environ = EnvironBuilder(path=path, headers=headers).get_environ()
        statuses: list[str] = []

        def start_response(status, _headers, _exc_info=None, statuses=statuses):
            statuses.append(status)

        for _ in range(20):
            b"".join(app(dict(environ), start_response))
        gc.collect()
        gc.freeze()
        environs = [dict(environ) for _ in range(requests)]
        profiler = cProfile.Profile()
        start = time.perf_counter()
        profiler.enable()
        for each in environs:
            b"".join(app(each, start_response))
        profiler.disable()
        elapsed = time.perf_counter() - start
        stats = pstats.Stats(profiler, stream=sys.stdout).strip_dirs()
        print(f"\n{requests} in-process requests to {label} ({statuses[-1]}): {elapsed / requests * 1000:.2f} ms "
              f"each under cProfile, {stats.total_calls / requests:.0f} function calls per request")
        stats.sort_stats("cumulative").print_stats(30)
        stats.sort_stats("tottime").print_stats(20)


# --- main --------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds of load per request kind (default 10)")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of unmeasured load before each run (default 2)")
    parser.add_argument("--quick", action="store_true", help="2 s runs and 1 s warm-ups, for development")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (default 16)")
    parser.add_argument("--show-sql", action="store_true", help="print each counted SQL statement")
    parser.add_argument("--profile", type=int, nargs="?", const=500, default=0, metavar="N",
                        help="also profile N in-process bill page requests with cProfile (default N: 500)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (database, server logs)")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.warmup = 2, 1
    if args.duration < 1 or args.warmup < 0 or args.threads < 1 or args.connections < args.threads:
        parser.error("--duration >= 1, --warmup >= 0, --threads >= 1 and --connections >= --threads")
    return args


def build_targets(portal: Server, floor: Server, data: BenchData) -> tuple[Target, list[Target]]:
    """The floor, and the portal's URLs; the bill page with the cookie a real open of its link gives."""
    opened = http_get(portal.port, f"/l/{data.tokens['ten_lines']}")
    if opened.status != 303:
        raise SetupError(f"GET /l/<valid token> answered {opened.status}, expected 303\n{portal.log_tail()}")
    cookie = session_cookie(opened)
    with_blocks = http_get(portal.port, f"/l/{data.tokens[BLOCKS_INVOICE]}")
    if with_blocks.status != 303:
        raise SetupError(f"GET /l/<valid token> answered {with_blocks.status}, expected 303\n{portal.log_tail()}")
    return Target("floor (5 KB template)", floor, "/", 200, None), [
        Target("bill page, 10-line invoice", portal, f"/b/{data.public_ids['ten_lines']}", 200, 0.70,
               {"Cookie": cookie}),
        Target("bill page, 2 content blocks", portal, f"/b/{data.public_ids[BLOCKS_INVOICE]}", 200, 0.60,
               {"Cookie": session_cookie(with_blocks)}, max_bytes=MAX_BLOCKS_PAGE_BYTES),
        Target("/l/<valid token>", portal, f"/l/{data.tokens['ten_lines']}", 303, 0.80),
        Target("/l/<forged token>", portal, f"/l/{data.forged}", 404, 0.95, no_sql=True),
    ]


def load_run(target: Target, args, warm: bool = True) -> Load:
    """An optional warm-up, then the measured run with the server's CPU time around it."""
    if warm and args.warmup:
        run_wrk(target, args.warmup, args.threads, args.connections)
    print(f"  loading {target.name} for {args.duration} s ...", file=sys.stderr, flush=True)
    pgid = target.server.process.pid
    cpu_before = group_cpu_seconds(pgid)
    load = run_wrk(target, args.duration, args.threads, args.connections)
    cpu_after = group_cpu_seconds(pgid)
    if cpu_before is not None and cpu_after is not None:
        load.cpu_seconds = cpu_after - cpu_before
    return load


def measure(floor: Target, targets: list[Target], args) -> tuple[list[Load], list[Measured]]:
    """The floor before and after each target, so that each ratio compares runs seconds apart
    and a machine that gets busier or quieter during the run does not skew the ratios."""
    for target in (floor, *targets):
        check(target)
    floor_runs = [load_run(floor, args)]
    measured = []
    for target in targets:
        load = load_run(target, args)
        floor_runs.append(load_run(floor, args, warm=False))
        measured.append(Measured(target, load, combine(floor_runs[-2:])))
    return floor_runs, measured


def run(args, workdir: Path) -> None:
    if shutil.which("wrk") is None:
        raise SetupError("wrk is not installed: apt-get install wrk (`make bench` does it when it may)")
    portal_port, floor_port = free_port(), free_port()
    env = bench_environment(workdir, portal_port)
    os.environ.update(env)  # the in-process app reads the same settings as the workers
    app = create_app()
    data = prepare_data(app)
    counted = count_statements(app, data)

    print("Bill page benchmark")
    print(f"  data: demo data (app.demo.load_demo) in a temporary SQLite database, {workdir / 'bench.db'}")
    print("  invoices: " + ", ".join(f"{k} = {v} lines" for k, v in data.line_counts.items()))
    print(f"  LINK_RATE_LIMIT = {LINK_RATE_LIMIT!r}: the limiter stays on (memory storage) but never trips")
    print("  PORTAL_ENV=development with explicit SECRET_KEY and LINK_SIGNING_KEYS, LOG_LEVEL=WARNING\n")

    load_before = load_average()
    servers: list[Server] = []
    try:
        portal = start_gunicorn("portal", "wsgi:app", ROOT, portal_port, env, workdir, workers=WORKERS)
        servers.append(portal)
        floor = start_gunicorn("floor", "floor_app:create_app()", BENCH_DIR, floor_port, env, workdir, workers=WORKERS)
        servers.append(floor)
        wait_until_up(portal, "/healthz")
        wait_until_up(floor, "/")
        floor_target, targets = build_targets(portal, floor, data)
        floor_runs, measured = measure(floor_target, targets, args)
    finally:
        for server in servers:
            stop(server)

    forged_sql = len(next(c for c in counted if c.label == FORGED_LABEL).statements)
    print(f"Throughput and latency (wrk, {args.duration} s per run). ratio: req/s over the floor's req/s in"
          " the runs just before and after;\nCPU ms: the server's CPU time per request; CPU r.: the floor's"
          " CPU ms over this CPU ms")
    print_load_table(floor_target, floor_runs, measured, forged_sql)
    print("\nSQL statements per request (in-process test client, same app and database; BEGIN/COMMIT not counted)")
    print_sql_table(counted, args.show_sql)
    print("\nEnvironment")
    print_environment(args, load_before)
    if args.profile:
        print_profile(app, data, args.profile)


def main(argv: list[str] | None = None) -> int:
    return main_in_workdir(run, parse_args(argv), "portal-bench-")

if __name__ == "__main__":
    sys.exit(main())
