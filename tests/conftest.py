"""Fixtures: the app (schema made by running the migrations once per session), a per-test
transaction rolled back at the end, and a test client.

SQLite by default; PostgreSQL when TEST_DATABASE_URL is set."""

from __future__ import annotations

import os

import pytest
from flask_migrate import upgrade
from sqlalchemy import text
from sqlalchemy.orm import scoped_session, sessionmaker

from app import create_app
from app.config import normalise_database_url
from app.extensions import db, limiter
from tests.support.smtp import SmtpServer


class TestSession(scoped_session):
    """One session for the whole test: request teardowns call remove(), which must not
    close it (that would roll back the test's data and detach its objects)."""

    def remove(self):
        pass

    def really_remove(self):
        super().remove()


TEST_KEYS = ["k-new-" + "n" * 40, "k-old-" + "o" * 40]


def database_url(tmp_path_factory) -> str:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        worker = os.environ.get("PYTEST_XDIST_WORKER")
        return worker_database(normalise_database_url(url), worker) if worker else normalise_database_url(url)
    return "sqlite:///" + str(tmp_path_factory.mktemp("db") / "test.db")


def worker_database(url: str, worker: str) -> str:
    """Under pytest-xdist (`-n 2`), each worker resets and migrates a database of its own, `<name>_<worker>`
    (made when missing), next to TEST_DATABASE_URL's: two workers resetting one schema at once collide."""
    import psycopg
    from sqlalchemy import make_url

    parsed = make_url(url)
    name = f"{parsed.database}_{worker}"
    with psycopg.connect(host=parsed.host or "127.0.0.1", port=parsed.port or 5432, user=parsed.username,
                         password=parsed.password, dbname="postgres", autocommit=True) as admin:
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            admin.execute(f'CREATE DATABASE "{name}"')
    return parsed.set(database=name).render_as_string(hide_password=False)


def reset_database(app) -> None:
    """An empty database, then the migrations: the migrations make the schema, not create_all."""
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            with db.engine.begin() as conn:
                conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
                conn.execute(text("CREATE SCHEMA public"))
        upgrade()


@pytest.fixture(scope="session")
def app(tmp_path_factory):
    instance = tmp_path_factory.mktemp("instance")
    os.environ["PORTAL_INSTANCE_PATH"] = str(instance)
    application = create_app(
        {
            "TESTING": True,
            "PORTAL_ENV": "testing",
            "SECRET_KEY": "test-secret-" + "x" * 40,
            "LINK_SIGNING_KEYS": list(TEST_KEYS),
            "DATA_ENCRYPTION_KEYS": ["test-data-key-" + "d" * 40],
            "SQLALCHEMY_DATABASE_URI": database_url(tmp_path_factory),
            "PORTAL_BASE_URL": "https://pay.example.test",
            "RATELIMIT_STORAGE_URI": "memory://",
            "SERVER_NAME": None,
        }
    )
    reset_database(application)
    return application


@pytest.fixture
def session(app):
    """Every test runs inside one transaction that is rolled back; commits become savepoints.

    No app context stays pushed during the test, so each test-client request gets a fresh
    one (and a fresh `g`), as in production."""
    with app.app_context():
        connection = db.engine.connect()
    outer = connection.begin()
    original = db.session
    db.session = TestSession(sessionmaker(bind=connection, join_transaction_mode="create_savepoint"))
    try:
        yield db.session
    finally:
        db.session.really_remove()
        db.session = original
        outer.rollback()
        connection.close()


@pytest.fixture
def client(app, session):
    limiter.reset(app)
    return app.test_client()


@pytest.fixture
def smtp(app, monkeypatch):
    """A real SMTP server (aiosmtpd) on 127.0.0.1 that the app's e-mails go to for this test."""
    with SmtpServer() as server:
        for key, value in server.config().items():
            monkeypatch.setitem(app.config, key, value)
        monkeypatch.setitem(app.config, "MAIL_FROM", "billing@pay.example.test")
        yield server
