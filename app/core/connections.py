"""PostgreSQL connections: knowing a pooled one is alive without asking the server, and a reading
request's transaction begun only by its first write (below).

A connection can die while it waits in the pool: PostgreSQL restarted, an administrator ended its
backend, `idle_session_timeout`. SQLAlchemy's `pool_pre_ping` finds out by sending an empty
statement at every checkout, a round trip before each request's first statement; under load a round
trip means waiting for the server's process and then for ours to be scheduled again. A server that
ends a connection says so on it (PostgreSQL sends its FATAL message, then closes the socket), so an
idle connection whose socket has anything to read, or is closed, is a dead one: nothing was asked,
so nothing is owed. `poll()` with no timeout answers without leaving the process.

What this cannot see, `pool_pre_ping` could not see either: a server that vanished without closing
its connections (a host powered off, a network cut) leaves the socket silent, and the empty
statement would have waited for TCP's timeout as the first real statement does.
"""

from __future__ import annotations

import re
import select
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import psycopg
from sqlalchemy import Connection, Engine, event, exc


def ended_by_server(dbapi_connection: psycopg.Connection) -> bool:
    """Whether this idle psycopg connection is closed, or its socket has something to read (the
    server's goodbye, or end of file) while no statement is in progress."""
    if dbapi_connection.closed or dbapi_connection.broken:
        return True
    poller = select.poll()  # not select.select(): a descriptor above 1023 is fine here
    poller.register(dbapi_connection.fileno(), select.POLLIN | select.POLLPRI)
    return bool(poller.poll(0))  # POLLHUP and POLLERR are reported whatever was registered


def check_on_checkout(engine: Engine) -> None:
    """Hand out no pooled connection that the server has ended: on finding one, invalidate every
    connection pooled before it (a restart ended them all, as `pool_pre_ping` assumes too) and connect
    again. Replaces `pool_pre_ping` for PostgreSQL engines."""

    @event.listens_for(engine, "checkout")
    def _alive(dbapi_connection: psycopg.Connection, _record: Any, _proxy: Any) -> None:
        if ended_by_server(dbapi_connection):
            raise exc.InvalidatePoolError("the server ended this connection while it was in the pool")


# --- a reading request's transaction, begun by its first write -----------------------------------------

#: A statement that must run in a transaction although it reads: it takes row locks, a transaction's
#: advisory lock or setting, or a sequence value. Searched in every SELECT of a reading request.
_NEEDS_TRANSACTION = re.compile(
    r"\bFOR\s+(?:NO\s+KEY\s+)?(?:UPDATE|SHARE)\b|\bFOR\s+KEY\s+SHARE\b|pg_advisory|set_config|nextval|setval",
    re.IGNORECASE)
#: `Connection.info` key: this connection's transaction is deferred until its first write.
DEFERRED = "portal_begin_deferred"


def plain_read(statement: str, cursor: Any) -> bool:
    """Whether `statement` only reads, and may run outside a transaction: a SELECT that locks nothing,
    on a client-side cursor (a server-side cursor lives in a transaction)."""
    return not isinstance(cursor, psycopg.ServerCursor) and _plain_select(statement)


@lru_cache(maxsize=512)
def _plain_select(statement: str) -> bool:
    """`plain_read`'s reading of the text, once per statement: SQLAlchemy's compiled cache hands the
    same string to every execution, and the search of a bill's 3 KB SELECT took a quarter of a
    millisecond, more than the server took to answer it. As many as SQLAlchemy's own cache keeps (500
    statements: a megabyte or two at most, the texts it holds anyway)."""
    return statement.lstrip()[:6].upper() == "SELECT" and _NEEDS_TRANSACTION.search(statement) is None


def _driver(conn: Connection) -> psycopg.Connection[Any]:
    driver: psycopg.Connection[Any] | None = conn.connection.driver_connection
    assert driver is not None  # a connection in use has its driver's connection
    return driver


def begin_at_first_write(engine: Engine, reading: Callable[[], bool]) -> None:
    """In a reading request (`reading()`: GET, HEAD), the session's SELECTs run in the driver's
    autocommit mode, and its transaction begins only with its first statement that is not a plain
    read (`plain_read`): a write, a lock, a savepoint. A request that only reads (the bill page, the
    return from paying, most of the back office) sends no BEGIN and no ROLLBACK, two round trips of
    its four to six; one that writes (a link's first opening) writes all in one transaction, as before.

    What the reads before the first write see is what they saw in the transaction: at READ
    COMMITTED, PostgreSQL's default and ours, each statement takes its own snapshot either way. A
    connection someone put in autocommit on purpose is left as it is; every connection leaves with
    its transaction's end out of autocommit."""

    @event.listens_for(engine, "begin")
    def _defer(conn: Connection) -> None:
        if not reading():
            return
        driver = _driver(conn)
        if driver.autocommit or driver.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            return
        driver.autocommit = True
        conn.info[DEFERRED] = True

    @event.listens_for(engine, "before_cursor_execute")
    def _begin_if_needed(conn: Connection, cursor: Any, statement: str, _parameters: Any, _context: Any,
                         _executemany: bool) -> None:
        if DEFERRED in conn.info and not plain_read(statement, cursor):
            del conn.info[DEFERRED]
            _driver(conn).autocommit = False  # psycopg sends BEGIN before this statement

    def _undefer(conn: Connection) -> None:
        # A connection the server ended (a restart) is invalidated: its `info` cannot be read until the
        # rollback this runs in is over (PendingRollbackError, which made a 500 of the outage's 503),
        # and its driver's connection is discarded anyway.
        if conn.invalidated:
            return
        if conn.info.pop(DEFERRED, None):
            _driver(conn).autocommit = False  # idle: nothing was written

    event.listen(engine, "commit", _undefer)
    event.listen(engine, "rollback", _undefer)

    @event.listens_for(engine, "checkin")
    def _never_back_in_autocommit(dbapi_connection: Any, record: Any) -> None:
        """A connection given back without its transaction's end (an error on the way): out of
        autocommit before anyone else uses it, or discarded."""
        if record is not None and record.info.pop(DEFERRED, None) and dbapi_connection is not None:
            try:
                dbapi_connection.autocommit = False
            except psycopg.Error:
                record.invalidate()
