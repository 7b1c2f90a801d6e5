"""Fixtures: the app (schema made by running the migrations once per session), a per-test
transaction rolled back at the end, and a test client.

SQLite by default; PostgreSQL when TEST_DATABASE_URL is set."""

from __future__ import annotations

import os

import pytest
from flask_migrate import upgrade
from sqlalchemy import make_url, text
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
