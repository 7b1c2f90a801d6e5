"""Soak: two instances of the portal behind nginx, under a realistic mix of load, then faults.

On 127.0.0.1: nginx (Debian's) as the reverse proxy in front of two "hosts" of the app, each a web pool
and a documents pool (gunicorn, deploy/gunicorn.conf.py; the PDF downloads go to the documents pool,
whose workers run nicer by 10, as docs/operations.md deploys them) sharing a PROMETHEUS_MULTIPROC_DIR;
PostgreSQL (a database of its own, `bench_soak`, created and dropped here); Redis for the rate limits;
a local SMTP server (aiosmtpd, in this process); two outbox dispatchers and two notification workers
(`WEBHOOKS_APPLY_INLINE=false`), nicer by 10 as docs/operations.md deploys them (`--background-nice`).
Demo creditors and a few thousand invoices are seeded in-process.

A Python load generator (processes of threads, keep-alive connections to nginx, a client address of
its own per customer through X-Forwarded-For) drives the mix: customers opening their link and
reading the bill, some downloading the PDF, some paying through the test simulator (start, the
simulator's page, the choice, the return page), providers' signed notifications (a tenth of them sent
twice), and creditors' API calls (an invoice created, a link issued).

1. The maximum throughput: as many requests as `--connections` closed-loop connections get in `--probe` s,
   and then the background work those requests left (their receipts sent, their notifications settled),
   timed until it is done. The background loops yield the CPU to the pages, so at full load they fall
   behind and the probe's rate counts requests whose work is not yet done: the maximum the machine
   sustains is that rate scaled by the machine's CPU seconds in the probe over those of the probe and of
   the catching up after it (`Maximum.sustained`).
2. `--duration` s (60) at `--load` (80 %) of the sustained maximum: errors (target 0), p50 and p99
   (target p99 <= 100 ms), and the RSS of every gunicorn worker at the start and the end (target:
   flat). Beside them, the
   machine's own speed (`MachineSpeed`, idle before the run and during it): a shared virtual machine
   can run the same work at half speed for seconds: the p99 of the requests its slow spells touched (the
   spell and the queue it leaves) is printed apart.
2b. The maximum again (and its sustained figure), after the steady run, and the web workers' CPU ms per
   request in each run (the two probes do the same work): how far the machine itself moved while it was
   measured.
3. The faults, during the same load: PostgreSQL restarted (`pg_ctlcluster ... restart`: the machine's
   shared server, so once and short), Redis stopped and started, the SMTP server stopped and started, one
   dispatcher and one notification worker SIGKILLed and started again. Errors must fall only while
   PostgreSQL is down, and be 503s, never 500s; the recovery time is measured without restarting any
   app process.
4. Afterwards, once the outbox and the notifications are drained: every payment settled once (payments
   per provider id), every receipt e-mail delivered once (SMTP messages by Message-ID).

It prints its figures and a PASS or MISS per target; it is a benchmark, not a test (exit code 0 when it
reports, 2 when the setup fails). See bench/README.md.

    .venv/bin/python bench/soak.py [--quick] [--duration 60] [--no-faults] [--keep]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import multiprocessing
import os
import random
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # run as a script from anywhere: `import app` must work

from bench.harness import (  # noqa: E402
    BENCH_PREFIX,
    SetupError,
    connect,
    create_database,
    database_name,
    drop_database,
    free_port,
    main_in_workdir,
    pdf_font_subsetting,
    start_gunicorn,
    stop,
    wait_until_up,
)

DEFAULT_DATABASE = "postgresql://postgres@127.0.0.1:5432/bench_soak"
DEFAULT_REDIS = "redis://127.0.0.1:6379/14"
TARGET_P99_MS = 100.0
#: The background work's delay behind the pages (a receipt, a settling), p99: kept up, not starved.
TARGET_BACKGROUND_S = 5.0
#: Sessions of the mix, by weight: what one customer or system does in a row.
MIX = {"view": 60, "pdf": 3, "pay": 10, "webhook": 15, "api": 12}
#: Statuses each kind of request may answer under load (a 303 is the redirect of a form or link).
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


# --- services ---------------------------------------------------------------------------------------


@dataclass
class Proc:
    name: str
    process: subprocess.Popen
    log: Path

    def kill(self, sig=signal.SIGTERM) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)


def spawn(name: str, command: list[str], env: dict, workdir: Path) -> Proc:
    log = workdir / f"{name}.log"
    with open(log, "ab") as out:
        process = subprocess.Popen(command, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True, cwd=ROOT)
    return Proc(name, process, log)


def flask_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "flask", "--app", "wsgi", *args]


NGINX_CONF = """
worker_processes 1;
pid {workdir}/nginx.pid;
error_log {workdir}/nginx-error.log warn;
{user}
events {{ worker_connections 4096; }}
http {{
    # What the proxy measured of each request (its kind named by the load generator in X-Soak-Kind):
    # the product's latency without the load generator's own (see server_latencies). No path, no token.
    log_format soak '$msec $request_time $upstream_response_time $status $http_x_soak_kind';
    access_log {workdir}/nginx-access.log soak buffer=64k flush=1s;
    client_body_temp_path {workdir}/nginx-body;
    proxy_temp_path {workdir}/nginx-proxy;
    fastcgi_temp_path {workdir}/nginx-fastcgi;
    uwsgi_temp_path {workdir}/nginx-uwsgi;
    scgi_temp_path {workdir}/nginx-scgi;
    keepalive_timeout 65;
    keepalive_requests 100000;
    client_max_body_size 12m;
    # The load generator plays many customers: the address it names in X-Forwarded-For is the
    # client's, as an outer load balancer would say (rate limits are per client address).
    set_real_ip_from 127.0.0.1;
    real_ip_header X-Forwarded-For;
    upstream portal {{
        least_conn;
        server 127.0.0.1:{port_a} max_fails=0;
        server 127.0.0.1:{port_b} max_fails=0;
    }}
    # The PDF downloads go to each host's documents pool, as docs/operations.md ("Documents") deploys it.
    upstream documents {{
        least_conn;
        server 127.0.0.1:{docs_a} max_fails=0;
        server 127.0.0.1:{docs_b} max_fails=0;
    }}
    server {{
        listen 127.0.0.1:{port};
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $http_host;
        proxy_set_header X-Forwarded-For $remote_addr;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_set_header X-Request-ID $request_id;
        proxy_read_timeout 60s;
        location ~ \\.pdf$ {{
            proxy_pass http://documents;
        }}
        location / {{
            proxy_pass http://portal;
        }}
    }}
}}
"""


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if not found:
        raise SetupError("nginx is not installed (`make soak` installs Debian's nginx when it may)")
    return found


def start_nginx(workdir: Path, port: int, port_a: int, port_b: int, docs_a: int, docs_b: int) -> Proc:
    for folder in ("nginx-body", "nginx-proxy", "nginx-fastcgi", "nginx-uwsgi", "nginx-scgi"):
        (workdir / folder).mkdir(exist_ok=True)
    user = "user root root;" if os.geteuid() == 0 else ""
    conf = workdir / "nginx.conf"
    conf.write_text(NGINX_CONF.format(workdir=workdir, user=user, port=port, port_a=port_a, port_b=port_b,
                                      docs_a=docs_a, docs_b=docs_b))
    return spawn("nginx", [nginx_binary(), "-p", str(workdir), "-c", str(conf), "-g", "daemon off;"], {}, workdir)


class Redis:
    """The machine's Redis (the rate limits' storage): stopped and started again for the fault."""

    START = ("redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1", "--port", "6379", "--save", "",
             "--appendonly", "no", "--dir", "/var/lib/redis", "--logfile", "/var/log/redis/ci.log")

    @staticmethod
    def ping() -> bool:
        return subprocess.run(["redis-cli", "-p", "6379", "ping"], capture_output=True, text=True,
                              timeout=5).stdout.strip() == "PONG"

    def stop(self) -> None:
        subprocess.run(["redis-cli", "-p", "6379", "shutdown", "nosave"], capture_output=True, timeout=10)

    def start(self) -> None:
        subprocess.run(list(self.START), capture_output=True, timeout=10)
        for _ in range(50):
            if self.ping():
                return
            time.sleep(0.1)


def pg_cluster() -> tuple[str, str] | None:
    """(version, name) of the local cluster serving 127.0.0.1:5432, from pg_lsclusters."""
    try:
        out = subprocess.run(["pg_lsclusters", "--no-header"], capture_output=True, text=True, timeout=10).stdout
    except FileNotFoundError:
        return None
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[2] == "5432" and parts[3].startswith("online"):
            return parts[0], parts[1]
    return None


# --- seeding -----------------------------------------------------------------------------------------


@dataclass
class Seed:
    view_tokens: list[str]
    pay_tokens: list[str]
    webhooks: list[tuple[str, str, str, int, str]]  # (slug, secret, ref, amount, currency)
    api_keys: list[tuple[str, str, str]]  # (slug, key, currency)


def invoice_payload(number: str, currency: str, country: str, n: int) -> dict:
    from decimal import Decimal

    from app.billing.schemas import line_amounts

    today = date.today()
    lines = [{"description": f"Electricity, month {i}", "quantity": "1", "unit_price": 19900 + 100 * i,
              "vat_rate": 2500} for i in range(1, 4)]
    return {
        "number": number, "issue_date": (today - timedelta(days=14)).isoformat(),
        "due_date": (today + timedelta(days=7)).isoformat(), "currency": currency,
        "customer": {"external_ref": f"C-{number}", "name": f"Customer {n}", "email": f"c{n}@example.test",
                     "address": {"line1": "Street 1", "postcode": "0150", "city": "Oslo", "country": country},
                     "preferred_locale": ("nb", "de", "en")[n % 3]},
        "lines": lines,
        "total": sum(line_amounts(Decimal(line["quantity"]), line["unit_price"], line["vat_rate"])[2]
                     for line in lines),
    }


def seed(app, views: int, pays: int, webhooks: int) -> Seed:
    from app.billing.services import import_invoice
    from app.creditors.services import create_api_key, create_creditor
    from app.demo import demo_creditors
    from app.extensions import db
    from app.links.services import get_signer, issue_link
    from app.payments.providers import simulator_for, simulator_secret
    from app.payments.services import start_payment

    out = Seed([], [], [], [])
    with app.test_request_context():
        creditors = [create_creditor(data) for data in demo_creditors()]
        db.session.commit()
        out.api_keys = [(c.slug, create_api_key(c), c.currency) for c in creditors]
        base = app.config["PORTAL_BASE_URL"]
        n = 0
        for kind, count in (("view", views), ("pay", pays), ("webhook", webhooks)):
            for i in range(count):
                creditor = creditors[n % len(creditors)]
                invoice, _ = import_invoice(creditor, invoice_payload(f"SOAK-{kind}-{i}", creditor.currency,
                                                                      creditor.country, n), actor="bench")
                n += 1
                if kind == "webhook":
                    attempt = start_payment(invoice, simulator_for(creditor), amount=invoice.balance,
                                            locale=creditor.default_locale, methods=("card",),
                                            return_url=lambda ref: f"{base}/r/{ref}", cancel_url=f"{base}/b")
                    out.webhooks.append((creditor.slug, simulator_secret(creditor), attempt.provider_ref,
                                         attempt.amount, attempt.currency))
                else:
                    issued = issue_link(invoice, channel="sms", ttl_days=30, signer=get_signer(), base_url=base,
                                        actor="bench")
                    token = issued.url.rsplit("/l/", 1)[1]
                    (out.view_tokens if kind == "view" else out.pay_tokens).append(token)
                if n % 250 == 0:
                    db.session.commit()
                    print(f"  seeded {n} invoices", file=sys.stderr, flush=True)
        db.session.commit()
        db.session.remove()
        db.engine.dispose()  # forked client processes must not share its connections
    return out


def autovacuum_on(database: str) -> bool:
    with connect(database) as conn:
        return conn.execute("SHOW autovacuum").fetchone()[0] == "on"


def vacuum_analyze(database: str) -> float:
    """What autovacuum does in production, once, where this machine's PostgreSQL runs without it (CI's
    configuration turns it off): without statistics the planner guesses the seeded tables' sizes, and
    the steady run measured a plan that no production database would use (pgbench, too, vacuums after
    loading). Returns the seconds it took."""
    began = time.perf_counter()
    with connect(database) as conn:
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE")
    return time.perf_counter() - began


# --- the load generator -----------------------------------------------------------------------------


@dataclass
class Record:
    at: float  # time.time() when sent
    kind: str
    status: int  # 0: no answer (connection refused, reset, timeout)
    ms: float


class Client:
    """One keep-alive connection to nginx, its cookies, and a client address of its own."""

    def __init__(self, port: int, records: list[Record]):
        self.port, self.records = port, records
        self.connection: http.client.HTTPConnection | None = None
        self.cookies: dict[str, str] = {}
        self.address = "10.0.0.1"

    def new_customer(self, rng: random.Random) -> None:
        self.cookies.clear()
        self.address = f"10.{rng.randrange(1, 250)}.{rng.randrange(0, 250)}.{rng.randrange(1, 250)}"

    def request(self, kind: str, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        sent_headers = {"X-Forwarded-For": self.address, "Accept-Language": "nb,en;q=0.5", "X-Soak-Kind": kind,
                        **(headers or {})}
        if self.cookies:
            sent_headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        began, at = time.perf_counter(), time.time()
        status, answer_headers, data = 0, {}, b""
        try:
            if self.connection is None:
                self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            self.connection.request(method, path, body=body, headers=sent_headers)
            response = self.connection.getresponse()
            data = response.read()
            status = response.status
            answer_headers = {k.lower(): v for k, v in response.getheaders()}
            for value in response.headers.get_all("Set-Cookie") or ():
                name, _, rest = value.partition("=")
                self.cookies[name.strip()] = rest.split(";", 1)[0]
            if response.will_close:
                self.close()
        except (OSError, http.client.HTTPException):
            self.close()
        self.records.append(Record(at, kind, status, (time.perf_counter() - began) * 1000))
        return status, answer_headers, data

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


class Pacer:
    """Open loop: the next request's start time, `rate` per second across the process's threads
    (`rate` None: closed loop, as fast as answers come)."""

    def __init__(self, rate: float | None):
        self.rate, self.lock = rate, threading.Lock()
        self.next = time.monotonic()
        self.late = 0

    def wait(self) -> None:
        if not self.rate:
            return
        with self.lock:
            now = time.monotonic()
            if self.next < now - 0.25:  # behind by more than a quarter second: the threads are all busy
                self.late += 1
                self.next = now
            slot = self.next
            self.next += 1 / self.rate
        delay = slot - time.monotonic()
        if delay > 0:
            time.sleep(delay)


class Scenarios:
    def __init__(self, data: Seed, pays: list[str], webhooks: list, rng: random.Random, tag: str):
        self.data, self.pays, self.webhooks, self.rng, self.tag = data, pays, webhooks, rng, tag
        self.sent_webhooks: list[tuple] = []
        self.used_pays: list[str] = []
        self.used_hooks: list[str] = []
        self.paid: list[str] = []  # the bill's path of each payment the simulator was asked to make
        self.api_count = 0

    def run(self, client: Client, pacer: Pacer) -> None:
        kind = self.rng.choices(list(MIX), weights=list(MIX.values()))[0]
        if (kind == "pay" and not self.pays) or (kind == "webhook" and not self.webhooks):
            kind = "view"
        client.new_customer(self.rng)
        getattr(self, kind)(client, pacer)

    def _open(self, client: Client, pacer: Pacer, token: str) -> str | None:
        pacer.wait()
        status, headers, _ = client.request("link", "GET", f"/l/{token}")
        if status != 303:
            return None
        bill = headers.get("location", "").replace("http://127.0.0.1", "").split(":", 1)[-1]
        bill = bill[bill.index("/b/"):] if "/b/" in bill else None
        return bill

    def view(self, client: Client, pacer: Pacer) -> None:
        bill = self._open(client, pacer, self.rng.choice(self.data.view_tokens))
        if bill:
            pacer.wait()
            client.request("bill", "GET", bill)
            if self.rng.random() < 0.3:  # a reload, or the language switch and back
                pacer.wait()
                client.request("bill", "GET", bill)

    def pdf(self, client: Client, pacer: Pacer, documents: Client | None = None) -> None:
        """A bill and its PDF (from `documents`, with the same cookies, when the PDFs are served apart)."""
        bill = self._open(client, pacer, self.rng.choice(self.data.view_tokens))
        if bill:
            pacer.wait()
            client.request("bill", "GET", bill)
            pacer.wait()
            if documents is not None:
                documents.cookies, documents.address = client.cookies, client.address
            (documents or client).request("pdf", "GET", f"{bill}/invoice.pdf")

    def pay(self, client: Client, pacer: Pacer) -> None:
        token = self.pays.pop()
        self.used_pays.append(token)
        bill = self._open(client, pacer, token)
        if not bill:
            return
        pacer.wait()
        status, _, page = client.request("bill", "GET", bill)
        token = CSRF.search(page.decode(errors="replace")) if status == 200 else None
        if not token:
            return
        form = urlencode({"csrf_token": token.group(1), "provider": "simulator"}).encode()
        pacer.wait()
        status, headers, _ = client.request("pay", "POST", f"{bill}/pay", form,
                                            {"Content-Type": "application/x-www-form-urlencoded"})
        where = headers.get("location", "")
        if status != 303 or "/simulator/" not in where:
            return
        simulator = where[where.index("/simulator/"):]
        pacer.wait()
        status, _, page = client.request("simulator", "GET", simulator)
        token = CSRF.search(page.decode(errors="replace")) if status == 200 else None
        if not token:
            return
        form = urlencode({"csrf_token": token.group(1), "outcome": "succeed"}).encode()
        pacer.wait()
        status, headers, _ = client.request("simulator", "POST", simulator, form,
                                            {"Content-Type": "application/x-www-form-urlencoded"})
        if status == 303:
            self.paid.append(bill)
            back = headers.get("location", "")
            if "/b/" in back:
                pacer.wait()
                client.request("return", "GET", back[back.index("/b/"):])

    def webhook(self, client: Client, pacer: Pacer) -> None:
        from app.payments.gateways.simulator import SIGNATURE_HEADER, sign

        slug, secret, ref, amount, currency = self.webhooks.pop()
        self.used_hooks.append(ref)
        event_id = f"evt_soak_{self.tag}_{ref}"
        body = json.dumps({"id": event_id, "type": "payment.succeeded", "created": int(time.time()),
                           "data": {"ref": ref, "status": "succeeded", "amount": amount, "currency": currency,
                                    "method": "card"}}, separators=(",", ":")).encode()
        for _ in range(2 if self.rng.random() < 0.1 else 1):  # a tenth are sent again, as providers retry
            pacer.wait()
            status, _, _ = client.request("webhook", "POST", f"/webhooks/simulator/{slug}", body,
                                          {"Content-Type": "application/json", SIGNATURE_HEADER: sign(secret, body)})
            if status == 200:
                self.sent_webhooks.append((slug, ref))

    def api(self, client: Client, pacer: Pacer) -> None:
        _slug, key, currency = self.rng.choice(self.data.api_keys)
        self.api_count += 1
        number = f"API-{self.tag}-{self.api_count}"
        country = {"NOK": "NO"}.get(currency, "DE")
        body = json.dumps(invoice_payload(number, currency, country, self.api_count)).encode()
        auth = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        pacer.wait()
        status, _, _ = client.request("api", "POST", "/api/v1/invoices", body, auth)
        if status == 201:
            pacer.wait()
            client.request("api", "POST", f"/api/v1/invoices/{number}/links",
                           json.dumps({"channel": "email", "ttl_days": 30}).encode(), auth)


def _load_process(port: int, data: Seed, index: int, processes: int, threads: int, rate: float | None,
                  seconds: float, tag: str, start_at: float, out) -> None:
    """One client process: `threads` threads running sessions until `seconds` have passed."""
    pacer = Pacer(rate / processes if rate else None)
    records: list[Record] = []
    per_thread = []
    stop_at = start_at + seconds
    pays, hooks = data.pay_tokens[index::processes], data.webhooks[index::processes]

    def work(t: int) -> None:
        rng = random.Random(f"{tag}-{index}-{t}")
        scenarios = Scenarios(data, pays[t::threads], hooks[t::threads], rng, f"{tag}{index}x{t}")
        per_thread.append(scenarios)
        client = Client(port, records)
        while time.time() < stop_at:
            scenarios.run(client, pacer)
        client.close()

    while time.time() < start_at:
        time.sleep(0.005)
    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    out.send({
        "records": [(r.at, r.kind, r.status, r.ms) for r in records],
        "webhooks": [w for s in per_thread for w in s.sent_webhooks],
        "paid": [p for s in per_thread for p in s.paid],
        "late": pacer.late,
        "used_pays": [t for s in per_thread for t in s.used_pays],
        "used_hooks": [r for s in per_thread for r in s.used_hooks],
    })
    out.close()


@dataclass
class Run:
    seconds: float
    records: list[Record] = field(default_factory=list)
    webhooks: list[tuple] = field(default_factory=list)
    paid: list[str] = field(default_factory=list)
    late: int = 0

    @property
    def rate(self) -> float:
        return len(self.records) / self.seconds if self.seconds else 0.0

    def latencies(self, kind: str | None = None) -> list[float]:
        return sorted(r.ms for r in self.records if kind is None or r.kind == kind)

    def errors(self) -> list[Record]:
        return [r for r in self.records if r.status == 0 or r.status >= 400]


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


class Load:
    """Runs the client processes; the data pools are consumed across runs (each process takes its share)."""

    def __init__(self, port: int, data: Seed, processes: int, threads: int):
        self.port, self.data, self.processes, self.threads = port, data, processes, threads
        self.runs = 0

    def run(self, seconds: float, rate: float | None, threads: int | None = None,
            start_at: float | None = None) -> Run:
        """`seconds` of sessions from `start_at` (half a second from now): a session begun goes on to its
        end, so the last requests are answered after `seconds`."""
        self.runs += 1
        tag = f"r{self.runs}"
        start_at = start_at or time.time() + 0.5
        context = multiprocessing.get_context("fork")
        pipes, children = [], []
        for index in range(self.processes):
            receive, send = context.Pipe(duplex=False)
            child = context.Process(target=_load_process, args=(
                self.port, self.data, index, self.processes, threads or self.threads, rate, seconds, tag, start_at,
                send))
            child.start()
            send.close()
            pipes.append(receive)
            children.append(child)
        result = Run(seconds)
        used_pays, used_hooks = set(), set()
        for receive in pipes:
            got = receive.recv()
            result.records += [Record(*r) for r in got["records"]]
            result.webhooks += got["webhooks"]
            result.paid += got["paid"]
            result.late += got["late"]
            used_pays.update(got["used_pays"])
            used_hooks.update(got["used_hooks"])
        for child in children:
            child.join()
        result.records.sort(key=lambda r: r.at)
        # what this run used is gone from the pools of the next runs
        self.data.webhooks = [w for w in self.data.webhooks if w[2] not in used_hooks]
        self.data.pay_tokens = [t for t in self.data.pay_tokens if t not in used_pays]
        return result


def warm_every_worker(hosts: list[tuple[int, int]], data: Seed, workers: int, rounds: int = 8) -> None:
    """Straight to each instance (its web pool, then its documents pool for the PDF), several sessions at
    once per worker: every worker has imported and drawn what it ever will (WeasyPrint's fonts) before
    its memory is measured. Eight rounds, about 24 PDFs a documents worker: Pango's and HarfBuzz's
    caches go on growing with the glyphs of new names for a few dozen PDFs, and since the documents
    pool yields the CPU to the pages, the probe no longer draws many PDFs to finish warming them."""
    records: list[Record] = []

    def session(host: tuple[int, int], n: int) -> None:
        rng = random.Random(f"warm-{host[0]}-{n}")
        scenarios = Scenarios(data, [], [], rng, f"warm{n}")
        client, documents = Client(host[0], records), Client(host[1], records)
        for _ in range(rounds):
            client.new_customer(rng)
            scenarios.pdf(client, Pacer(None), documents)
        client.close()
        documents.close()

    threads = [threading.Thread(target=session, args=(host, n)) for host in hosts for n in range(workers * 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


# --- measuring ---------------------------------------------------------------------------------------


def children_of(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def cpu_seconds(masters: list[int]) -> float:
    """The CPU time (user and system) the workers of these gunicorn masters have used so far."""
    total = 0.0
    for pid in (p for master in masters for p in children_of(master)):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            pass
    return total


def timed_run(load: Load, web_masters: list[int], seconds: float, rate: float | None,
              threads: int | None = None, start_at: float | None = None) -> tuple[Run, float]:
    """A run and the web workers' CPU ms per request they served (every request but the PDFs). Two runs of
    the same mix at the same concurrency do the same work: a change between them is the machine's speed.
    (At full load a request takes more CPU than at 80 %: the caches and the scheduler are busier.)"""
    before = cpu_seconds(web_masters)
    result = load.run(seconds, rate, threads, start_at)
    served = sum(1 for r in result.records if r.kind != "pdf")
    return result, (cpu_seconds(web_masters) - before) * 1000 / served if served else float("nan")


def busy_cpu_seconds() -> float:
    """The CPU seconds the whole machine has worked so far (user, nice, system, interrupts: not idle, not
    waiting for I/O, not stolen by the hypervisor), every process counted."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    return (values[0] + values[1] + values[2] + values[5] + values[6]) / os.sysconf("SC_CLK_TCK")


@dataclass
class Maximum:
    """A closed-loop probe, and what the machine worked for it. The requests answered in the probe queue
    work that runs after their answer (a receipt rendered and sent, a provider's notification settled) in
    loops that yield the CPU to the pages (`--background-nice`), and the probe's sessions go on past its
    end (a PDF waiting in the documents pool): the probe's rate counts requests whose work is not all done
    in its seconds. The maximum the machine sustains counts it all: the requests over the CPU seconds the
    machine worked until they and their background work were done, at the CPU the machine gave while it
    was saturated (the probe's own seconds)."""

    run: Run
    cpu_ms: float  # the web workers' CPU per request (timed_run)
    window: float  # the machine's CPU seconds in the probe's own seconds (saturated)
    total: float  # ... from the probe's start until its last answer and the drain of its background work
    drained: float  # seconds from the last answer to the end of the drain

    @property
    def capacity(self) -> float:
        """CPU seconds per second the machine gave while saturated."""
        return self.window / self.run.seconds

    @property
    def sustained(self) -> float:
        return len(self.run.records) / (self.total / self.capacity) if self.total and self.window else self.run.rate

    def describe(self) -> str:
        return (f"{len(self.run.records)} requests; the machine worked {self.window:.1f} CPU s in the probe's "
                f"{self.run.seconds:.0f} s ({self.capacity:.2f} CPUs) and {self.total:.1f} until its last answer and "
                f"the background work it left were done ({self.drained:.0f} s of draining): sustained "
                f"{self.sustained:.0f} req/s ({(self.sustained / self.run.rate - 1) * 100:+.0f} % of its rate)")


def measure_maximum(load: Load, web_masters: list[int], app, args) -> Maximum:
    """The closed-loop probe (`--connections`, `--probe` s), then the drain of what it left behind."""
    start_at = time.time() + 0.5
    marks: dict[str, float] = {}

    def mark(name: str, at: float) -> threading.Thread:
        def wait_and_read() -> None:
            time.sleep(max(at - time.time(), 0))
            marks[name] = busy_cpu_seconds()
        thread = threading.Thread(target=wait_and_read, daemon=True)
        thread.start()
        return thread

    marking = [mark("start", start_at), mark("end", start_at + args.probe)]
    run, cpu_ms = timed_run(load, web_masters, args.probe, None, args.connections // args.clients, start_at)
    for thread in marking:
        thread.join()
    _pending, _waiting, drained = drain(app, timeout=args.drain)
    return Maximum(run, cpu_ms, marks["end"] - marks["start"], busy_cpu_seconds() - marks["start"], drained)


def worker_rss(masters: list[int]) -> dict[int, float]:
    return {pid: rss_mb(pid) for master in masters for pid in children_of(master)}


class MachineSpeed:
    """How long this machine takes for a fixed piece of pure-Python work (its CPU time), timed every
    `interval` s by a process of its own (about 1 % of a CPU). On a shared virtual machine the same work
    can take nearly twice as long from one second to the next, idle or not; at 80 % of the maximum, a
    slow spell alone fills the queues. The soak prints it beside the latencies, so that a reader can
    tell the machine's spells from the portal's."""

    LOOPS = 60_000

    def __init__(self, workdir: Path, name: str, interval: float = 0.25):
        self.path, self.interval = workdir / f"speed-{name}.txt", interval
        self.child: multiprocessing.Process | None = None

    @staticmethod
    def _time(path: Path, interval: float) -> None:
        with open(path, "w") as out:
            while True:
                began, total = time.process_time(), 0
                for i in range(MachineSpeed.LOOPS):
                    total += i * i
                out.write(f"{time.time():.3f} {(time.process_time() - began) * 1000:.3f}\n")
                out.flush()
                time.sleep(interval)

    def start(self) -> MachineSpeed:
        self.child = multiprocessing.get_context("fork").Process(target=self._time, args=(self.path, self.interval),
                                                                 daemon=True)
        self.child.start()
        return self

    def stop(self) -> list[tuple[float, float]]:
        """The samples: (when, CPU ms of the work)."""
        if self.child is not None:
            self.child.terminate()
            self.child.join()
        return [(float(at), float(ms)) for at, ms in (line.split() for line in self.path.read_text().splitlines()
                                                       if len(line.split()) == 2)]


def idle_speed(workdir: Path, seconds: float = 8.0) -> list[tuple[float, float]]:
    """The machine's speed with nothing of the soak running yet: its own spells."""
    speed = MachineSpeed(workdir, "idle").start()
    time.sleep(seconds)
    return speed.stop()


def describe_speed(idle: list[tuple[float, float]], during: list[tuple[float, float]], served: list[Served],
                   slower: float = 1.4) -> None:
    """The machine's speed idle and during the steady run (the share of samples more than `slower` times
    the idle samples' 10th percentile), then its slow spells and the requests they touched."""
    if not idle or not during:
        return
    idle_ms = sorted(ms for _, ms in idle)
    fastest = percentile(idle_ms, 10)  # its idle best, but not one lucky sample
    during_ms = sorted(ms for _, ms in during)
    print(f"  machine speed (CPU ms of a fixed loop every 0.25 s, a process of its own): idle before the run "
          f"{idle_ms[0]:.1f} to {idle_ms[-1]:.1f} ms (x{idle_ms[-1] / idle_ms[0]:.2f}), "
          f"{sum(ms > fastest * slower for ms in idle_ms) / len(idle_ms) * 100:.0f} % of the samples slower than "
          f"x{slower} its 10th percentile ({fastest:.1f} ms); during the steady run median "
          f"x{percentile(during_ms, 50) / fastest:.2f}, "
          f"{sum(ms > fastest * slower for ms in during_ms) / len(during_ms) * 100:.0f} % slower than x{slower}")
    interactive = [s for s in served if s.kind != "pdf"]
    describe_spells(during, interactive)


def describe_spells(during: list[tuple[float, float]], interactive: list[Served], slower: float = 1.25,
                    drain: float = 2.0, interval: float = 0.25) -> None:
    """The machine's slow spells during the steady run (samples slower than `slower` times the run's own
    median) and the requests they touched: those that started in a spell or in the `drain` s after it.
    At 80 % of the maximum a spell of 1.5 s at x1.6 is 0.4 s of work more than the machine can do, and the
    queue it leaves drains at the 20 % to spare: every request in that window waits, whatever it costs."""
    if not during or not interactive:
        return
    began, ended = min(s.ended - s.seconds for s in interactive), max(s.ended for s in interactive)
    during = [(at, ms) for at, ms in during if began <= at <= ended]  # the probe runs on until it is stopped
    usual = percentile(sorted(ms for _, ms in during), 50)
    spells = [at for at, ms in during if ms > usual * slower]
    touched = [any(at - 2 * interval <= s.ended - s.seconds <= at + drain for at in spells) for s in interactive]
    inside = sorted(s.seconds * 1000 for s, hit in zip(interactive, touched, strict=True) if hit)
    outside = sorted(s.seconds * 1000 for s, hit in zip(interactive, touched, strict=True) if not hit)
    line = (f"  slow spells: {len(spells)} of {len(during)} samples slower than x{slower} the run's median; the "
            f"{len(inside)} requests that started in one or in the {drain:.0f} s after it")
    line += f": p99 {percentile(inside, 99):.1f} ms" if inside else ""
    line += f"; the other {len(outside)}: p99 {percentile(outside, 99):.1f} ms" if outside else ""
    print(line)


def loadavg() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def busy_cpu_share(seconds: float = 1.0) -> float:
    """The share of the machine's CPU time that was not idle over `seconds` (all processes)."""
    def read():
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:]]
        return values[3] + values[4], sum(values)

    idle1, total1 = read()
    time.sleep(seconds)
    idle2, total2 = read()
    return 1 - (idle2 - idle1) / max(total2 - total1, 1)


