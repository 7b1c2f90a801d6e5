"""`/healthz` (liveness), `/readyz` (the database answers) and `/metrics` (Prometheus, behind METRICS_TOKEN).

`/metrics` answers 404 unless METRICS_TOKEN is set and the request carries it as a bearer token
(docs/decisions.md, "Running in production"): the same gunicorn and proxy serve it, and nothing about it
shows to anyone else. Besides what the processes counted (`core.metrics`), a scrape reads the database
once: the outbox's lag and dead letters, the provider notifications waiting for the worker, and each
periodic job's last success."""

from __future__ import annotations

import hmac
import logging
from datetime import datetime

from flask import Blueprint, Response, current_app, g, jsonify, request
from sqlalchemy import func, select, text

from app.core.jobs import JOBS, JobRun
from app.core.metrics import exposition
from app.extensions import db
from app.models import utcnow
from app.outbox.models import OutboxMessage, OutboxStatus
from app.payments.models import WebhookEvent

log = logging.getLogger(__name__)
bp = Blueprint("ops", __name__)


@bp.get("/healthz")
def healthz():
    """Liveness: the process answers. No database: a database outage must not get every instance
    restarted (the proxy and the orchestrator read /readyz for that)."""
    g.no_store = True
    return {"status": "ok"}


@bp.get("/readyz")
def readyz():
    """Readiness: the database answers `SELECT 1`; 503 when it does not."""
    g.no_store = True
    try:
        with db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - whatever the failure, the answer is "not ready"
        log.warning("not ready: the database does not answer: %s", type(exc).__name__)
        return jsonify(status="unavailable", database="down"), 503
    return {"status": "ready", "database": "up"}


@bp.get("/metrics")
def metrics():
    token = current_app.config["METRICS_TOKEN"]
    given = request.headers.get("Authorization", "")
    if not token or not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        return Response("Not found\n", status=404, mimetype="text/plain")
    body, content_type = exposition([DatabaseCollector()])
    response = Response(body, mimetype=None, content_type=content_type)
    response.headers["Cache-Control"] = "no-store"
    return response


def _seconds_since(moment: datetime | None, now: datetime) -> float:
    return max((now - moment).total_seconds(), 0.0) if moment is not None else 0.0


class DatabaseCollector:
    """What the database says at scrape time, as gauges. One short transaction; if the database does
    not answer, `portal_database_up` is 0 and the rest is left out (the scrape itself succeeds)."""

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        up = GaugeMetricFamily("portal_database_up", "1 when the scrape could read the database.")
        try:
            facts = self._read()
        except Exception as exc:  # noqa: BLE001 - a scrape during an outage says so, and does not fail
            log.warning("metrics: the database does not answer: %s", type(exc).__name__)
            db.session.rollback()
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        lag = GaugeMetricFamily(
            "portal_outbox_lag_seconds", "Age of the oldest due pending outbox message (since it was due); 0 "
            "when nothing is due.", labels=["channel"])
        dead = GaugeMetricFamily("portal_outbox_dead_messages", "Dead outbox messages (dead letters) waiting "
                                 "for a replay.", labels=["channel"])
        for channel in ("email", "sms", "webhook"):
            lag.add_metric([channel], facts["lag"].get(channel, 0.0))
            dead.add_metric([channel], facts["dead"].get(channel, 0))
        yield lag
        yield dead
        waiting = GaugeMetricFamily("portal_provider_events_waiting", "Provider notifications stored and not "
                                    "applied yet (the notification worker's queue).")
        waiting.add_metric([], facts["events_waiting"])
        yield waiting
        events_lag = GaugeMetricFamily("portal_provider_events_lag_seconds", "Age of the oldest provider "
                                       "notification waiting for the worker; 0 when none waits.")
        events_lag.add_metric([], facts["events_lag"])
        yield events_lag
        last = GaugeMetricFamily("portal_job_last_success_timestamp_seconds", "When each periodic job last "
                                 "succeeded (Unix time); 0 if never.", labels=["job"])
        for job in JOBS:
            moment = facts["jobs"].get(job)
            last.add_metric([job], moment.timestamp() if moment else 0.0)
        yield last

    @staticmethod
    def _read() -> dict:
        now = utcnow()
        due = dict(db.session.execute(
            select(OutboxMessage.channel, func.min(OutboxMessage.next_attempt_at))
            .where(OutboxMessage.status == OutboxStatus.PENDING, OutboxMessage.next_attempt_at <= now)
            .group_by(OutboxMessage.channel)).all())
        dead = dict(db.session.execute(
            select(OutboxMessage.channel, func.count()).where(OutboxMessage.status == OutboxStatus.DEAD)
            .group_by(OutboxMessage.channel)).all())
        waiting, oldest = db.session.execute(
            select(func.count(), func.min(WebhookEvent.received_at)).where(WebhookEvent.outcome == "received")).one()
        jobs = dict(db.session.execute(select(JobRun.name, JobRun.last_success_at)).all())
        return {
            "lag": {channel: _seconds_since(_aware(moment), now) for channel, moment in due.items()},
            "dead": dead, "events_waiting": waiting, "events_lag": _seconds_since(_aware(oldest), now),
            "jobs": {name: _aware(moment) for name, moment in jobs.items()},
        }


def _aware(moment):
    """func.min() loses the column's type on SQLite: a string or a naive datetime, in UTC."""
    from datetime import UTC

    if moment is None:
        return None
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
