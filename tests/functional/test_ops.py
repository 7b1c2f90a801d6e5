"""Running the portal: /healthz, /readyz, /metrics behind its token, what the metrics count, the 503 of
a database outage, JSON logs with link tokens redacted, and the gunicorn hooks (deploy/gunicorn.conf.py)."""

from __future__ import annotations

import json
import logging
import os
import re
import runpy
import sqlite3
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from app import create_app
from app.config import ROOT
from app.core import metrics
from app.core.jobs import JobRun, record_success
from app.core.priority import autogroup_nice
from app.debt_collection.partners import API_KEY_PREFIX
from app.extensions import db
from app.links.signer import LinkSigner
from app.models import utcnow
from app.ops.logs import JsonFormatter, configure_logging
from app.outbox.models import OutboxMessage, OutboxStatus
from app.payments.gateways.base import PaymentStatus
from app.payments.gateways.simulator import sign
from tests.conftest import TEST_KEYS
from tests.functional.test_webhooks import Bill, post

TOKEN = "metrics-" + "t" * 40


@pytest.fixture
def scrape(app, client, monkeypatch):
    monkeypatch.setitem(app.config, "METRICS_TOKEN", TOKEN)

    def read() -> dict[tuple[str, tuple], float]:
        response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        samples = {}
        for family in text_string_to_metric_families(response.get_data(as_text=True)):
            for sample in family.samples:
                samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return samples

    return read


