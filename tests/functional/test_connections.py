"""PostgreSQL connections (app/core/connections.py, app/readpath.py): a pooled connection the server
ended is replaced at checkout without asking the server anything, and a lone read runs without a
transaction around it. What reaches the server is read from `pg_stat_activity`, where each backend
shows the last statement it was sent."""

from __future__ import annotations

import time

import psycopg
import pytest
from sqlalchemy import make_url, text

from app.access.services import _BILL_ACCESS
from app.core.connections import ended_by_server
from app.extensions import db


@pytest.fixture
def pg_app(app):
    from tests.support.races import racing_app

    yield from racing_app(app, 3)


@pytest.fixture
def observer(pg_app):
    """A connection of its own (outside the app's pool), in autocommit: each read of
    pg_stat_activity is a fresh one."""
    with pg_app.app_context():
        url = make_url(str(db.engine.url.render_as_string(hide_password=False))).set(drivername="postgresql")
    with psycopg.connect(url.render_as_string(hide_password=False), autocommit=True) as connection:
        yield connection


def last_statement(observer, pid: int) -> str:
    return observer.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()[0]


def ended_within(connection, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if ended_by_server(connection):
            return True
        time.sleep(0.02)
    return False


def test_checking_a_pooled_connection_out_sends_nothing_to_the_server(pg_app, observer):
    with pg_app.app_context():
        pooled = db.engine.raw_connection()
        driver, pid = pooled.driver_connection, pooled.driver_connection.info.backend_pid
        driver.autocommit = True
        driver.execute("SELECT 'the last statement'")
        driver.autocommit = False
        pooled.close()
        again = db.engine.raw_connection()  # the same connection, checked at checkout
        try:
            assert again.driver_connection.info.backend_pid == pid
            assert last_statement(observer, pid) == "SELECT 'the last statement'"  # no ping went out
        finally:
            again.close()


def test_an_idle_connection_is_alive_and_one_the_server_ended_is_not(pg_app, observer):
    with pg_app.app_context():
        pooled = db.engine.raw_connection()
        driver = pooled.driver_connection
        try:
            assert not ended_by_server(driver)
            assert not ended_within(driver, 0.2)
            observer.execute("SELECT pg_terminate_backend(%s)", (driver.info.backend_pid,))
            assert ended_within(driver)
        finally:
            pooled.invalidate()
            pooled.close()
        closed = psycopg.connect(observer.info.dsn, password=observer.info.password)
        closed.close()
        assert ended_by_server(closed)


def test_a_connection_the_server_ended_in_the_pool_is_replaced_at_checkout(pg_app, observer):
    """What a restart of PostgreSQL does to every pooled connection: the next request gets a new
    connection and no error."""
    with pg_app.app_context():
        first = db.engine.raw_connection()
        second = db.engine.raw_connection()
        ended = {first.driver_connection.info.backend_pid, second.driver_connection.info.backend_pid}
        drivers = [first.driver_connection, second.driver_connection]
        first.close()
        second.close()
        for pid in ended:
            observer.execute("SELECT pg_terminate_backend(%s)", (pid,))
        assert all(ended_within(driver) for driver in drivers)
        for _ in range(3):  # each checkout works, on a connection the server did not end
            pid = db.session.scalar(text("SELECT pg_backend_pid()"))
            assert pid not in ended
            db.session.commit()
        db.session.remove()


def test_a_lone_read_runs_without_a_transaction_and_leaves_its_connection_as_it_found_it(pg_app, observer):
    """`ReadQuery.first` outside a request's transaction: the SELECT alone reaches the server (before,
    a BEGIN and a ROLLBACK around it), and the connection goes back to the pool out of autocommit, so
    the next user's statements are in a transaction again."""
    with pg_app.app_context():
        assert _BILL_ACCESS.first(public_id="no-such-bill", source_id=0) is None
        pooled = db.engine.raw_connection()
        try:
            pid = pooled.driver_connection.info.backend_pid
            assert last_statement(observer, pid).startswith("SELECT invoices.id")
            assert pooled.driver_connection.autocommit is False
        finally:
            pooled.close()
        # and the ORM's work on that connection is in a transaction, as ever
        db.session.execute(text("SELECT 1"))
        assert db.session.connection().connection.driver_connection.info.transaction_status.name == "INTRANS"
        db.session.rollback()
        db.session.remove()
