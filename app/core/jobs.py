"""Periodic runs' last success, kept in the database (`job_runs`) where any scrape can read it.

`flask outbox run`, `flask payments apply-events`, `flask collection run`, `flask resolutions run`,
`flask dunning run`, `flask privacy run` and `flask analytics rollup`
run in processes of their own, often on another host than the web (cron, a container): a row per
job, its time updated by every successful run, is what every instance's `/metrics` reads
(`portal_job_last_success_timestamp_seconds`). The loops record a pass at most every
`HEARTBEAT_SECONDS`, so a dispatcher polling every few seconds does not write every few seconds."""

from __future__ import annotations

import time
from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import Model, db
from app.models import UTCDateTime, utcnow

#: The jobs, by the name each records under.
JOBS = ("outbox", "payments_apply_events", "collection", "resolutions", "dunning", "privacy", "analytics")
HEARTBEAT_SECONDS = 15


class JobRun(Model):
    __tablename__ = "job_runs"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    last_success_at: Mapped[datetime] = mapped_column(UTCDateTime())


def record_success(name: str, at: datetime | None = None) -> None:
    """The job's last success is now (or `at`): one upsert on the session's connection. Adds; the caller
    commits (the job's loop or command)."""
    from sqlalchemy.dialects import postgresql, sqlite

    at = at or utcnow()
    connection = db.session.connection()
    insert = (postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert)(JobRun)
    connection.execute(insert.values(name=name, last_success_at=at)
                       .on_conflict_do_update(index_elements=["name"], set_={"last_success_at": at}))


class Heartbeat:
    """A loop's success, recorded at most every `every` seconds (the first pass always): `beat()` adds
    the record when one is due and says so; the loop commits."""

    def __init__(self, name: str, every: float = HEARTBEAT_SECONDS):
        self.name, self.every = name, every
        self._last: float | None = None

    def beat(self) -> bool:
        now = time.monotonic()
        if self._last is not None and now - self._last < self.every:
            return False
        record_success(self.name)
        self._last = now
        return True