# --- the faults ---------------------------------------------------------------------------------------


class Smtp:
    """A local SMTP server (aiosmtpd) in a process of its own, keeping what it accepts in a Maildir:
    stopped (killed) and started again on the same port for the fault."""

    def __init__(self, workdir: Path):
        self.host, self.port, self.maildir = "127.0.0.1", free_port(), workdir / "maildir"
        self.workdir = workdir
        self.proc: Proc | None = None

    def start(self) -> None:
        command = [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"{self.host}:{self.port}", "-c",
                   "aiosmtpd.handlers.Mailbox", str(self.maildir)]
        self.proc = spawn("smtp", command, {}, self.workdir)
        for _ in range(100):
            try:
                with socket.create_connection((self.host, self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise SetupError(f"the SMTP server does not start:\n{self.proc.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill(signal.SIGKILL)

    def received(self) -> list[tuple[str, str, float]]:
        """(Message-ID, X-Idempotency-Key, when it was written) of every message the server accepted."""
        import mailbox

        box = mailbox.Maildir(self.maildir, create=False)
        return [(str(message["Message-ID"]), str(message["X-Idempotency-Key"]),
                 os.path.getmtime(os.path.join(self.maildir, box._lookup(key))))
                for key, message in box.iteritems()]


@dataclass
class Fault:
    name: str
    began: float
    ended: float = 0.0
    note: str = ""


class Faults:
    def __init__(self, smtp, redis: Redis, workers: dict[str, Proc], respawn, cluster: tuple[str, str] | None):
        self.smtp, self.redis, self.workers, self.respawn, self.cluster = smtp, redis, workers, respawn, cluster
        self.done: list[Fault] = []
        self.pg_up_at: float | None = None

    def play(self, at: float) -> None:
        steps = [(4, self.postgres), (22, self.redis_outage), (36, self.smtp_outage), (50, self.kill_workers)]
        for offset, step in steps:
            delay = at + offset - time.time()
            if delay > 0:
                time.sleep(delay)
            try:
                step()
            except Exception as exc:  # noqa: BLE001 - a fault that could not be played is reported, not fatal
                self.done.append(Fault(step.__name__, time.time(), time.time(), f"FAILED: {exc!r}"[:200]))

    def postgres(self) -> None:
        fault = Fault("PostgreSQL restarted", time.time())
        if self.cluster is None:
            fault.note = "skipped: no local cluster on port 5432 (pg_lsclusters)"
        else:
            version, name = self.cluster
            done = subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, name, "restart", "-m",
                                   "fast"], capture_output=True, text=True, timeout=120)
            fault.note = (done.stderr or done.stdout).strip()[:200] if done.returncode else ""
        fault.ended = self.pg_up_at = time.time()
        self.done.append(fault)

    def redis_outage(self) -> None:
        fault = Fault("Redis stopped 6 s", time.time())
        self.redis.stop()
        time.sleep(6)
        self.redis.start()
        fault.ended = time.time()
        fault.note = "" if Redis.ping() else "Redis did not come back"
        self.done.append(fault)

    def smtp_outage(self) -> None:
        fault = Fault("SMTP server stopped 8 s", time.time())
        self.smtp.stop()
        time.sleep(8)
        self.smtp.start()
        fault.ended = time.time()
        self.done.append(fault)

    def kill_workers(self) -> None:
        fault = Fault("SIGKILL: dispatcher 1 and notification worker 1, started again 2 s later", time.time())
        for name in ("dispatcher-1", "worker-1"):
            proc = self.workers[name]
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.process.pid, signal.SIGKILL)
            proc.process.wait(timeout=10)
        time.sleep(2)
        for name in ("dispatcher-1", "worker-1"):
            self.workers[name] = self.respawn(name)
        fault.ended = time.time()
        self.done.append(fault)


