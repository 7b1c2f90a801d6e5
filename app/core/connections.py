"""PostgreSQL connections: knowing a pooled one is alive without asking the server.

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

import select

from sqlalchemy import Engine, event, exc


def ended_by_server(dbapi_connection) -> bool:
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
    def _alive(dbapi_connection, _record, _proxy) -> None:
        if ended_by_server(dbapi_connection):
            raise exc.InvalidatePoolError("the server ended this connection while it was in the pool")
