"""Dispatcher benchmark: one outbox dispatcher sends dunning reminders by e-mail to the local SMTP
server and by SMS to the local SMS server (tests/support: aiosmtpd and the Twilio stand-in).

Creates a database in a temporary folder (SQLite; or PostgreSQL with --database URL, a database of its
own whose name starts with `bench_`, created and dropped), runs the migrations, makes a Norwegian
creditor with the shipped plan and N customers with one overdue bill each (half of them prefer
e-mail), and lets `dunning.worker.run` decide: N reminders in the outbox, each rendered at delivery
(its step's text, a fresh signed link, the text kept on the message). Then one dispatcher
(`outbox.dispatcher.run_once`, as `flask outbox run --once`) delivers first the e-mails, then the
SMS, each timed on its own, and the report prints messages per second against the targets
(at least 200 e-mails/s and 100 SMS/s) and their ratio. Exit code 0 even when a target is missed
(it is a report); 2 when the setup fails.

    .venv/bin/python bench/dunning_dispatch.py [--messages N] [--batch N] [--database URL] [--keep]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "bench"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))  # run as a script from anywhere: `import app` and harness must work

from harness import SetupError, main_in_workdir  # noqa: E402

TODAY = date(2026, 12, 8)  # a Tuesday, no holiday in Norway
TARGET_EMAIL, TARGET_SMS = 200, 100  # messages per second
SECRET = "bench-secret-" + "s" * 40


def setup_database(url: str | None, workdir: Path) -> str:
    if url is None:
        return f"sqlite:///{workdir / 'dispatch.db'}"
    from dunning_run import admin_connect  # the dunning run's bench makes its PostgreSQL database the same way
    from sqlalchemy import make_url

    name = make_url(url).database or ""
    if not name.startswith("bench_"):
        raise SetupError(f"the database's name must start with bench_ (it is dropped): {name!r}")
    with admin_connect(url) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')
    return url


def drop_database(url: str | None) -> None:
    if url is None:
        return
    from dunning_run import admin_connect
    from sqlalchemy import make_url

    with admin_connect(url) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')


def make_app(database_url: str, workdir: Path):
    os.environ["PORTAL_INSTANCE_PATH"] = str(workdir)
    from app import create_app

    return create_app({
        "PORTAL_ENV": "development", "SECRET_KEY": SECRET, "LINK_SIGNING_KEYS": [SECRET],
        "DATA_ENCRYPTION_KEYS": ["bench-data-key-" + "d" * 40], "SQLALCHEMY_DATABASE_URI": database_url,
        "PORTAL_BASE_URL": "https://pay.example.test", "RATELIMIT_STORAGE_URI": "memory://",
        "MAIL_FROM": "Bench Energi <billing@pay.example.test>", "OUTBOX_BATCH_SIZE": 200,
    })


def populate(app, messages: int) -> None:
    from flask_migrate import upgrade

    from app.dunning import services, worker
    from app.dunning.settings import save_settings
    from app.extensions import db
    from tests.factories import make_creditor, make_invoice

    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
    with app.test_request_context():
        creditor = make_creditor("NO", slug="bench")
        save_settings(creditor, languages=["nb", "en", "de"])
        plan = services.save_plan(creditor, services.shipped_plan("NO"), actor="bench", today=TODAY)
        due = TODAY - timedelta(days=14)
        for n in range(messages):
            invoice = make_invoice(creditor, issue_date=(due - timedelta(days=20)).isoformat(),
                                   due_date=due.isoformat(), customer={
                                       "external_ref": f"B-{n}", "name": f"Kari Bench {n}",
                                       "email": f"kari{n}@example.test", "phone": f"+479{n:07d}",
                                       "address": {"line1": "Storgata 1", "postcode": "0150", "city": "Oslo",
                                                   "country": "NO"}})
            if n % 2 == 0:
                services.update_contact_points(invoice.customer, {"preferred_channel": "email"})
            services.assign_plan(invoice, plan, actor="bench", today=TODAY)
        db.session.commit()
        report = worker.run(on=TODAY, slug="bench")
        if report.messages != messages:
            raise SetupError(f"the run wrote {report.messages} messages, not {messages}")


def hold(app, channel: str, held: bool) -> int:
    """Hold one channel's messages back (due in a year) or release them (due now); how many."""
    from sqlalchemy import update

    from app.extensions import db
    from app.models import utcnow
    from app.outbox.models import OutboxMessage

    with app.app_context():
        when = utcnow() + timedelta(days=365) if held else utcnow() - timedelta(seconds=1)
        result = db.session.execute(update(OutboxMessage).where(OutboxMessage.channel == channel)
                                    .values(next_attempt_at=when))
        db.session.commit()
        return int(getattr(result, "rowcount", 0))