# --- afterwards: nothing lost, nothing twice ------------------------------------------------------------


def drain(app, timeout: float) -> tuple[int, int, float]:
    """Wait until no outbox message is pending and no notification waits; (pending, waiting, seconds)."""
    from sqlalchemy import func, select

    from app.extensions import db
    from app.outbox.models import OutboxMessage, OutboxStatus
    from app.payments.models import WebhookEvent

    began = time.time()
    with app.app_context():
        while True:
            pending = db.session.scalar(select(func.count()).where(OutboxMessage.status == OutboxStatus.PENDING))
            waiting = db.session.scalar(select(func.count()).where(WebhookEvent.outcome == "received"))
            db.session.rollback()
            if (not pending and not waiting) or time.time() - began > timeout:
                db.session.remove()
                return pending, waiting, time.time() - began
            time.sleep(1)


@dataclass
class Tally:
    payments: int
    payments_twice: int
    attempts_succeeded: int
    attempts_unsettled: int
    webhook_refs: int
    webhook_refs_unsettled: int
    receipts: int
    delivered: int
    dead: int
    pending: int
    smtp_messages: int
    smtp_distinct: int
    smtp_twice: int
    repeats: list[tuple[str, list[float]]]  # Message-IDs received more than once, with the times
    delivered_not_received: int
    paid_pages: int
    paid_pages_unsettled: int


