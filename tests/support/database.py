"""The test database: its URL (SQLite by default; PostgreSQL when TEST_DATABASE_URL is set, a schema
per xdist worker), its reset (the migrations make the schema, not create_all) and the session a test
runs in. tests/conftest.py imports this inside its fixtures, so that a process that runs no test
(pytest-xdist's controller) does not import SQLAlchemy, Alembic or the app."""

from __future__ import annotations

import os

from flask_migrate import upgrade
from sqlalchemy import make_url, text
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


def reset_database(app) -> None:
    """An empty database, then the migrations: the migrations make the schema, not create_all."""
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            with db.engine.begin() as conn:
                conn.execute(text(f"DROP SCHEMA IF EXISTS {worker_schema()} CASCADE"))
                conn.execute(text(f"CREATE SCHEMA {worker_schema()}"))
        upgrade()
