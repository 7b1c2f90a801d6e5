"""Fixtures: the app (schema made by running the migrations once per session), a per-test
transaction rolled back at the end, and a test client.

SQLite by default; PostgreSQL when TEST_DATABASE_URL is set (tests/support/database.py).
The fixtures import what they use: pytest-xdist's controller loads this file before it starts
its workers and runs no test, so it need not import the app, SQLAlchemy or Alembic."""

from __future__ import annotations

import gc
import os

import pytest

TEST_KEYS = ["k-new-" + "n" * 40, "k-old-" + "o" * 40]


def freeze_long_lived() -> None:
    """Move every object alive now (the modules, the collected tests, the app) out of the garbage
    collector's reach: they live until the process ends, and each full collection during the run
    would walk all of them (some 700,000) again. Garbage first, so that none is kept."""
    gc.collect()
    gc.freeze()


@pytest.hookimpl(wrapper=True)
def pytest_collection(session):
    """No garbage collection while the test modules (and the app) are imported: importing makes
    objects that live, not garbage, and the collector would otherwise walk the growing heap a dozen
    times over (about a second of CPU in each process). Then what was imported is frozen."""
    gc.disable()
    try:
        return (yield)
    finally:
        freeze_long_lived()
        gc.enable()


@pytest.fixture(scope="session")
def app(tmp_path_factory):
    from app import create_app
    from tests.support.database import database_url, reset_database

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
    freeze_long_lived()
    return application


@pytest.fixture
def session(app):
    """Every test runs inside one transaction that is rolled back; commits become savepoints.

    No app context stays pushed during the test, so each test-client request gets a fresh
    one (and a fresh `g`), as in production."""
    from sqlalchemy.orm import sessionmaker

    from app.extensions import db
    from tests.support.database import TestSession

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
    from app.extensions import limiter

    limiter.reset(app)
    return app.test_client()


@pytest.fixture
def smtp(app, monkeypatch):
    """A real SMTP server (aiosmtpd) on 127.0.0.1 that the app's e-mails go to for this test."""
    from tests.support.smtp import SmtpServer

    with SmtpServer() as server:
        for key, value in server.config().items():
            monkeypatch.setitem(app.config, key, value)
        monkeypatch.setitem(app.config, "MAIL_FROM", "billing@pay.example.test")
        yield server