def background_delays(app, began: float, ended: float) -> dict[str, list[float]]:
    """What the pages' priority costs the background work, in seconds: each provider notification stored
    between `began` and `ended`, from its arrival to its settling by a notification worker; each e-mail
    queued then and delivered at its first try, from its queueing to its delivery."""
    from datetime import UTC, datetime

    from sqlalchemy import select

    from app.extensions import db
    from app.outbox.models import OutboxMessage
    from app.payments.models import WebhookEvent

    start, end = (datetime.fromtimestamp(t, UTC) for t in (began, ended))
    with app.app_context():
        applied = db.session.execute(select(WebhookEvent.received_at, WebhookEvent.applied_at).where(
            WebhookEvent.received_at.between(start, end), WebhookEvent.applied_at.is_not(None))).all()
        delivered = db.session.execute(select(OutboxMessage.created_at, OutboxMessage.delivered_at).where(
            OutboxMessage.created_at.between(start, end), OutboxMessage.delivered_at.is_not(None),
            OutboxMessage.attempts == 1)).all()
        db.session.remove()
    return {what: sorted((done - began_at).total_seconds() for began_at, done in rows)
            for what, rows in (("notifications settled", applied), ("e-mails delivered", delivered))}


def tally(app, smtp, webhook_refs: set[str], paid_bills: set[str]) -> Tally:
    from sqlalchemy import func, select

    from app.billing.models import Invoice
    from app.extensions import db
    from app.outbox.models import OutboxMessage, OutboxStatus
    from app.payments.gateways.base import PaymentStatus
    from app.payments.models import Payment, PaymentAttempt

    with app.app_context():
        per_id = db.session.execute(select(Payment.provider, Payment.provider_payment_id, func.count())
                                    .group_by(Payment.provider, Payment.provider_payment_id)).all()
        settled_refs = {pid for provider, pid, _n in per_id if provider == "simulator"}
        succeeded = db.session.scalars(select(PaymentAttempt.provider_ref)
                                       .where(PaymentAttempt.status == PaymentStatus.SUCCEEDED)).all()
        receipts = db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind.like("payment_receipt%"))).all()
        statuses = Counter(m.status for m in receipts)
        delivered_keys = {m.idempotency_key for m in receipts if m.status == OutboxStatus.DELIVERED}
        public_ids = set(db.session.scalars(select(Invoice.public_id)
                                                        .where(Invoice.public_id.in_(list(paid_bills) or [""]))))
        unpaid_pages = db.session.scalar(select(func.count()).where(
            Invoice.public_id.in_(list(paid_bills) or [""]), Invoice.amount_paid < Invoice.total)) or 0
        db.session.remove()
    mails = smtp.received()
    received = [mid for mid, _key, _at in mails]
    received_keys = {key for _mid, key, _at in mails}
    counted = Counter(received)
    times: dict[str, list[float]] = {}
    for mid, _key, at in mails:
        times.setdefault(mid, []).append(at)
    return Tally(
        payments=sum(n for *_rest, n in per_id), payments_twice=sum(1 for *_rest, n in per_id if n > 1),
        attempts_succeeded=len(succeeded), attempts_unsettled=len(set(succeeded) - settled_refs),
        webhook_refs=len(webhook_refs), webhook_refs_unsettled=len(webhook_refs - settled_refs),
        receipts=len(receipts), delivered=statuses[OutboxStatus.DELIVERED], dead=statuses[OutboxStatus.DEAD],
        pending=statuses[OutboxStatus.PENDING], smtp_messages=len(received), smtp_distinct=len(counted),
        smtp_twice=sum(1 for n in counted.values() if n > 1),
        repeats=[(mid, sorted(at)) for mid, at in times.items() if len(at) > 1],
        delivered_not_received=len(delivered_keys - received_keys),
        paid_pages=len(public_ids), paid_pages_unsettled=unpaid_pages,
    )


