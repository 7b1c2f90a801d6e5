"""What the benchmarks share: gunicorn servers in their own process groups, a main() that runs a bench
in a temporary folder, the bench's own PostgreSQL database (created, connected to, dropped) and the
creditor with the shipped reminder plan that the dunning benches start from. Each bench stays a script;
this is imported next to it."""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path


class SetupError(RuntimeError):
    """The benchmark could not be set up; nothing was measured."""


DUNNING_CREDITOR = """
from app import create_app
from app.extensions import db
from app.creditors.services import CreditorInput, create_creditor
from app.dunning import services
from app.dunning.models import Step
from app.dunning.settings import save_settings
app = create_app()
with app.test_request_context():
    creditor = create_creditor(CreditorInput(
        slug="bench", name="Bench Energi AS", country="NO", default_locale="nb", currency="NOK",
        reference_scheme="kid_mod10", bank_account_no="15032080119", support_email="help@bench.example"))
    save_settings(creditor, languages=["nb", "en", "de"])
    plan = services.save_plan(creditor, services.shipped_plan("NO"), actor="bench")
    db.session.commit()
    steps = db.session.query(Step).filter_by(plan_id=plan.id).order_by(Step.position).all()
    print(creditor.id, plan.id, *[f"{s.id}:{s.kind}" for s in steps])
"""


def dunning_creditor(env: dict[str, str], root: Path) -> tuple[int, int, list[tuple[int, str]]] | None:
    """A Norwegian creditor with the shipped reminder plan, made in a process of its own with `env` (the
    bench's database): its id, the plan's id and the plan's steps (id, kind) in order. None when it
    failed (its stderr printed)."""
    done = subprocess.run([sys.executable, "-c", DUNNING_CREDITOR], cwd=root, env=env, capture_output=True,
                          text=True, check=False)
    if done.returncode != 0:
        print(done.stderr[-2000:])
        return None
    words = done.stdout.splitlines()[-1].split()
    steps = [(int(step_id), kind) for step_id, kind in (word.split(":", 1) for word in words[2:])]
    return int(words[0]), int(words[1]), steps


#: the bench creates and drops its database; one that exists already is dropped only if its name says it is a bench's
BENCH_PREFIX = "bench_"


def database_name(url: str) -> str:
    from sqlalchemy import make_url

    from app.config import normalise_database_url

    name = make_url(normalise_database_url(url)).database
    if not name or not name.replace("_", "").isalnum():
        raise SetupError(f"the database name {name!r} must be letters, digits and underscores")
    return name


def create_database(url: str) -> None:
    """A new, empty database. A leftover of an earlier run (named bench_...) is dropped first; any other
    existing database is refused: the bench drops what it creates and must never drop someone's data."""
    import psycopg
    from sqlalchemy import make_url

    from app.config import normalise_database_url

    name = database_name(url)
    try:
        admin = admin_connect(url)
    except psycopg.OperationalError as exc:
        where = make_url(normalise_database_url(url)).render_as_string(hide_password=True)
        raise SetupError(f"cannot reach PostgreSQL for {where} (start one, or pass --database): {exc}") from exc
    with admin as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists and not name.startswith(BENCH_PREFIX):
            raise SetupError(f"database {name} exists; give --database a new name (the bench creates and drops it)")
        if exists:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(url: str) -> None:
    with admin_connect(url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database_name(url)}" WITH (FORCE)')


def admin_connect(url: str):
    """An autocommit connection to the PostgreSQL server of `url`, on its `postgres` database: to create
    and drop a bench's own database."""
    return _connect(url, dbname="postgres", autocommit=True)


def connect(url: str):
    """A connection to the PostgreSQL database `url` names."""
    return _connect(url)


def _connect(url: str, *, dbname: str | None = None, autocommit: bool = False):
    import psycopg
    from sqlalchemy import make_url

    from app.config import normalise_database_url

    parsed = make_url(normalise_database_url(url))
    return psycopg.connect(host=parsed.host or "127.0.0.1", port=parsed.port or 5432, user=parsed.username,
                           password=parsed.password, dbname=dbname or parsed.database, autocommit=autocommit)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen
    log: Path

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def log_tail(self, lines: int = 20) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def start_gunicorn(name: str, app_spec: str, chdir: Path, port: int, env: dict, workdir: Path, *,
                   workers: int, extra: Sequence[str] = ()) -> Server:
    """gunicorn with sync workers in its own process group, logging warnings to a file: gunicorn's own
    (its error log) and the app's (its loggers write to standard error, sent to the same file)."""
    log = workdir / f"{name}.log"
    command = [
        sys.executable, "-m", "gunicorn", "--workers", str(workers), "--worker-class", "sync",
        "--no-control-socket", "--bind", f"127.0.0.1:{port}", "--chdir", str(chdir),
        "--error-logfile", str(log), "--log-level", "warning", "--graceful-timeout", "5", *extra, app_spec,
    ]
    with open(log, "ab") as out:
        process = subprocess.Popen(
            command, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    return Server(name, port, process, log)


def stop(server: Server) -> None:
    """SIGTERM to the server's process group, SIGKILL if it is still there after 10 s."""
    if server.process.poll() is not None:
        return
    try:
        os.killpg(server.process.pid, signal.SIGTERM)
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(server.process.pid, signal.SIGKILL)
        server.process.wait(timeout=5)
    except ProcessLookupError:
        pass


def wait_until_up(server: Server, path: str, timeout: float = 30) -> None:
    """Until the server answers `path` (any status), or SetupError with its log's tail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise SetupError(f"{server.name} server exited with {server.process.returncode}:\n{server.log_tail()}")
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=2)
        try:
            connection.request("GET", path)
            connection.getresponse().read()
            return
        except OSError:
            time.sleep(0.2)
        finally:
            connection.close()
    raise SetupError(f"{server.name} server did not answer within {timeout:.0f} s:\n{server.log_tail()}")


def main_in_workdir(run: Callable[[object, Path], bool | None], args, prefix: str) -> int:
    """Run `run(args, workdir)` in a new temporary folder, removed after unless `args.keep`.
    Exit code: 2 when the setup failed, 1 when `run` returned False (a target missed), else 0."""
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        ok = run(args, workdir)
    except SetupError as exc:
        print(f"bench setup failed: {exc}", file=sys.stderr)
        return 2
    finally:
        if args.keep:
            print(f"\nkept {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 1 if ok is False else 0


def pdf_font_subsetting() -> str:
    """How WeasyPrint subsets the PDFs' fonts on this machine: HarfBuzz's C library, or fontTools in
    Python when `libharfbuzz-subset0` is missing, which doubles the CPU a PDF costs (bench/README.md)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from weasyprint.text import ffi
    if ffi.harfbuzz_subset is not None:
        return "HarfBuzz (libharfbuzz-subset0)"
    return "fontTools, in Python: libharfbuzz-subset0 is missing and every PDF costs about twice the CPU"
