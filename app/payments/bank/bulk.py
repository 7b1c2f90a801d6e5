"""Many rows in one statement, on the driver: what a bank import writes (entries, payments, events,
receipts, invoice amounts) is a few tables times up to 100,000 rows.

SQLAlchemy's executemany builds and processes a parameter dictionary per row in Python (8 µs a
row, about half of a 100,000-entry import's writing time). Here the statement is compiled by
SQLAlchemy for the connection's dialect, each value goes through the bind processor SQLAlchemy
would apply (the column type's: UTCDateTime's, JSON's), and the driver runs it on the session's
connection, in the session's transaction: `executemany` on SQLite, COPY on PostgreSQL (where
executemany costs a round of the protocol per row). A driver error is raised as SQLAlchemy raises
it (IntegrityError for a unique key). The same approach as `app/readpath.py`; SQLAlchemy's cursor
events do not see these statements.

Rows are tuples whose values follow a list of names (columns for an INSERT, bind parameters
otherwise), built by the caller in that order: no dictionary per row.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from json.encoder import encode_basestring_ascii as _quote  # how json.dumps quotes a string

from sqlalchemy import Insert, Table, Update, bindparam, func, insert, select, text, update
from sqlalchemy.exc import DBAPIError

from app.extensions import db

BATCH = 10_000  # rows per executemany call: bounds the parameter lists kept in memory
SQLITE_CACHE_KIB = 256 * 1024  # SQLite's page cache while an import writes (an upper bound, filled as needed)


def insert_rows(table: Table, columns: Sequence[str], rows: Sequence[tuple], *,
                serialized: Collection[str] = ()) -> None:
    """INSERT the rows (tuples of values for `columns`) into `table`. The `serialized` columns hold
    JSON text already (`json.dumps`, as SQLAlchemy's JSON type would write it), passed on as it is."""
    if not rows:
        return
    if db.session.connection().dialect.name == "postgresql":
        _copy(table, columns, rows, serialized)
    else:
        execute_many(insert(table), columns, rows, column_keys=list(columns), serialized=serialized)


def update_rows(table: Table, columns: Sequence[str], rows: Sequence[tuple]) -> None:
    """UPDATE `table` SET the other columns WHERE its first column (the key) is the row's first
    value. On PostgreSQL: the rows are copied into a temporary table, then one UPDATE … FROM."""
    if not rows:
        return
    connection = db.session.connection()
    key, values = columns[0], columns[1:]
    if connection.dialect.name != "postgresql":
        statement = update(table).where(table.c[key] == bindparam(f"b_{key}")).values(
            {name: bindparam(f"b_{name}") for name in values})
        execute_many(statement, [f"b_{name}" for name in columns], rows)
        return
    preparer = connection.dialect.identifier_preparer
    quote, target, scratch = preparer.quote, preparer.format_table(table), f"bulk_update_{table.name}"
    listed = ", ".join(quote(name) for name in columns)
    assignments = ", ".join(f"{quote(name)} = u.{quote(name)}" for name in values)
    driver = connection.connection.driver_connection
    # S608: every name below is the table's or a column's, quoted by the dialect; no value is in the text.
    with _driver_errors(connection.dialect, f"UPDATE {target}"):
        driver.execute(f"CREATE TEMPORARY TABLE {scratch} ON COMMIT DROP "  # noqa: S608
                       f"AS SELECT {listed} FROM {target} WITH NO DATA")
        _copy(table, columns, rows, (), into=scratch)
        driver.execute(f"UPDATE {target} SET {assignments} FROM {scratch} AS u "  # noqa: S608
                       f"WHERE {target}.{quote(key)} = u.{quote(key)}")
        driver.execute(f"DROP TABLE {scratch}")


def _copy(table: Table, columns: Sequence[str], rows: Sequence[tuple], serialized: Collection[str],
          into: str | None = None) -> None:
    """COPY the rows into `table` (or the table named `into` with the same columns) on PostgreSQL;
    values through the columns' bind processors, as an INSERT would take them."""
    connection = db.session.connection()
    dialect = connection.dialect
    processors = [
        None if name in serialized else table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
        for name in columns
    ]
    target = into or dialect.identifier_preparer.format_table(table)
    listed = ", ".join(dialect.identifier_preparer.quote(name) for name in columns)
    cursor = connection.connection.cursor()
    try:
        with _driver_errors(dialect, f"COPY {target}"), cursor.copy(f"COPY {target} ({listed}) FROM STDIN") as copy:
            for start in range(0, len(rows), BATCH):
                for values in _parameters(rows[start:start + BATCH], list(range(len(columns))), processors):
                    copy.write_row(values)
    finally:
        cursor.close()


def execute_many(statement: Insert | Update, names: Sequence[str], rows: Sequence[tuple], *,
                 column_keys: list[str] | None = None, serialized: Collection[str] = ()) -> None:
    """Run `statement` once per row: an INSERT compiled for `column_keys`, or a statement whose
    bind parameters are `names`, the rows' values in that order."""
    if not rows:
        return
    connection = db.session.connection()
    dialect = connection.dialect
    compiled = statement.compile(dialect=dialect, column_keys=column_keys)
    wanted = list(compiled.positiontup or ()) if compiled.positional else list(compiled.binds)
    index = {name: i for i, name in enumerate(names)}
    order = [index[name] for name in wanted]
    processors: list[Callable | None] = [
        None if name in serialized else compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
        for name in wanted
    ]
    cursor = connection.connection.cursor()
    try:
        with _driver_errors(dialect, compiled.string):
            for start in range(0, len(rows), BATCH):
                params = _parameters(rows[start:start + BATCH], order, processors)
                if not compiled.positional:
                    params = [dict(zip(wanted, values, strict=True)) for values in params]
                cursor.executemany(compiled.string, params)
    finally:
        cursor.close()


@contextmanager
def _driver_errors(dialect, statement: str) -> Iterator[None]:
    """The driver's errors as SQLAlchemy raises them (IntegrityError for a unique key, and so on)."""
    error = dialect.loaded_dbapi.Error
    try:
        yield
    except error as exc:
        raise DBAPIError.instance(statement, None, exc, error) from exc


def _parameters(rows: Sequence[tuple], order: list[int], processors: list[Callable | None]) -> Sequence[tuple]:
    """The rows' values in the statement's order, processed column by column (loops in C: `zip`,
    `map`). A column of hashable values is processed once per distinct value (a file has few
    dates and times); one with JSON documents, once per value."""
    if order == list(range(len(order))) and not any(processors):
        return rows
    columns = list(zip(*rows, strict=True))
    out = []
    for position, process in zip(order, processors, strict=True):
        column = columns[position]
        if process is not None:
            try:
                done = {value: process(value) for value in set(column)}
            except TypeError:  # unhashable values: JSON documents, and NULLs
                null = process(None)
                column = [null if value is None else process(value) for value in column]
            else:
                column = list(map(done.__getitem__, column))
        out.append(column)
    return list(zip(*out, strict=True))


def json_text(data: dict) -> str:
    """`data` as JSON text, exactly as `json.dumps` (SQLAlchemy's JSON type) writes it, for a
    `serialized` column: built here for flat objects of strings and integers (the events and
    receipts of a large import, 300,000 of them) at a third of the cost; anything else goes to
    `json.dumps`."""
    parts = []
    for key, value in data.items():
        kind = type(value)
        if kind is int:
            parts.append(f"{_quote(key)}: {value}")
        elif kind is str:
            parts.append(f"{_quote(key)}: {_quote(value)}")
        else:
            return json.dumps(data)
    return "{" + ", ".join(parts) + "}"


class ReservedIds:
    """Ids for rows about to be inserted into `table`, known before the insert, so that rows
    pointing at them (entries and receipts at payments) need no read-back.

    PostgreSQL: values of the id column's sequence, one query per `take` (unused ones are a gap,
    as after any rollback). SQLite: after the table's largest id; the import's first write took
    the database's write lock, so no other transaction inserts until the commit."""

    def __init__(self, table: Table):
        self.table = table
        self._next: int | None = None  # SQLite: the next id to give

    def take(self, count: int) -> list[int]:
        if count <= 0:
            return []
        dialect = db.session.connection().dialect.name
        if dialect == "postgresql":
            sequence = db.session.scalar(select(func.pg_get_serial_sequence(self.table.name, "id")))
            return list(db.session.scalars(
                text("SELECT nextval(CAST(:sequence AS regclass)) FROM generate_series(1, :count)"),
                {"sequence": sequence, "count": count},
            ))
        if dialect != "sqlite":
            raise NotImplementedError(f"ReservedIds: {dialect} is not supported")
        if self._next is None:
            self._next = (db.session.scalar(select(func.max(self.table.c.id))) or 0) + 1
        first, self._next = self._next, self._next + count
        return list(range(first, self._next))


@contextmanager
def large_page_cache() -> Iterator[None]:
    """On SQLite, a page cache of up to 256 MB on the session's connection for the duration, then
    the one it had. The default (2 MB) is far smaller than the indexes a large import writes into
    (payments, events, entries, invoices), and evicting and re-reading their pages took a tenth
    of a 100,000-entry import. Other databases: nothing to do."""
    connection = db.session.connection()
    if connection.dialect.name != "sqlite":
        yield
        return
    driver = connection.connection.driver_connection
    previous = driver.execute("PRAGMA cache_size").fetchone()[0]
    driver.execute(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
    try:
        yield
    finally:
        driver.execute(f"PRAGMA cache_size = {int(previous)}")