def dispatch(app, batch: int, profile: bool = False) -> tuple[float, float, object]:
    """Wall and CPU seconds (the whole process: the dispatcher and the local servers' threads)."""
    from app.outbox.dispatcher import run_once

    with app.app_context():
        profiler = None
        if profile:
            import cProfile

            # BENCH_PROFILE_CPU=1: CPU time (time.process_time), which other processes' load does not inflate.
            cpu_timer = os.environ.get("BENCH_PROFILE_CPU")
            profiler = cProfile.Profile(time.process_time) if cpu_timer else cProfile.Profile()
            profiler.enable()
        began, cpu = time.perf_counter(), time.process_time()
        report = run_once(batch)
        seconds, cpu_seconds = time.perf_counter() - began, time.process_time() - cpu
        if profiler is not None:
            import pstats

            profiler.disable()
            stats = pstats.Stats(profiler, stream=sys.stderr).sort_stats(os.environ.get("BENCH_PROFILE_SORT",
                                                                                        "cumulative"))
            stats.print_stats(os.environ.get("BENCH_PROFILE_FILTER", ""), int(os.environ.get("BENCH_PROFILE_LINES",
                                                                                             "60")))
            if os.environ.get("BENCH_PROFILE_DUMP"):  # for pstats or snakeviz: <path>.<channel's phase number>
                profiler.dump_stats(f"{os.environ['BENCH_PROFILE_DUMP']}.{dispatch.calls}")
                dispatch.calls += 1
        return seconds, cpu_seconds, report


dispatch.calls = 0  # type: ignore[attr-defined]


SERVERS = """
import json, sys
from tests.support.smtp import SmtpServer
from tests.support.twilio_server import TwilioServer
with SmtpServer() as smtp, TwilioServer() as twilio:
    print(json.dumps({"smtp": smtp.config(), "twilio": twilio.config()}), flush=True)
    for line in sys.stdin:  # "count": how many each has received; end of input: stop
        print(json.dumps({"email": len(smtp.received), "sms": len(twilio.messages)}), flush=True)
"""


class Servers:
    """The local SMTP and SMS servers in a child process of their own, as they would be on other hosts:
    their work does not share the dispatcher's CPU time and interpreter lock."""

    def __enter__(self) -> Servers:
        import json
        import subprocess

        self.process = subprocess.Popen([sys.executable, "-c", SERVERS], cwd=ROOT, stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True)
        line = self.process.stdout.readline() if self.process.stdout else ""
        if not line:
            raise SetupError("the local SMTP and SMS servers did not start")
        self.config = json.loads(line)
        return self

    def received(self) -> dict[str, int]:
        import json

        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write("count\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())

    def __exit__(self, *exc: object) -> None:
        if self.process.stdin:
            self.process.stdin.close()
        self.process.wait(timeout=30)


def run(args, workdir: Path) -> bool:
    url = setup_database(args.database, workdir)
    try:
        app = make_app(url, workdir)
        began = time.perf_counter()
        populate(app, args.messages)
        print(f"setup: {args.messages} reminders decided in {time.perf_counter() - began:.1f} s "
              f"({'PostgreSQL' if args.database else 'SQLite'})", file=sys.stderr)
        rows = []
        with Servers() as servers:
            app.config.update(servers.config["smtp"])
            app.config.update(servers.config["twilio"])
            for channel, target in (("email", TARGET_EMAIL), ("sms", TARGET_SMS)):
                hold(app, "sms" if channel == "email" else "email", True)
                queued = hold(app, channel, False)
                seconds, cpu, report = dispatch(app, args.batch, args.profile)
                sent = servers.received()[channel]
                rate = sent / seconds if seconds else 0.0
                rows.append((channel, queued, sent, cpu, seconds, rate, target))
                if sent != queued:
                    print(f"warning: {queued} {channel} queued, {sent} received ({report})", file=sys.stderr)
    finally:
        if not args.keep:
            drop_database(args.database)
    print(f"\npython {platform.python_version()}, {os.cpu_count()} CPUs, load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{'channel':8} {'queued':>7} {'sent':>7} {'seconds':>8} {'CPU s':>7} {'msg/s':>8} {'CPU ms/msg':>10}  "
          f"{'target':>7} {'ratio':>6}  result")
    ok = True
    for channel, queued, sent, cpu, seconds, rate, target in rows:
        passed = rate >= target and sent == queued
        ok = ok and passed
        per_message = 1000 * cpu / max(sent, 1)
        print(f"{channel:8} {queued:7d} {sent:7d} {seconds:8.2f} {cpu:7.2f} {rate:8.1f} {per_message:10.2f}  "
              f">= {target:4d} {rate / target:6.2f}  {'PASS' if passed else 'MISS'}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2000, help="reminders to send, half by e-mail [2000]")
    parser.add_argument("--batch", type=int, default=200, help="messages claimed per transaction [200]")
    parser.add_argument("--database", default=os.environ.get("BENCH_DISPATCH_DATABASE_URL"),
                        help="a PostgreSQL URL (database bench_…, created and dropped) [SQLite in a temp folder]")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of each channel's dispatch")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (and the database)")
    args = parser.parse_args()
    code = main_in_workdir(run, args, "bench-dispatch-")
    return 0 if code == 1 else code  # a missed target is reported, not an error


if __name__ == "__main__":
    sys.exit(main())
