"""The test database: its URL (SQLite by default; PostgreSQL when TEST_DATABASE_URL is set, a schema
per xdist worker), its reset (the migrations make the schema, not create_all) and the session a test
runs in.

On SQLite the migrated schema is kept as a template file named by a digest of everything that makes
it (the migrations, `app/models.py` whose column types they use, the versions of SQLAlchemy, Alembic
and SQLite): a process whose template exists copies it instead of running the migrations
again (tests/functional/test_schema.py runs them down and up, on every run).

tests/conftest.py imports this inside its fixtures, so that a process that runs no test
(pytest-xdist's controller) does not import SQLAlchemy, Alembic or the app."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import alembic
import sqlalchemy
from flask_migrate import upgrade
from sqlalchemy import event, make_url, text
from sqlalchemy.orm import scoped_session

from app.config import normalise_database_url
from app.extensions import db


class TestSession(scoped_session):
    """One session for the whole test: request teardowns call remove(), which must not
    close it (that would roll back the test's data and detach its objects)."""

    def remove(self):
        pass

    def really_remove(self):
        super().remove()


def worker_schema() -> str:
    """The PostgreSQL schema this process tests in: pytest-xdist's workers share the database, so
    each has a schema of its own (`test_gw0`...); a run without workers uses `public`."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    return f"test_{worker}" if worker else "public"


def database_url(tmp_path_factory) -> str:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        url = normalise_database_url(url)
        if worker_schema() != "public":  # every connection (the app's, the race tests', the drivers') works there
            url = make_url(url).update_query_dict({"options": f"-csearch_path={worker_schema()}"})
            url = url.render_as_string(hide_password=False)
        return url
    return "sqlite:///" + str(tmp_path_factory.mktemp("db") / "test.db")


ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = Path(tempfile.gettempdir()) / "portal-test-schemas"


def reset_database(app) -> None:
    """An empty database, then the migrations: the migrations make the schema, not create_all."""
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            with db.engine.begin() as conn:
                conn.execute(text(f"DROP SCHEMA IF EXISTS {worker_schema()} CASCADE"))
                conn.execute(text(f"CREATE SCHEMA {worker_schema()}"))
            upgrade()
            return
        path = Path(db.engine.url.database or "")
        template = TEMPLATES / f"{schema_digest()}.db"
        db.engine.dispose()
        if template.exists():
            _copy(template, path)
            return
        upgrade()
        db.engine.dispose()
        TEMPLATES.mkdir(exist_ok=True)
        partial = TEMPLATES / f".{uuid.uuid4().hex}.db"
        _copy(path, partial)
        partial.replace(template)  # atomic: a process that finds the template finds it whole


def schema_digest() -> str:
    """What the migrated schema depends on, as a digest: a change to any of it makes a new template."""
    digest = hashlib.sha256()
    sources = [*sorted((ROOT / "migrations").rglob("*")), ROOT / "app" / "models.py"]
    for source in sources:
        if source.is_file() and "__pycache__" not in source.parts:
            digest.update(str(source.relative_to(ROOT)).encode() + b"\0" + source.read_bytes() + b"\0")
    digest.update(f"{sqlalchemy.__version__} {alembic.__version__} {sqlite3.sqlite_version}".encode())
    return digest.hexdigest()[:32]


def _copy(source: Path, target: Path) -> None:
    """A consistent copy of an SQLite database (its WAL included), by SQLite's backup API."""
    reading, writing = sqlite3.connect(source), sqlite3.connect(target)
    try:
        reading.backup(writing)
    finally:
        reading.close()
        writing.close()


@contextmanager
def recorded_statements(engine) -> Iterator[list[str]]:
    """Every SQL statement `engine` sends inside the block, in order, into the list it yields."""
    statements: list[str] = []

    def record(_conn, _cursor, statement, *_args):
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)