def value(samples, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_healthz_is_liveness_and_readyz_asks_the_database(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.get_json() == {"status": "ready", "database": "up"}
    assert ready.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("header", [None, "Bearer wrong", f"Basic {TOKEN}", f"Bearer {TOKEN}x"])
def test_metrics_are_not_public(app, client, monkeypatch, header):
    monkeypatch.setitem(app.config, "METRICS_TOKEN", TOKEN)
    headers = {"Authorization": header} if header else {}
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 404 and b"portal_" not in response.data


def test_metrics_are_off_without_a_token(client):
    assert client.get("/metrics", headers={"Authorization": "Bearer "}).status_code == 404


def test_request_latency_by_endpoint_and_status_class_never_by_path(client, scrape):
    token = LinkSigner(TEST_KEYS, 86400).sign(LinkSigner.new_key(), "bill")
    before = scrape()
    assert client.get(f"/l/{token}").status_code == 404
    assert client.get("/no/such/page").status_code == 404
    samples = scrape()
    count = "portal_request_duration_seconds_count"
    assert value(samples, count, endpoint="portal.open_link", status="4xx") \
        == value(before, count, endpoint="portal.open_link", status="4xx") + 1
    assert value(samples, count, endpoint="unmatched", status="4xx") >= 1
    assert value(samples, count, endpoint="ops.metrics", status="2xx") >= 1
    text = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).get_data(as_text=True)
    assert token not in text and "/l/" not in text and "/no/such" not in text


def test_payments_are_counted_when_their_transaction_commits(app, client, scrape):
    bill = Bill(app)
    before = scrape()
    succeeded = {"provider": "simulator", "outcome": "succeeded"}
    body = bill.body("evt_ops_1")
    assert post(client, bill.endpoint, body, sign(bill.secret, body)).status_code == 200
    after = scrape()
    assert value(after, "portal_payments_total", **succeeded) == value(before, "portal_payments_total", **succeeded) + 1
    body = bill.body("evt_ops_2")  # the same payment told again: no second count
    post(client, bill.endpoint, body, sign(bill.secret, body))
    assert value(scrape(), "portal_payments_total", **succeeded) == value(after, "portal_payments_total", **succeeded)


def test_a_rolled_back_payment_counts_nothing(app, session):
    from app.payments.services import settle

    bill = Bill(app)
    child = metrics.payments().labels("manual", "succeeded")
    before = child._value.get()
    with app.app_context():
        settle(bill.invoice.id, provider="manual", payment_id="rolled-back", amount=100, currency="NOK",
               method=None, received_at=utcnow(), actor="test")
        db.session.rollback()
    assert child._value.get() == before


def test_failed_attempts_and_refused_notifications_are_counted(app, client, scrape):
    bill = Bill(app)
    before = scrape()
    body = bill.body("evt_ops_fail", status=PaymentStatus.FAILED)
    assert post(client, bill.endpoint, body, sign(bill.secret, body)).status_code == 200
    assert post(client, bill.endpoint, body, "t=1,v1=forged").status_code == 400
    after = scrape()
    failed = {"provider": "simulator", "outcome": "failed"}
    assert value(after, "portal_payments_total", **failed) == value(before, "portal_payments_total", **failed) + 1
    refused = "portal_provider_notifications_refused_total"
    assert value(after, refused, provider="simulator") == value(before, refused, provider="simulator") + 1


def test_outbox_lag_dead_letters_and_job_runs_are_read_at_scrape_time(app, session, scrape):
    now = utcnow()
    for key, status, due in (("lag-1", OutboxStatus.PENDING, now - timedelta(seconds=90)),
                             ("lag-2", OutboxStatus.PENDING, now + timedelta(minutes=5)),  # leased or waiting
                             ("dead-1", OutboxStatus.DEAD, now), ("dead-2", OutboxStatus.DEAD, now)):
        db.session.add(OutboxMessage(channel="email", kind="payment_receipt", recipient="a@example.test",
                                     idempotency_key=f"ops:{key}", status=status, next_attempt_at=due))
    record_success("outbox", now - timedelta(seconds=30))
    db.session.commit()
    samples = scrape()
    assert value(samples, "portal_database_up") == 1
    assert 89 <= value(samples, "portal_outbox_lag_seconds", channel="email") < 200
    assert value(samples, "portal_outbox_lag_seconds", channel="webhook") == 0
    assert value(samples, "portal_outbox_dead_messages", channel="email") == 2
    assert value(samples, "portal_job_last_success_timestamp_seconds", job="outbox") == pytest.approx(
        (now - timedelta(seconds=30)).timestamp(), abs=1)
    assert value(samples, "portal_job_last_success_timestamp_seconds", job="resolutions") == 0
    record_success("outbox")  # an upsert: one row per job
    assert db.session.query(JobRun).filter_by(name="outbox").count() == 1


def test_the_outbox_run_records_its_success(app, session):
    result = app.test_cli_runner().invoke(args=["outbox", "run", "--once"])
    assert result.exit_code == 0, result.output
    run = db.session.get(JobRun, "outbox")
    assert run is not None and utcnow() - run.last_success_at < timedelta(minutes=1)


# --- a database that does not answer ------------------------------------------------------------------


@pytest.fixture(scope="module")
def down_app(tmp_path_factory):
    """The app on a PostgreSQL port nothing listens on: every query fails to connect."""
    return create_app({
        "TESTING": True, "PORTAL_ENV": "testing", "SECRET_KEY": "test-secret-" + "x" * 40,
        "LINK_SIGNING_KEYS": list(TEST_KEYS), "DATA_ENCRYPTION_KEYS": ["test-data-key-" + "d" * 40],
        "SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://postgres@127.0.0.1:9/none?connect_timeout=2",
        "PORTAL_BASE_URL": "https://pay.example.test", "RATELIMIT_STORAGE_URI": "memory://",
        "METRICS_TOKEN": TOKEN,
    })


def test_an_outage_is_a_translated_503_page_never_a_500(down_app, caplog):
    client = down_app.test_client()
    token = LinkSigner(TEST_KEYS, 86400).sign(LinkSigner.new_key(), "bill")
    with caplog.at_level(logging.WARNING):
        page = client.get(f"/l/{token}", headers={"Accept-Language": "nb"})
    assert page.status_code == 503 and page.headers["Retry-After"] == "5"
    html = page.get_data(as_text=True)
    assert "Straks tilbake" in html and "Traceback" not in html and "psycopg" not in html
    assert "database unavailable" in caplog.text and "Traceback" not in caplog.text
    german = client.get("/brand/acme/logo", headers={"Accept-Language": "de"})
    assert german.status_code == 503 and "Gleich wieder da" in german.get_data(as_text=True)


def test_an_outage_is_a_json_503_for_the_apis_and_webhooks(down_app):
    client = down_app.test_client()
    for path, key in (("/api/v1/invoices/1", "pk_" + "a" * 40), ("/api/partner/v1/cases", API_KEY_PREFIX + "a" * 40)):
        response = client.get(path, headers={"Authorization": f"Bearer {key}"})
        assert response.status_code == 503, path
        assert response.get_json()["error"] == "unavailable"
    webhook = client.post("/webhooks/simulator/acme", data=b"{}", headers={"Content-Type": "application/json"})
    assert webhook.status_code == 503 and webhook.get_json()["error"] == "unavailable"


def test_during_an_outage_health_lives_readiness_fails_and_metrics_say_so(down_app):
    client = down_app.test_client()
    assert client.get("/healthz").status_code == 200
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.get_json() == {"status": "unavailable", "database": "down"}
    scraped = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert scraped.status_code == 200 and "portal_database_up 0.0" in scraped.get_data(as_text=True)


# --- logs ----------------------------------------------------------------------------------------------


def test_json_logs_one_object_per_line_with_the_request_id_and_tokens_redacted(app, client, monkeypatch):
    stream_records = []

    class Keep(logging.Handler):
        def emit(self, record):
            stream_records.append(self.format(record))

    handler = Keep()
    root = logging.getLogger()
    saved = [(h, h.formatter, list(h.filters)) for h in root.handlers]  # pytest's own handlers, as they were
    root.addHandler(handler)
    try:
        configure_logging({"LOG_LEVEL": "INFO", "LOG_FORMAT": "json"})
        logging.getLogger("app.deep.child").warning("opened /l/%s now", "abc.123.secret")
        with app.test_request_context("/", headers={"X-Request-ID": "f" * 32}):
            logging.getLogger("app").error("failed", exc_info=ValueError("boom"))
    finally:
        root.removeHandler(handler)
        for kept, formatter, filters in saved:
            kept.setFormatter(formatter)
            kept.filters[:] = filters
    first, second = (json.loads(line) for line in stream_records)
    assert first["message"] == "opened /l/[redacted] now" and first["level"] == "WARNING"
    assert first["logger"] == "app.deep.child" and re.fullmatch(r"\d{4}-.*Z", first["time"])
    assert "request_id" not in first
    assert second["request_id"] == "f" * 32 and "ValueError: boom" in second["exception"]
    assert all("\n" not in line for line in stream_records)


def test_gunicorn_logs_are_json_and_redacted_and_its_hooks_keep_the_metrics_folder(tmp_path, monkeypatch):
    from gunicorn.config import Config
    from gunicorn.http.wsgi import Response

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "metrics"))
    settings = runpy.run_path(str(Path(ROOT) / "deploy" / "gunicorn.conf.py"))
    config = Config()
    config.set("accesslog", str(tmp_path / "access.log"))
    config.set("errorlog", str(tmp_path / "error.log"))
    logger = settings["logger_class"](config)

    class Request:
        method, path, query, version, uri = "GET", "/l/tok.123.sig", "", (1, 1), "/l/tok.123.sig"
        headers = [("X-REQUEST-ID", "a" * 32), ("USER-AGENT", "test")]

    response = Response(Request(), None, config)
    response.status, response.status_code, response.response_length = "303 See Other", 303, 0
    response.headers = []
    environ = {"REMOTE_ADDR": "127.0.0.1", "RAW_URI": "/l/tok.123.sig", "REQUEST_METHOD": "GET",
               "SERVER_PROTOCOL": "HTTP/1.1"}
    logger.access(response, Request(), environ, timedelta(milliseconds=3))
    logger.error("worker saw /l/%s", "tok.123.sig")
    for handler in logger.access_log.handlers + logger.error_log.handlers:
        handler.flush()
    access = json.loads((tmp_path / "access.log").read_text().splitlines()[-1])
    error = json.loads((tmp_path / "error.log").read_text().splitlines()[-1])
    assert access["logger"] == "gunicorn.access" and "/l/[redacted]" in access["message"]
    assert "tok.123.sig" not in access["message"] and access["request_id"] == "a" * 32
    assert error["message"] == "worker saw /l/[redacted]" and error["level"] == "ERROR"

    folder = tmp_path / "metrics"
    folder.mkdir()
    (folder / "counter_999999999.db").write_bytes(b"")  # a process long gone
    (folder / f"counter_{os.getpid()}.db").write_bytes(b"")  # a live one (a dispatcher, say)
    settings["on_starting"](None)
    assert sorted(p.name for p in folder.iterdir()) == [f"counter_{os.getpid()}.db"]
    settings["child_exit"](None, type("Worker", (), {"pid": 999999998})())  # no live gauges: nothing to do


