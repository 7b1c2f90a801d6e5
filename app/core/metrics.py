"""Prometheus metrics, counted where things happen, served by `ops.views` at `/metrics`.

Several processes count: gunicorn's workers (requests, refused notifications), the outbox dispatchers
(deliveries) and the notification workers (payments). With PROMETHEUS_MULTIPROC_DIR set (production,
the same folder for every process of a host), prometheus_client writes each process's values to files
there and a scrape adds them up (`registry()`); without it, each process keeps its own (development,
tests). prometheus_client reads PROMETHEUS_MULTIPROC_DIR when it is first imported, which is why this
module imports it only when a metric is first made.

Every metric has labels, so a process writes its file only when it first counts something: a cron job
that counts nothing leaves no file behind.

What services count is counted when their transaction commits (`count_on_commit`): services add and
flush, a rolled-back settlement counted nothing."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

#: Request latency buckets, in seconds: the p99 target is 100 ms.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

_lock = threading.Lock()
_metrics: dict[str, Any] = {}


def _metric(name: str, make: Callable[[], Any]) -> Any:
    found = _metrics.get(name)
    if found is None:
        with _lock:
            found = _metrics.get(name)
            if found is None:
                found = _metrics[name] = make()
    return found


def request_latency():
    from prometheus_client import Histogram

    return _metric("request_latency", lambda: Histogram(
        "portal_request_duration_seconds", "Time to answer a request, by endpoint and status class.",
        ("endpoint", "status"), buckets=LATENCY_BUCKETS))


def payments():
    from prometheus_client import Counter

    return _metric("payments", lambda: Counter(
        "portal_payments", "Payments by outcome: succeeded (money recorded, once per payment), failed or "
        "cancelled (an attempt that ended without money).", ("provider", "outcome")))


def notifications_refused():
    from prometheus_client import Counter

    return _metric("notifications_refused", lambda: Counter(
        "portal_provider_notifications_refused", "Provider notifications refused (signature or body invalid).",
        ("provider",)))


def outbox_deliveries():
    from prometheus_client import Counter

    return _metric("outbox_deliveries", lambda: Counter(
        "portal_outbox_deliveries", "Outbox delivery tries by channel and result: delivered, retry (failed, tried "
        "again later) or dead (failed for good). channel=\"webhook\" are partners' deliveries.",
        ("channel", "result")))


# --- request timing ------------------------------------------------------------------------------

_children: dict[tuple[str, str], Any] = {}


def observe_request(endpoint: str | None, status: int, seconds: float) -> None:
    """One request's time, by its route's endpoint (never its path: paths carry tokens) and status class."""
    key = (endpoint or "unmatched", f"{status // 100}xx")
    child = _children.get(key)
    if child is None:
        child = _children[key] = request_latency().labels(*key)
    child.observe(seconds)


ENDPOINT_KEY = "portal.endpoint"


def note_endpoint() -> None:
    """The app's first before-request hook: the matched route's endpoint, for RequestTimer (None
    when no route matched: a 404)."""
    from flask import request

    current_request = request._get_current_object()  # type: ignore[attr-defined]  # the proxy read once
    current_request.environ[ENDPOINT_KEY] = current_request.endpoint


class RequestTimer:
    """WSGI middleware timing every request, from the moment it reaches the app to the moment the
    app has answered (error pages and static files included). The endpoint is the one `note_endpoint`
    left in the environ."""

    def __init__(self, wsgi_app):
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        began = time.perf_counter()
        status = [500]

        def start(status_line, headers, exc_info=None):
            status[0] = int(status_line[:3])
            return start_response(status_line, headers, exc_info)

        try:
            return self.wsgi_app(environ, start)
        finally:
            observe_request(environ.get(ENDPOINT_KEY), status[0], time.perf_counter() - began)


# --- counted when the transaction commits ---------------------------------------------------------

_PENDING = "ops.metrics.pending"


def count_on_commit(session, counter_child, amount: float = 1) -> None:
    """Add `amount` to a labelled counter when `session`'s transaction commits; nothing if it rolls back."""
    session.info.setdefault(_PENDING, []).append((counter_child, amount))


def _after_commit(session) -> None:
    for child, amount in session.info.pop(_PENDING, ()):
        child.inc(amount)


def _after_soft_rollback(session, previous_transaction) -> None:
    if previous_transaction.parent is None:  # the whole transaction: what it counted did not happen
        session.info.pop(_PENDING, None)


def listen_for_commits() -> None:
    """Connect the commit and rollback hooks, once per process (every Session, the tests' included)."""
    from sqlalchemy import event
    from sqlalchemy.orm import Session

    if not event.contains(Session, "after_commit", _after_commit):
        event.listen(Session, "after_commit", _after_commit)
        event.listen(Session, "after_soft_rollback", _after_soft_rollback)


# --- the scrape --------------------------------------------------------------------------------------


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def exposition(extra_collectors=()) -> tuple[bytes, str]:
    """The text exposition of every process's metrics (the multiprocess folder's, or this process's),
    and of `extra_collectors` (computed now), with its content type."""
    from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector

    folder = multiprocess_dir()
    if folder:
        registry = CollectorRegistry(auto_describe=False)
        MultiProcessCollector(registry, path=folder)
        for collector in extra_collectors:
            registry.register(collector)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    body = generate_latest(REGISTRY)
    if extra_collectors:
        registry = CollectorRegistry(auto_describe=False)
        for collector in extra_collectors:
            registry.register(collector)
        body += generate_latest(registry)
    return body, CONTENT_TYPE_LATEST


def process_exited(pid: int) -> None:
    """gunicorn's child_exit hook: what prometheus_client keeps only for live processes goes with this one."""
    if multiprocess_dir():
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)


def clean_multiprocess_dir(folder: str) -> list[str]:
    """At gunicorn's start: make the folder, and remove the files of processes no longer running (a
    previous gunicorn's workers, dead workers). Files of running processes (a dispatcher, a
    notification worker) stay: their counters go on. Returns the files removed."""
    os.makedirs(folder, exist_ok=True)
    removed = []
    for name in os.listdir(folder):
        stem, dot, ext = name.rpartition(".")
        pid = stem.rsplit("_", 1)[-1]
        if ext != "db" or not dot or not pid.isdigit() or _running(int(pid)):
            continue
        try:
            os.remove(os.path.join(folder, name))
            removed.append(name)
        except FileNotFoundError:
            pass
    return removed


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
