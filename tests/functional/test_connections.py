"""PostgreSQL connections (app/core/connections.py, app/readpath.py): a pooled connection the server
ended is replaced at checkout without asking the server anything, a lone read runs without a
transaction around it, and a reading request's transaction begins with its first write. What reaches
the server is read from `pg_stat_activity`, where each backend shows the last statement it was sent,
and from the driver's transaction status after each statement."""

from __future__ import annotations

import time

import psycopg
import pytest
from sqlalchemy import event, func, select, text, update

from app.access.services import _BILL_ACCESS
from app.core.connections import DEFERRED, ended_by_server
from app.creditors.models import Creditor
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
        url = db.engine.url.set(drivername="postgresql")
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


# --- a reading request's transaction begins with its first write ---------------------------------------


@pytest.fixture
def states(pg_app):
    """(first word, the driver's transaction status after it) of every statement the app's engine runs."""
    seen: list[tuple[str, str]] = []

    def after(conn, _cursor, statement, *_args):
        seen.append((statement.split()[0].upper(), conn.connection.driver_connection.info.transaction_status.name))

    with pg_app.app_context():
        engine = db.engine
    event.listen(engine, "after_cursor_execute", after)
    yield seen
    event.remove(engine, "after_cursor_execute", after)


def test_a_reading_request_reads_outside_a_transaction_until_it_writes(pg_app, states):
    with pg_app.test_request_context("/", method="GET"):
        db.session.scalar(select(func.count()).select_from(Creditor))
        db.session.scalar(select(Creditor.id).limit(1))
        assert states == [("SELECT", "IDLE"), ("SELECT", "IDLE")]  # no BEGIN went before them
        db.session.execute(update(Creditor).where(Creditor.id == -1).values(name="nobody"))
        db.session.scalar(select(func.count()).select_from(Creditor))
        assert states[2:] == [("UPDATE", "INTRANS"), ("SELECT", "INTRANS")]  # one transaction from the write on
        db.session.rollback()
        db.session.scalar(select(func.count()).select_from(Creditor))  # the next transaction waits again
        assert states[4:] == [("SELECT", "IDLE")]
        db.session.remove()


@pytest.mark.parametrize("statement", [
    select(Creditor.id).limit(1).with_for_update(),
    select(Creditor.id).limit(1).with_for_update(read=True),
    select(Creditor.id).limit(1).with_for_update(key_share=True),
    select(func.pg_advisory_xact_lock(424242)),
    text("SELECT set_config('application_name', 'x', true)"),
], ids=["for update", "for share", "for key share", "advisory lock", "set_config"])
def test_a_read_that_locks_or_sets_begins_the_transaction(pg_app, states, statement):
    with pg_app.test_request_context("/", method="GET"):
        db.session.execute(statement)
        assert states == [("SELECT", "INTRANS")]  # its lock or setting lasts until the transaction ends
        db.session.rollback()
        db.session.remove()


def test_a_savepoint_begins_the_transaction(pg_app, states):
    with pg_app.test_request_context("/", method="GET"):
        db.session.scalar(select(func.count()).select_from(Creditor))
        with db.session.begin_nested():
            db.session.scalar(select(func.count()).select_from(Creditor))
        assert [state for _, state in states] == ["IDLE", "INTRANS", "INTRANS", "INTRANS"]
        db.session.rollback()
        db.session.remove()


def test_a_writing_request_is_in_a_transaction_from_its_first_statement(pg_app, states):
    with pg_app.test_request_context("/", method="POST"):
        db.session.scalar(select(func.count()).select_from(Creditor))
        assert states == [("SELECT", "INTRANS")]
        db.session.rollback()
        db.session.remove()
    with pg_app.app_context():  # and all work outside a request (the workers, the CLI)
        db.session.scalar(select(func.count()).select_from(Creditor))
        assert states[1:] == [("SELECT", "INTRANS")]
        db.session.rollback()
        db.session.remove()


def test_a_connection_goes_back_to_the_pool_out_of_autocommit_however_its_request_ended(pg_app):
    with pg_app.test_request_context("/", method="GET"):
        db.session.scalar(select(func.count()).select_from(Creditor))
        db.session.remove()  # the session closed in the middle of its (deferred) transaction
        pooled = db.engine.raw_connection()
        try:
            assert pooled.driver_connection.autocommit is False
            # given back still deferred (no commit or rollback seen on the way): the pool's own check
            pooled.info[DEFERRED], pooled.driver_connection.autocommit = True, True
        finally:
            pooled.close()
        pooled = db.engine.raw_connection()
        try:
            assert pooled.driver_connection.autocommit is False and DEFERRED not in pooled.info
        finally:
            pooled.close()


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_a_write_the_server_cut_short_fails_as_the_database_unavailable(pg_app, observer, method):
    """The server ends the connection in the middle of a request's transaction (a restart): the flush's
    OperationalError reaches the error handlers, which answer 503. The rollback SQLAlchemy runs on the way
    used to raise PendingRollbackError from this module's own listener (reading the deferred transaction's
    flag on the invalidated connection), and the soak's PostgreSQL restart got a 500 or three."""
    from sqlalchemy.exc import OperationalError

    from app.billing.models import InvoiceEvent
    from app.errors import database_unavailable

    with pg_app.test_request_context("/", method=method):
        pid = db.session.connection().exec_driver_sql("SELECT pg_backend_pid()").scalar()
        observer.execute("SELECT pg_terminate_backend(%s)", (pid,))
        db.session.add(InvoiceEvent(invoice_id=0, kind="note", actor="test", data={}))
        with pytest.raises(OperationalError) as raised:
            db.session.flush()
        assert database_unavailable(raised.value)
        db.session.rollback()
        assert db.session.scalar(select(func.count()).select_from(Creditor)) is not None  # and on with a new one
        db.session.remove()


def test_readyz_sends_its_select_alone(pg_app, observer, states):
    client = pg_app.test_client()
    assert client.get("/readyz").status_code == 200
    assert states == [("SELECT", "IDLE")]
    with pg_app.app_context():
        pooled = db.engine.raw_connection()
        try:
            assert last_statement(observer, pooled.driver_connection.info.backend_pid) == "SELECT 1"  # no ROLLBACK
        finally:
            pooled.close()