# --- the report ------------------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def describe_run(name: str, run: Run) -> None:
    errors = run.errors()
    every = run.latencies()
    print(f"{name}: {len(run.records)} requests in {run.seconds:.0f} s = {run.rate:.0f} req/s, "
          f"{len(errors)} errors, p50 {percentile(every, 50):.1f} ms, p99 {percentile(every, 99):.1f} ms"
          + (f", {run.late} starts late by >0.25 s" if run.late else ""))
    print(f"  {'kind':<10} {'count':>6} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}  statuses")
    for kind in sorted({r.kind for r in run.records}):
        values = run.latencies(kind)
        statuses = Counter(r.status for r in run.records if r.kind == kind)
        print(f"  {kind:<10} {len(values):>6} {percentile(values, 50):>8.1f} {percentile(values, 99):>8.1f} "
              f"{max(values):>8.1f}  " + ", ".join(f"{s}: {n}" for s, n in sorted(statuses.items())))


@dataclass
class Served:
    """One request as nginx logged it: when it ended, its time in nginx (from the request's first byte
    to the answer's last, in s), its time upstream (the app: queueing in gunicorn's backlog and the
    worker), status and kind."""

    ended: float
    seconds: float
    upstream: float | None
    status: int
    kind: str


def server_latencies(workdir: Path, began: float, ended: float) -> list[Served]:
    """What nginx logged of the requests that ended between `began` and `ended` (epoch seconds)."""
    time.sleep(1.5)  # the log's buffer is flushed every second
    served = []
    path = workdir / "nginx-access.log"
    for line in path.read_text().splitlines() if path.exists() else ():
        parts = line.split()
        if len(parts) != 5 or parts[4] == "-":
            continue
        at = float(parts[0])
        if not began <= at <= ended:
            continue
        upstream = [float(v) for v in parts[2].replace(",", " ").replace(":", " ").split() if v != "-"]
        served.append(Served(at, float(parts[1]), sum(upstream) if upstream else None, int(parts[3]), parts[4]))
    return served