def test_the_documents_pools_workers_run_nicer_than_their_master():
    """WORKER_NICE (the documents pool's 10) makes each worker nicer after the fork; unset, nothing changes."""
    probe = ("import os, runpy, sys; hooks = runpy.run_path(sys.argv[1]); before = os.nice(0); "
             "hooks['post_fork'](None, None); print(os.nice(0) - before)")
    conf = str(Path(ROOT) / "deploy" / "gunicorn.conf.py")

    def nicer_by(value: str | None) -> int:
        env = {k: v for k, v in os.environ.items() if k != "WORKER_NICE"}
        if value is not None:
            env["WORKER_NICE"] = value
        done = subprocess.run([sys.executable, "-c", probe, conf], env=env, capture_output=True, text=True,
                              check=True, cwd=ROOT)
        return int(done.stdout.strip())

    base = os.nice(0)
    assert nicer_by("10") == min(10, 19 - base)
    assert nicer_by(None) == 0 and nicer_by("0") == 0


def _gunicorn_hooks() -> dict:
    return runpy.run_path(str(Path(ROOT) / "deploy" / "gunicorn.conf.py"))


@pytest.mark.skipif(_gunicorn_hooks()["autogroup_nice"]() is None,
                    reason="no autogroup here: a kernel without them, or init's own session (CI's runner)")
