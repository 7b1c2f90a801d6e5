"""The app the PostgreSQL race tests share: the test app's settings and migrated database, with a
connection pool large enough for every thread of a race."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask

from app import create_app
from app.extensions import db

COPIED_SETTINGS = ("TESTING", "PORTAL_ENV", "SECRET_KEY", "LINK_SIGNING_KEYS", "DATA_ENCRYPTION_KEYS",
                   "SQLALCHEMY_DATABASE_URI", "PORTAL_BASE_URL", "RATELIMIT_STORAGE_URI", "SERVER_NAME")


def racing_app(app: Flask, connections: int) -> Iterator[Flask]:
    """Yield an app like `app` with a pool of `connections`; skip the test on SQLite, which
    serialises every writer on one file lock, so a race there proves nothing."""
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("races are tested on PostgreSQL: SQLite serialises writers (set TEST_DATABASE_URL)")
    racing = create_app({
        **{name: app.config[name] for name in COPIED_SETTINGS},
        "SQLALCHEMY_ENGINE_OPTIONS": {**app.config["SQLALCHEMY_ENGINE_OPTIONS"], "pool_size": connections,
                                      "max_overflow": 0, "pool_timeout": 30},
    })
    yield racing
    with racing.app_context():
        db.engine.dispose()
