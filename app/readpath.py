"""Precompiled reads on the driver connection, for the one query every customer request makes.

Opening a link and showing a bill each need one small SELECT. Through the ORM session
it costs about 95 µs on SQLite (session, transaction, BEGIN and ROLLBACK, result
machinery) for a statement SQLite runs in 5; run here it costs about 16. The statement
is still built with SQLAlchemy Core, compiled by SQLAlchemy for the engine's dialect,
and its results go through the same type processors the ORM uses, so SQLite and
PostgreSQL give the same Python values as any other query.

The read runs on the session's own connection when the session has one (a transaction
in progress, or a session bound to one connection, as in the tests), so it sees what
that transaction sees; otherwise on SQLite on a connection this thread keeps for these
reads, and on a server database on a pooled connection, given back at once. There the SELECT
runs in the driver's autocommit mode: a transaction around one statement would add a BEGIN and a
ROLLBACK, two round trips, and see nothing else (READ COMMITTED gives each statement its own
snapshot either way). SQLAlchemy's cursor events do not see these statements: count them at the
driver (the benchmark does).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Select

from app.extensions import db


@dataclass(frozen=True)
class _Plan:
    sql: str
    positional: tuple[str, ...] | None  # parameter order for positional paramstyles
    bind_processors: dict[str, Callable | None]
    result_processors: tuple[Callable | None, ...]
    # Only the columns that have a processor (most have none): (position, processor).
    processed: tuple[tuple[int, Callable], ...] = ()

    def arguments(self, params: dict[str, Any]):
        values = {}
        processors = self.bind_processors
        for name, value in params.items():
            process = processors[name]
            values[name] = process(value) if process is not None else value
        return [values[name] for name in self.positional] if self.positional is not None else values

    def first(self, dbapi_connection, params: dict[str, Any]) -> tuple | None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(self.sql, self.arguments(params))
            row = cursor.fetchone()
        finally:
            cursor.close()
        if row is None:
            return None
        if len(row) != len(self.result_processors):
            raise ValueError(f"expected {len(self.result_processors)} columns, the driver gave {len(row)}")
        if not self.processed:
            return tuple(row)
        values = list(row)
        for position, process in self.processed:
            values[position] = process(values[position])
        return tuple(values)


class ReadQuery:
    """A SELECT built once (lazily, by `build`), compiled once per dialect, run on the driver."""

    def __init__(self, build: Callable[[], Select]):
        self._build = build
        self._plans: dict[str, _Plan] = {}
        self._lock = threading.Lock()

    def _plan(self, dialect) -> _Plan:
        plan = self._plans.get(dialect.name)
        if plan is None:
            with self._lock:
                statement = self._build()
                compiled = statement.compile(dialect=dialect)
                processors = tuple(
                    column.type.dialect_impl(dialect).result_processor(dialect, None)
                    for column in statement.selected_columns
                )
                plan = _Plan(
                    sql=compiled.string,
                    positional=tuple(compiled.positiontup or ()) if compiled.positional else None,
                    bind_processors={
                        name: bind.type.dialect_impl(dialect).bind_processor(dialect)
                        for name, bind in compiled.binds.items()
                    },
                    result_processors=processors,
                    processed=tuple((position, process) for position, process in enumerate(processors)
                                    if process is not None),
                )
                self._plans[dialect.name] = plan
        return plan

    def first(self, **params: Any) -> tuple | None:
        """The first row for these parameters, as a tuple of processed values, or None."""
        if db.session.registry.has():  # the request already has a Session: read where it reads
            session = db.session()
            bind = session.get_bind()
            if session.in_transaction():
                return self._plan(bind.dialect).first(session.connection().connection.driver_connection, params)
            if isinstance(bind, Connection):
                return self._plan(bind.dialect).first(bind.connection.driver_connection, params)
        else:  # making a Session only to find the engine would cost more than the read
            bind = db.engine
        plan = self._plan(bind.dialect)
        if bind.dialect.name == "sqlite":
            return plan.first(_sqlite_read_connection(bind), params)
        pooled = bind.raw_connection()
        driver = pooled.driver_connection
        assert driver is not None  # a connection just checked out of the pool
        try:
            driver.autocommit = True  # a lone SELECT: no BEGIN before it, no ROLLBACK after it
            return plan.first(driver, params)
        finally:
            try:
                driver.autocommit = False
            except bind.dialect.loaded_dbapi.Error:  # broken: it must never go back to the pool in autocommit
                pooled.invalidate()
            pooled.close()


_held = threading.local()


def _sqlite_read_connection(engine):
    """This thread's SQLite connection for these reads, kept outside the pool.

    SQLite connections run in autocommit mode here (see `app._configure_sqlite`): a lone
    SELECT opens its read transaction and ends it when the cursor closes, so a held
    connection never holds a snapshot between requests. Checking one out of the pool and
    back for each read cost as much as the read. A new pool (after `engine.dispose()`)
    gets new connections. Server databases keep the pool: a held psycopg connection would
    sit idle in a transaction."""
    key = (id(engine), id(engine.pool))
    connections = getattr(_held, "connections", None)
    if connections is None:
        connections = _held.connections = {}
    held = connections.get(key)
    if held is None:
        for stale in connections.values():
            stale.close()
        connections.clear()
        pooled = engine.raw_connection()  # connect events (PRAGMAs, autocommit) as for any other
        pooled.detach()
        held = connections[key] = pooled.dbapi_connection  # for sqlite3, the driver's own connection
    return held