def test_a_documents_pool_leading_its_session_makes_its_whole_group_nicer():
    """Linux shares the CPU between sessions (autogroups) before nice counts: the documents pool's master,
    when it leads its session, makes the group nicer by WORKER_NICE; in a session it does not lead (a
    shell's, this test's), it leaves the group alone."""
    probe = ("import runpy, sys; hooks = runpy.run_path(sys.argv[1]); hooks['on_starting'](None); "
             "print(hooks['autogroup_nice']())")
    conf = str(Path(ROOT) / "deploy" / "gunicorn.conf.py")
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}

    def group_nice(value: str, *, own_session: bool) -> int:
        done = subprocess.run([sys.executable, "-c", probe, conf], env={**env, "WORKER_NICE": value},
                              capture_output=True, text=True, check=True, cwd=ROOT, start_new_session=own_session)
        return int(done.stdout.strip())

    ours = _gunicorn_hooks()["autogroup_nice"]()
    assert group_nice("7", own_session=True) == 7
    assert group_nice("0", own_session=True) == 0
    assert group_nice("7", own_session=False) == ours  # not its session: untouched
    assert _gunicorn_hooks()["autogroup_nice"]() == ours


@pytest.fixture(scope="module")
def worker_env(tmp_path_factory) -> dict[str, str]:
    """A migrated SQLite database and the environment a background worker starts with."""
    folder = tmp_path_factory.mktemp("worker")
    env = {**os.environ, "PORTAL_ENV": "development", "PORTAL_INSTANCE_PATH": str(folder),
           "DATABASE_URL": f"sqlite:///{folder / 'portal.db'}", "LOG_LEVEL": "WARNING"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"], env=env, cwd=ROOT,
                   check=True, capture_output=True)
    return env


