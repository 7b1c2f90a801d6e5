"""SQLite's transactions: writing requests take the write lock at their start, reading requests do not
(and run again with it when they wrote and found the database busy), a lock never freed is a 503.

Each test makes an app of its own on a SQLite file (whatever TEST_DATABASE_URL says), with a table
of its own, and a second connection that plays another request."""

from __future__ import annotations

import os
import sqlite3

import pytest
from sqlalchemy import event, text

import app as portal
from app import create_app
from app.extensions import db


@pytest.fixture
def sqlite_app(tmp_path, monkeypatch):
    monkeypatch.setenv("PORTAL_INSTANCE_PATH", str(tmp_path / "instance"))
    path = tmp_path / "portal.db"
    application = create_app({
        "TESTING": True, "PORTAL_ENV": "testing", "SECRET_KEY": "sqlite-" + "s" * 40,
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{path}", "SERVER_NAME": None, "RATELIMIT_ENABLED": False,
        "WTF_CSRF_ENABLED": False,
    })
    with application.app_context(), db.engine.begin() as conn:
        conn.execute(text("CREATE TABLE counters (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)"))
        conn.execute(text("INSERT INTO counters VALUES (1, 0), (2, 0)"))
    yield application, str(path)
    with application.app_context():
        db.engine.dispose()


def other_connection(path: str) -> sqlite3.Connection:
    """Another request's connection: autocommit, transactions by hand."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=0.1)
    conn.execute("PRAGMA busy_timeout=100")
    return conn


def begun_with(application, method: str | None) -> str:
    """The BEGIN statement that starts a transaction in a request of this method (None: outside a request)."""
    statements: list[str] = []
    with application.app_context():
        db.engine.dispose()

        def trace(dbapi_connection, _record):
            dbapi_connection.set_trace_callback(statements.append)

        event.listen(db.engine, "connect", trace)
        try:
            if method is None:
                db.session.execute(text("SELECT n FROM counters"))
            else:
                with application.test_request_context("/", method=method):
                    db.session.execute(text("SELECT n FROM counters"))
            db.session.rollback()
        finally:
            db.session.remove()
            event.remove(db.engine, "connect", trace)
            db.engine.dispose()
    return next(s for s in statements if s.startswith("BEGIN"))


def test_writing_requests_and_commands_take_the_write_lock_at_begin_reading_requests_do_not(sqlite_app):
    application, _path = sqlite_app
    assert begun_with(application, "POST") == "BEGIN IMMEDIATE"
    assert begun_with(application, "DELETE") == "BEGIN IMMEDIATE"
    assert begun_with(application, None) == "BEGIN IMMEDIATE"  # the CLI, the workers
    assert begun_with(application, "GET") == "BEGIN"
    assert begun_with(application, "HEAD") == "BEGIN"


def test_a_reading_request_that_writes_after_another_commit_runs_again_with_the_lock(sqlite_app):
    application, path = sqlite_app
    runs = []

    @application.get("/bump")
    def bump():
        runs.append(db.session.execute(text("SELECT n FROM counters WHERE id = 1")).scalar())
        if len(runs) == 1:  # another request commits between this one's read and its write
            other = other_connection(path)
            other.execute("UPDATE counters SET n = n + 1 WHERE id = 2")
            other.close()
        db.session.execute(text("UPDATE counters SET n = n + 1 WHERE id = 1"))
        db.session.commit()
        return "bumped"

    response = application.test_client().get("/bump")
    assert response.status_code == 200 and response.text == "bumped"
    assert len(runs) == 2  # the first run got SQLITE_BUSY_SNAPSHOT, the second ran with BEGIN IMMEDIATE
    with application.app_context():
        assert db.session.execute(text("SELECT n FROM counters ORDER BY id")).scalars().all() == [1, 1]


def test_a_writer_never_let_in_gets_a_503_that_says_try_again(sqlite_app, monkeypatch):
    application, path = sqlite_app
    monkeypatch.setattr(portal, "SQLITE_BUSY_TIMEOUT_MS", 200)
    with application.app_context():
        db.engine.dispose()  # new connections, with the short timeout

    @application.post("/write")
    def write():
        db.session.execute(text("UPDATE counters SET n = n + 1 WHERE id = 1"))
        db.session.commit()
        return "written"

    @application.post("/api/write")
    def api_write():
        return write()

    holder = other_connection(path)
    holder.execute("BEGIN IMMEDIATE")
    try:
        client = application.test_client()
        page = client.post("/write")
        assert page.status_code == 503 and page.headers["Retry-After"] == "2"
        assert "try again" in page.text
        api = client.post("/api/write")
        assert api.status_code == 503 and api.json["error"] == "busy"
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert application.test_client().post("/write").text == "written"


def test_other_database_errors_stay_500(sqlite_app):
    application, _path = sqlite_app

    @application.get("/broken")
    def broken():
        db.session.execute(text("SELECT * FROM no_such_table"))
        return "never"

    assert application.test_client().get("/broken").status_code == 500


def test_server_databases_are_left_as_they_are():
    """The retry of reading requests is SQLite's only."""
    application = create_app({
        "TESTING": True, "PORTAL_ENV": "testing", "SECRET_KEY": "pg-" + "s" * 40,
        "SQLALCHEMY_DATABASE_URI": os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/x"),
        "SERVER_NAME": None,
    })
    assert application.retry_busy_reads is False