def describe_served(served: list[Served]) -> float:
    """Per kind, the latencies nginx measured (`Served`); returns the p99 of every kind but the PDFs."""
    print(f"  as nginx measured them (the product without the load generator's own delays): "
          f"{len(served)} requests")
    print(f"  {'kind':<10} {'count':>6} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}  {'upstream p50':>12} "
          f"{'p99 ms':>8}")
    for kind in sorted({s.kind for s in served}):
        values = sorted(s.seconds * 1000 for s in served if s.kind == kind)
        upstream = sorted(s.upstream * 1000 for s in served if s.kind == kind and s.upstream is not None)
        print(f"  {kind:<10} {len(values):>6} {percentile(values, 50):>8.1f} {percentile(values, 99):>8.1f} "
              f"{max(values):>8.1f}  {percentile(upstream, 50):>12.1f} {percentile(upstream, 99):>8.1f}")
    return percentile(sorted(s.seconds * 1000 for s in served if s.kind != "pdf"), 99)


def run(args, workdir: Path) -> bool:
    from flask_migrate import upgrade

    database = args.database
    if not database_name(database).startswith(BENCH_PREFIX):
        raise SetupError("--database must name a database starting with bench_ (the soak creates and drops it)")
    nginx_binary()
    if not Redis.ping():
        raise SetupError("Redis does not answer on 127.0.0.1:6379 (start it: see the README)")
    cluster = pg_cluster()
    print(f"soak: machine {os.cpu_count()} CPUs, load average {loadavg()} before, "
          f"{busy_cpu_share() * 100:.0f} % of the CPUs busy (other work) over 1 s; PDF fonts subset by "
          f"{pdf_font_subsetting()}", flush=True)
    idle = idle_speed(workdir)
    create_database(database)
    procs: dict[str, Proc] = {}
    servers = []
    smtp = Smtp(workdir)
    port_a, port_b, port = free_port(), free_port(), free_port()
    docs_a, docs_b = free_port(), free_port()
    env = {
        "PORTAL_ENV": "development", "PORTAL_INSTANCE_PATH": str(workdir / "instance"),
        "DATABASE_URL": database, "SECRET_KEY": secrets.token_urlsafe(48),
        "LINK_SIGNING_KEYS": secrets.token_urlsafe(48), "DATA_ENCRYPTION_KEYS": secrets.token_urlsafe(48),
        "PORTAL_BASE_URL": f"http://127.0.0.1:{port}", "PAYMENTS_SIMULATOR": "true", "WEBHOOKS_APPLY_INLINE": "false",
        "RATELIMIT_STORAGE_URI": args.redis, "PROXY_FIX_COUNT": "1", "LOG_LEVEL": "WARNING", "LOG_FORMAT": "json",
        "MAIL_SERVER": smtp.host, "MAIL_PORT": str(smtp.port), "MAIL_FROM": "billing@soak.example",
        "MAIL_TIMEOUT_SECONDS": "2", "SMS_TIMEOUT_SECONDS": "2", "OUTBOX_LEASE_SECONDS": str(LEASE_SECONDS),
        "OUTBOX_RETRY_BASE_SECONDS": "2", "OUTBOX_RETRY_MAX_SECONDS": "8", "OUTBOX_MAX_ATTEMPTS": "30",
        "OUTBOX_POLL_SECONDS": "1", "METRICS_TOKEN": "soak-" + secrets.token_hex(20),
        # the limits are on (Redis counts every request) at production's settings per client address
        # A small page cache, full before the steady run, so a worker's memory growth there is not the
        # cache filling up (1000 pages, about 10 MB, would still be filling at the end of a minute).
        "PAGE_CACHE_ENTRIES": "50",
        # The same for the documents pool's PDF cache (64 MB a worker by default, filling for hours): at
        # most 2 MB of a documents worker's growth is its cache filling, not the 64 MB.
        "PDF_CACHE_MB": "2",
    }
    os.environ.update(env)
    from app import create_app

    app = create_app()
    try:
        with app.app_context():
            upgrade()
        started = time.time()
        data = seed(app, views=300, pays=args.pays, webhooks=args.webhooks)
        print(f"seeded {len(data.view_tokens)} bills to view, {len(data.pay_tokens)} to pay, "
              f"{len(data.webhooks)} attempts to notify, in {time.time() - started:.0f} s", flush=True)
        autovacuum = autovacuum_on(database)
        if not autovacuum:
            print(f"PostgreSQL runs without autovacuum here: VACUUM ANALYZE after seeding "
                  f"({vacuum_analyze(database):.1f} s) and after the probe, as autovacuum would", flush=True)
        smtp.start()
        # Each "host": its web pool and its documents pool (the PDFs, WORKER_NICE=10), one metrics folder.
        for name, bind, folder, workers, nice in (
                ("web-a", port_a, "metrics-a", args.workers, "0"), ("web-b", port_b, "metrics-b", args.workers, "0"),
                ("docs-a", docs_a, "metrics-a", args.document_workers, "10"),
                ("docs-b", docs_b, "metrics-b", args.document_workers, "10")):
            (workdir / folder).mkdir(exist_ok=True)
            servers.append(start_gunicorn(
                name, "wsgi:app", ROOT, bind,
                {**env, "PROMETHEUS_MULTIPROC_DIR": str(workdir / folder), "WORKER_NICE": nice}, workdir,
                workers=workers, extra=["-c", str(ROOT / "deploy" / "gunicorn.conf.py"), "--access-logfile",
                                        "/dev/null", "--timeout", "60"]))

        def respawn(name: str) -> Proc:
            folder = workdir / ("metrics-a" if name.endswith("1") else "metrics-b")
            command = flask_command("outbox", "run", "--interval", "0.5") if name.startswith("dispatcher") \
                else flask_command("payments", "apply-events", "--interval", "0.2")
            # nicer by WORKER_NICE, each in a session of its own (app/core/priority.py): the pages first
            return spawn(name, command, {**env, "PROMETHEUS_MULTIPROC_DIR": str(folder),
                                         "WORKER_NICE": str(args.background_nice)}, workdir)

        for name in ("dispatcher-1", "dispatcher-2", "worker-1", "worker-2"):
            procs[name] = respawn(name)
        procs["nginx"] = start_nginx(workdir, port, port_a, port_b, docs_a, docs_b)
        for server in servers:
            wait_until_up(server, "/healthz", timeout=60)
        for _ in range(100):
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                connection.request("GET", "/readyz")
                if connection.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.1)
        else:
            raise SetupError(f"nginx does not answer on {port}:\n" + (workdir / "nginx-error.log").read_text()[-2000:])
        masters = [s.process.pid for s in servers]
        load = Load(port, data, processes=args.clients, threads=args.threads)

        print("\nwarm-up ...", flush=True)
        warm_every_worker([(port_a, docs_a), (port_b, docs_b)], data, max(args.workers, args.document_workers))
        load.run(args.warmup, None, threads=4)
        drain(app, timeout=args.drain)  # the warm-up's receipts and settlements before the probe
        web_masters = [s.process.pid for s in servers if s.name.startswith("web")]
        first = measure_maximum(load, web_masters, app, args)
        probe, probe_cpu = first.run, first.cpu_ms
        describe_run(f"\n1. maximum throughput ({args.connections} connections, closed loop)", probe)
        print(f"  with its background work: {first.describe()}")
        if not autovacuum:
            vacuum_analyze(database)
        target = args.rate or first.sustained * args.load
        rss_before = worker_rss(masters)
        samples: list[dict[int, float]] = []
        sampling = threading.Event()

        def sample_rss() -> None:  # every tenth of the run: growth that goes on, or a step (a PDF's peak)
            while not sampling.wait(args.duration / 10):
                samples.append(worker_rss(masters))

        sampler = threading.Thread(target=sample_rss, daemon=True)
        sampler.start()
        speed = MachineSpeed(workdir, "steady").start()
        steady, steady_cpu = timed_run(load, web_masters, args.duration, target)
        sampling.set()
        rss_after = worker_rss(masters)
        share = (f"{target / first.sustained * 100:.0f} % of the sustained maximum (--rate)" if args.rate
                 else f"{args.load * 100:.0f} % of the sustained maximum")
        describe_run(f"\n2. {args.duration:.0f} s at {share} = {target:.0f} req/s (open loop)", steady)
        interactive = sorted(r.ms for r in steady.records if r.kind != "pdf")
        p99, errors = percentile(interactive, 99), steady.errors()
        served = server_latencies(workdir, steady.records[0].at,
                                  max(r.at + r.ms / 1000 for r in steady.records) + 0.1) if steady.records else []
        served_p99 = describe_served(served) if served else float("nan")
        describe_speed(idle, speed.stop(), served)
        grown = [rss_after[pid] - rss_before[pid] for pid in rss_before if pid in rss_after]
        print(f"  worker RSS MB at start: {', '.join(f'{v:.0f}' for v in rss_before.values())}")
        at_end = [rss_after.get(pid, float("nan")) for pid in rss_before]
        print(f"  worker RSS MB at end:   {', '.join(f'{v:.0f}' for v in at_end)}")
        trends = []
        for pid in rss_before:
            series = [v for v in (rss_before[pid], *(sample.get(pid) for sample in samples), rss_after.get(pid))
                      if v is not None and v == v]
            third = max(len(series) // 3, 1)  # the mean of the last third against the first's: a PDF's peak
            trends.append(statistics.fmean(series[-third:]) - statistics.fmean(series[:third]))  # is no trend
            print(f"    worker {pid}: " + " ".join(f"{v:.0f}" for v in series) + f"  (trend {trends[-1]:+.1f} MB)")
        flat = bool(trends) and max(trends) < 10 and len(rss_after) == len(rss_before)
        behind = background_delays(app, steady.records[0].at, steady.records[-1].at) if steady.records else {}
        print("  the background work behind the steady run (the dispatchers and notification workers, nicer by "
              f"{args.background_nice}): " + "; ".join(
                  f"{len(seconds)} {what} after p50 {percentile(seconds, 50):.2f} s, p99 "
                  f"{percentile(seconds, 99):.2f} s (max {max(seconds, default=float('nan')):.2f} s)"
                  for what, seconds in behind.items()))
        slowest = max((percentile(seconds, 99) for seconds in behind.values() if seconds), default=float("nan"))
        results = {
            "errors during the steady run = 0": (not errors, f"{len(errors)}"),
            f"p99 <= {TARGET_P99_MS:.0f} ms as nginx measured it (every request but the PDF downloads)":
                (served_p99 <= TARGET_P99_MS, f"{served_p99:.1f} ms; as the load generator measured it {p99:.1f} "
                                              f"ms, with the PDFs {percentile(steady.latencies(), 99):.1f} ms"),
            "worker RSS flat (the last third's mean < 10 MB above the first third's, no worker restarted)":
                (flat, f"largest trend {max(trends) if trends else float('nan'):+.1f} MB, largest start-to-end "
                       f"{max(grown) if grown else float('nan'):+.1f} MB"),
            f"the background work kept up (p99 <= {TARGET_BACKGROUND_S:.0f} s from a notification's arrival to its "
            "settling, from an e-mail's queueing to its delivery)":
                (slowest <= TARGET_BACKGROUND_S, f"{slowest:.2f} s"),
        }
        if errors:
            print("  errors: " + ", ".join(f"{k} {s}: {n}" for (k, s), n in
                                            Counter((e.kind, e.status) for e in errors).most_common(8)))
        # The maximum again, after the steady run: on a shared virtual machine it can move by a quarter
        # within minutes, and 80 % of the first is then more (or less) than 80 % of what the machine had.
        drain(app, timeout=args.drain)
        second = measure_maximum(load, web_masters, app, args)
        again, again_cpu = second.run, second.cpu_ms
        machine = (f"maximum {probe.rate:.0f} req/s before the steady run and {again.rate:.0f} after it "
                   f"({(again.rate / probe.rate - 1) * 100:+.0f} %), sustained {first.sustained:.0f} and "
                   f"{second.sustained:.0f} ({(second.sustained / first.sustained - 1) * 100:+.0f} %): the steady "
                   f"run's {steady.rate:.0f} req/s were {steady.rate / first.sustained * 100:.0f} and "
                   f"{steady.rate / second.sustained * 100:.0f} % of the sustained maxima; the web "
                   f"workers' CPU per request {probe_cpu:.1f} ms in the first probe and {again_cpu:.1f} in the "
                   f"second (the same work at the same concurrency: the difference is the machine's), "
                   f"{steady_cpu:.1f} in the steady run")
        print(f"\n2b. the machine: {machine}")
        print(f"  the second probe with its background work: {second.describe()}")
        if not args.no_faults:
            faults = Faults(smtp, Redis(), procs, respawn, cluster)
            fault_seconds = 70.0
            player = threading.Thread(target=faults.play, args=(time.time() + 0.5,), daemon=True)
            player.start()
            faulted = load.run(fault_seconds, target)
            player.join(timeout=120)
            describe_run(f"\n3. faults during {fault_seconds:.0f} s at {target:.0f} req/s", faulted)
            for fault in faults.done:
                print(f"  {fault.name}: at +{fault.began - faulted.records[0].at:.1f} s, "
                      f"{fault.ended - fault.began:.1f} s" + (f" ({fault.note})" if fault.note else ""))
            results.update(judge_faults(faulted, faults))
            if any(r.status == 500 for r in faulted.records):
                print("  the app's log of its 500s:")
                for line in server_errors(workdir):
                    print(f"    {line}")
        pending, waiting, drained = drain(app, timeout=args.drain)
        print(f"\n4. drained in {drained:.0f} s: {pending} outbox messages pending, {waiting} notifications waiting")
        runs = [probe, steady, again] + ([faulted] if not args.no_faults else [])
        hooks = {ref for r in runs for _slug, ref in r.webhooks}
        paid = {p.rsplit("/b/", 1)[1].split("/")[0] for r in runs for p in r.paid}
        counts = tally(app, smtp, hooks, paid)
        print(f"  payments recorded {counts.payments} (provider ids recorded twice: {counts.payments_twice}); "
              f"attempts succeeded {counts.attempts_succeeded}, unsettled {counts.attempts_unsettled}")
        print(f"  notified attempts {counts.webhook_refs}, unsettled {counts.webhook_refs_unsettled}; "
              f"bills paid through the simulator {counts.paid_pages}, unpaid {counts.paid_pages_unsettled}")
        print(f"  receipts {counts.receipts}: delivered {counts.delivered}, dead {counts.dead}, pending "
              f"{counts.pending}; SMTP received {counts.smtp_messages} ({counts.smtp_distinct} distinct Message-IDs, "
              f"{counts.smtp_twice} received twice); delivered but never received {counts.delivered_not_received}")
        results.update({
            "every payment settled (succeeded attempts, notifications, simulator payments)":
                (not counts.attempts_unsettled and not counts.webhook_refs_unsettled
                 and not counts.paid_pages_unsettled, f"{counts.attempts_unsettled + counts.webhook_refs_unsettled}"
                 " unsettled"),
            "nothing settled twice (payments per provider id)": (not counts.payments_twice,
                                                                 f"{counts.payments_twice}"),
            "every receipt e-mail delivered": (counts.delivered == counts.receipts == counts.payments
                                               and not counts.delivered_not_received,
                                               f"{counts.delivered} of {counts.receipts}"),
        })
        results.update(judge_repeats(counts, faults if not args.no_faults else None))
        results.update(judge_metrics([port_a, port_b], env["METRICS_TOKEN"], counts))
        print(f"\nload average after: {loadavg()}")
        print("\ntargets")
        for name, (ok, figure) in results.items():
            print(f"  {verdict(ok)}  {name}: {figure}")
        print(f"  (the machine: {machine})")
        return True
    finally:
        for proc in procs.values():
            proc.kill()
        for server in servers:
            stop(server)
        smtp.stop()
        if not Redis.ping():
            Redis().start()
        from app.extensions import db

        with app.app_context():
            db.engine.dispose()
        if not args.keep:
            for _ in range(30):  # the server may still be coming back from the restart
                try:
                    drop_database(database)
                    break
                except Exception:  # noqa: BLE001
                    time.sleep(1)
        else:
            print(f"kept the database {database_name(database)}", file=sys.stderr)


LEASE_SECONDS = 10  # OUTBOX_LEASE_SECONDS of the run


def scrape(port: int, token: str) -> dict[tuple[str, tuple], float]:
    from prometheus_client.parser import text_string_to_metric_families

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", "/metrics", headers={"Authorization": f"Bearer {token}"})
    response = connection.getresponse()
    text = response.read().decode()
    connection.close()
    if response.status != 200:
        return {}
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def judge_metrics(ports: list[int], token: str, counts: Tally) -> dict[str, tuple[bool, str]]:
    """Each instance's /metrics adds up what every process of its "host" counted (its gunicorn workers,
    its dispatcher and its notification worker, the killed ones included): together they must say what
    the database says."""
    scraped = [scrape(port, token) for port in ports]

    def total(name: str, **labels) -> float:
        want = set(labels.items())
        return sum(v for samples in scraped for (n, ls), v in samples.items() if n == name and want <= set(ls))

    succeeded = total("portal_payments_total", outcome="succeeded")
    delivered = total("portal_outbox_deliveries_total", channel="email", result="delivered")
    retried = total("portal_outbox_deliveries_total", channel="email", result="retry")
    now = time.time()
    ages = {job: now - max((v for samples in scraped for (n, ls), v in samples.items()
                            if n == "portal_job_last_success_timestamp_seconds" and ("job", job) in ls), default=0)
            for job in ("outbox", "payments_apply_events")}
    requests = total("portal_request_duration_seconds_count")
    print(f"  /metrics of both instances: {requests:.0f} requests timed, payments succeeded {succeeded:.0f}, "
          f"e-mails delivered {delivered:.0f} (tries to retry {retried:.0f}), last success of the dispatchers "
          f"{ages['outbox']:.0f} s ago, of the notification workers {ages['payments_apply_events']:.0f} s ago")
    return {
        "the metrics agree with the database (payments succeeded, e-mails delivered, across processes)":
            (scraped[0] != {} and succeeded == counts.payments and delivered == counts.delivered,
             f"{succeeded:.0f} = {counts.payments} payments, {delivered:.0f} = {counts.delivered} delivered"),
    }


def judge_repeats(counts: Tally, faults: Faults | None) -> dict[str, tuple[bool, str]]:
    """An e-mail received twice is the outbox's at-least-once delivery at work only where one side died
    between the server storing the message and the dispatcher committing its delivery:
    - its dispatcher was SIGKILLed after the server's 250: the first copy before the kill, the second
      once the lease ran out;
    - the SMTP server was killed after storing the message and before its 250 reached the dispatcher
      (RFC 1047's window): the first copy within half a second of the kill, the second after the server
      came back. The dispatcher saw the connection drop and cannot tell that from a message lost.
    Both copies carry the same Message-ID (mail clients show one). Any other repeat is a miss."""
    done = faults.done if faults else []
    kill = next((f for f in done if f.name.startswith("SIGKILL")), None)
    smtp = next((f for f in done if f.name.startswith("SMTP server")), None)

    def why(at: list[float]) -> str | None:
        if len(at) != 2:
            return None
        if kill is not None and at[0] <= kill.began + 0.5 and kill.began <= at[1] <= kill.began + LEASE_SECONDS + 20:
            return "resent after its dispatcher was killed"
        if smtp is not None and abs(at[0] - smtp.began) <= 0.5 and at[1] >= smtp.ended:
            return f"stored {at[0] - smtp.began:+.2f} s from the SMTP server's kill, sent again after its restart"
        return None

    explained = 0
    for mid, at in counts.repeats:
        how = why(at)
        explained += how is not None
        when = "; ".join(f"{f.name.split(':')[0]} {at[0] - f.began:+.2f} s / {at[1] - f.began:+.2f} s"
                         for f in (smtp, kill) if f is not None)
        print(f"  received twice: {mid}, {at[1] - at[0]:.1f} s apart ({when}), {how or 'NOT explained by a kill'}")
    return {
        "nothing sent twice (SMTP messages by Message-ID), but a message stored by the server when its "
        "dispatcher or the server itself was killed (sent again, same Message-ID)":
            (explained == len(counts.repeats),
             f"{counts.smtp_twice} received twice, {explained} of them across a kill"),
    }


def server_errors(workdir: Path, limit: int = 3) -> list[str]:
    """The app's own words for its unhandled errors (the gunicorn logs' JSON lines), for a 500 seen; not the
    rate limits' (Redis stopped on purpose: the request is let through, said at ERROR with its traceback)."""
    found = []
    for log in sorted(workdir.glob("web-*.log")):
        for line in log.read_text(errors="replace").splitlines():
            if '"logger": "app.ratelimit"' in line:
                continue
            if '"unhandled error' in line or "Traceback" in line or '"exception"' in line:
                found.append(f"{log.name}: {_cause(line)}")
    return found[:limit]


def _cause(line: str, frames: int = 24) -> str:
    """A JSON log line's message and the end of its traceback (the exception raised last, and where: a
    chained one's first lines say less), else the line's start."""
    try:
        entry = json.loads(line)
    except ValueError:
        return line[:1500]
    tail = str(entry.get("exception") or "").splitlines()[-frames:]
    return "\n      ".join([str(entry.get("message")), *tail])


def judge_faults(run: Run, faults: Faults) -> dict[str, tuple[bool, str]]:
    """Errors only while PostgreSQL was down (and after, until the first success), 503 never 500."""
    pg = next((f for f in faults.done if f.name.startswith("PostgreSQL")), None)
    errors = run.errors()
    results: dict[str, tuple[bool, str]] = {}
    by_status = Counter(e.status for e in errors)
    print("  errors by status: " + (", ".join(f"{s}: {n}" for s, n in sorted(by_status.items())) or "none"))
    if pg is None or pg.note.startswith("skipped"):
        results["errors only during the PostgreSQL restart"] = (not errors, f"{len(errors)} (no restart)")
        return results
    # the outage: from the restart's start to the first success after the server is back
    after = [r for r in run.records if r.at >= pg.ended and 200 <= r.status < 400]
    recovered_at = after[0].at if after else float("inf")
    last_error = max((e.at for e in errors if e.at < recovered_at + 1), default=pg.began)
    # A request in flight when the server went down may fail too, whenever it started: a PDF waits in
    # the documents pool's queue for seconds before it reads the bill. Outside: an error whose whole
    # time, from its start to its answer, fell outside the outage.
    window = (pg.began - 0.5, max(recovered_at, last_error) + 0.5)
    outside = [e for e in errors if e.at + e.ms / 1000 < window[0] or e.at > window[1]]
    not_503 = [e for e in errors if e.status != 503]
    down = [e for e in errors if e not in outside]
    print(f"  PostgreSQL: restart took {pg.ended - pg.began:.1f} s; {len(down)} errors during it "
          f"({', '.join(f'{s}: {n}' for s, n in sorted(Counter(e.status for e in down).items())) or 'none'}); "
          f"first success {recovered_at - pg.ended:.1f} s after the server was back; last error "
          f"{last_error - pg.began:.1f} s after the restart began")
    if outside:
        print("  errors outside the PostgreSQL outage: " + ", ".join(
            f"{k} {s}: {n}" for (k, s), n in Counter((e.kind, e.status) for e in outside).most_common(8)))
    results["errors only while PostgreSQL is down"] = (not outside, f"{len(outside)} outside")
    results["those errors are 503 (never 500, nor a dropped connection)"] = (not not_503, ", ".join(
        f"{s}: {n}" for s, n in sorted(Counter(e.status for e in not_503).items())) or "all 503")
    recovery = max(recovered_at, last_error) - pg.ended
    results["recovered without restarting an app process (< 10 s after PostgreSQL is back)"] = (
        recovery < 10, f"{max(recovery, 0):.1f} s")
    return results


def parse_args(argv: list[str] | None = None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", default=DEFAULT_DATABASE)
    parser.add_argument("--redis", default=DEFAULT_REDIS, help="the rate limits' storage")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of the steady run")
    parser.add_argument("--probe", type=float, default=20.0, help="seconds of the maximum-throughput run")
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--load", type=float, default=0.8, help="share of the sustained maximum for the steady run")
    parser.add_argument("--rate", type=float, default=None,
                        help="requests per second of the steady run instead (to compare two revisions at one load)")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn sync workers per instance")
    parser.add_argument("--document-workers", type=int, default=2,
                        help="sync workers of each instance's documents pool (the PDFs, nicer by 10)")
    parser.add_argument("--background-nice", type=int, default=10, choices=range(20), metavar="0-19",
                        help="WORKER_NICE of the dispatchers and notification workers (0: as the pages)")
    parser.add_argument("--clients", type=int, default=2, help="client processes")
    parser.add_argument("--threads", type=int, default=24, help="threads per client process (open loop)")
    parser.add_argument("--connections", type=int, default=16, help="connections of the closed-loop probe")
    parser.add_argument("--pays", type=int, default=2500, help="bills to pay through the simulator")
    parser.add_argument("--webhooks", type=int, default=2500, help="attempts to notify")
    parser.add_argument("--drain", type=float, default=180.0, help="seconds to wait for the outbox at the end")
    parser.add_argument("--no-faults", action="store_true")
    parser.add_argument("--quick", action="store_true", help="short runs, for development")
    parser.add_argument("--keep", action="store_true", help="keep the database and the temporary folder")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.probe, args.warmup, args.pays, args.webhooks = 15.0, 8.0, 2.0, 600, 600
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return main_in_workdir(run, args, "soak-")


if __name__ == "__main__":
    sys.exit(main())