def _nice_of(pid: int) -> int:
    """A process's nice, from /proc/<pid>/stat (the 19th field; the name in parentheses may hold spaces)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[16])


@pytest.mark.parametrize("command", [["outbox", "run", "--interval", "0.2"],
                                     ["payments", "apply-events", "--interval", "0.2"]], ids=["outbox", "events"])
@pytest.mark.parametrize("value", ["6", None])
def test_the_background_workers_run_nicer_by_worker_nice(worker_env, command, value):
    """The dispatcher and the notification worker take WORKER_NICE when their loop starts, and, leading a
    session of their own (systemd's, a container's, the soak's), make its group as nice: the pages get the
    CPU first. Unset, they keep the nice they were started with."""
    env = {k: v for k, v in worker_env.items() if k != "WORKER_NICE"}
    if value is not None:
        env["WORKER_NICE"] = value
    expected = min(os.nice(0) + int(value or 0), 19)
    job = "outbox" if command[0] == "outbox" else "payments_apply_events"
    database = sqlite3.connect(Path(worker_env["PORTAL_INSTANCE_PATH"]) / "portal.db")
    with database:
        database.execute("DELETE FROM job_runs WHERE name = ?", (job,))
    process = subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", *command], env=env, cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        for _ in range(300):  # until its first round is recorded (its heartbeat): the loop has started
            if process.poll() is not None or database.execute(
                    "SELECT 1 FROM job_runs WHERE name = ?", (job,)).fetchone():
                break
            time.sleep(0.1)
        seen = _nice_of(process.pid)
        assert process.poll() is None, "the worker exited"
        assert seen == expected
        if value is not None and autogroup_nice() is not None:  # a kernel with autogroups, a session of ours
            assert autogroup_nice(f"/proc/{process.pid}/autogroup") == int(value)
    finally:
        database.close()
        process.terminate()
        assert process.wait(timeout=20) == 0  # SIGTERM: the loop ends between two rounds


def test_an_autogroup_is_read_only_where_there_is_one(tmp_path):
    """In init's own session (a process init started without a session of its own, as CI's runner is)
    /proc/self/autogroup reads empty: there is no group of ours, and the documents pool writes nothing."""
    autogroup_nice = _gunicorn_hooks()["autogroup_nice"]
    (tmp_path / "grouped").write_text("/autogroup-85 nice 7\n")
    (tmp_path / "cgroup").write_text("")
    assert autogroup_nice(str(tmp_path / "grouped")) == 7
    assert autogroup_nice(str(tmp_path / "cgroup")) is None
    assert autogroup_nice(str(tmp_path / "absent")) is None


def test_the_json_formatter_alone():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "a %s", ("b",), None)
    assert json.loads(JsonFormatter().format(record))["message"] == "a b"


def test_a_traceback_that_held_a_token_stays_in_the_json_line_redacted():
    """The record factory (app.security) turns such a traceback into redacted text: the line keeps it."""
    try:
        raise RuntimeError("lost while reading /l/tok.123.sig")
    except RuntimeError:
        record = logging.getLogger("app.x").makeRecord("app.x", logging.ERROR, __file__, 1, "failed", (),
                                                        sys.exc_info())
    line = json.loads(JsonFormatter().format(record))
    assert "RuntimeError: lost while reading /l/[redacted]" in line["exception"] and "tok.123" not in str(line)


def test_a_session_of_the_previous_secret_key_survives_its_rotation(app, monkeypatch):
    old, new = "old-secret-" + "o" * 40, "new-secret-" + "n" * 40
    monkeypatch.setitem(app.config, "SECRET_KEY", old)
    cookie = app.session_interface.get_signing_serializer(app).dumps({"grants": "kept"})
    monkeypatch.setitem(app.config, "SECRET_KEY", new)
    monkeypatch.setitem(app.config, "SECRET_KEY_FALLBACKS", [old])
    assert app.session_interface.get_signing_serializer(app).loads(cookie) == {"grants": "kept"}
    monkeypatch.setitem(app.config, "SECRET_KEY_FALLBACKS", [])
    with pytest.raises(Exception, match="Signature"):
        app.session_interface.get_signing_serializer(app).loads(cookie)


def test_ops_settings(tmp_path):
    from app.config import ConfigError, load_config
    from tests.support.keys import PRODUCTION_ENV as production

    config = load_config(str(tmp_path), production)
    assert config["LOG_FORMAT"] == "json" and config["METRICS_TOKEN"] == ""
    assert load_config(str(tmp_path), {})["LOG_FORMAT"] == "text"
    assert load_config(str(tmp_path), {"SECRET_KEY_FALLBACKS": "a, b"})["SECRET_KEY_FALLBACKS"] == ["a", "b"]
    with pytest.raises(ConfigError, match="METRICS_TOKEN"):
        load_config(str(tmp_path), {**production, "METRICS_TOKEN": "short"})
    with pytest.raises(ConfigError, match="LOG_FORMAT"):
        load_config(str(tmp_path), {"LOG_FORMAT": "xml"})


def test_a_session_the_restarting_database_dropped_closes_without_a_500(app, monkeypatch):
    """At the end of a request, closing the session rolls back; when PostgreSQL has just dropped the
    connection (a restart), that rollback fails: the answer already made must still go out."""
    import psycopg
    from sqlalchemy.exc import OperationalError

    real_remove, calls = db.session.remove, []

    def remove():
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError("ROLLBACK", {}, psycopg.errors.AdminShutdown("terminating connection due to "
                                                                               "administrator command"))
        real_remove()

    monkeypatch.setattr(db.session, "remove", remove)
    assert app.test_client().get("/healthz").status_code == 200
    assert calls  # the failing close was met, and passed over

    monkeypatch.setattr(db.session, "remove", lambda: (_ for _ in ()).throw(ValueError("a bug, not an outage")))
    with pytest.raises(ValueError):
        app.test_client().get("/healthz")


def test_the_notification_worker_outlives_an_outage_and_stops_on_sigterm(app, session, monkeypatch):
    import signal

    import psycopg
    from sqlalchemy.exc import OperationalError

    import app.payments.cli as payments_cli

    rounds = []

    def apply(limit):
        rounds.append(limit)
        if len(rounds) == 1:
            raise OperationalError("SELECT", {}, psycopg.OperationalError("connection refused"))
        os.kill(os.getpid(), signal.SIGTERM)  # what systemd sends to stop it: the round in hand finishes
        return {"applied": 2}

    monkeypatch.setattr(payments_cli, "apply_received_events", apply)
    previous = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    try:
        result = app.test_cli_runner().invoke(args=["payments", "apply-events", "--interval", "0.05"])
    finally:
        signal.signal(signal.SIGTERM, previous[0])
        signal.signal(signal.SIGINT, previous[1])
    assert result.exit_code == 0, result.output
    assert len(rounds) == 2 and "2 applied" in result.output
    assert db.session.get(JobRun, "payments_apply_events") is not None
