"""Bulk writes for runs that write thousands of rows in one transaction (the dunning run; the
outbox's and billing's set-wise helpers it calls).

On PostgreSQL, `insert_rows` takes the rows' ids from the table's sequence in one statement and
writes the rows with COPY, and `update_rows` updates any number of rows by id in one statement
(`UPDATE … FROM unnest(arrays)`): a large INSERT … VALUES with thousands of parameters costs more
to build and parse than the rows cost to write. Elsewhere (SQLite) both fall back to SQLAlchemy's
executemany, which is fast there. Both run on the session's connection, in its transaction; they
bypass the ORM, so objects loaded in the session do not see the changes until expired.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import JSON, any_, bindparam, insert, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session, scoped_session

#: The session or the app's scoped session (what `db.session` is)
AnySession = Session | scoped_session[Any]


def _driver(session: AnySession) -> Any | None:
    """The psycopg connection under the session's transaction; None when not on PostgreSQL."""
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        return None
    return connection.connection.driver_connection


def _json(value: Any) -> Any:
    from psycopg.types.json import Json

    return None if value is None else Json(value)


def insert_rows(session: AnySession, table: Any, rows: Sequence[Mapping[str, Any]], *, returning: bool = True
                ) -> list[int]:
    """Insert `rows` (each with the same keys; no "id"); their new ids in order when `returning`."""
    if not rows:
        return []
    driver = _driver(session)
    if driver is None:
        if not returning:
            session.execute(insert(table), list(rows))
            return []
        statement = insert(table).returning(table.c.id, sort_by_parameter_order=True)
        return [row.id for row in session.execute(statement, list(rows))]
    columns = list(rows[0])
    json_columns = {name for name in columns if isinstance(table.c[name].type, JSON)}
    ids: list[int] = []
    with driver.cursor() as cursor:
        if returning:
            cursor.execute("SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
                           (table.name, len(rows)))
            ids = [row[0] for row in cursor.fetchall()]
        names = ", ".join((["id"] if returning else []) + columns)
        with cursor.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy:
            for n, row in enumerate(rows):
                values = [_json(row[c]) if c in json_columns else row[c] for c in columns]
                copy.write_row([ids[n], *values] if returning else values)
    return ids


def update_rows(session: AnySession, table: Any, rows: Sequence[Mapping[str, Any]], *, key: str = "id",
                add: Sequence[str] = ()) -> int:
    """Update rows by `key`: each row maps the key and the columns to set; a column named in `add`
    is increased by the value instead. Every row has the same keys."""
    if not rows:
        return 0
    columns = [name for name in rows[0] if name != key]
    driver = _driver(session)
    if driver is None:
        values = {name: (table.c[name] + bindparam(f"b_{name}")) if name in add else bindparam(f"b_{name}")
                  for name in columns}
        session.execute(update(table).where(table.c[key] == bindparam(f"b_{key}")).values(values),
                        [{f"b_{name}": value for name, value in row.items()} for row in rows])
        return len(rows)
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]  # SQLAlchemy's dialect class is untyped
    names = [key, *columns]
    types = [table.c[name].type.compile(dialect=dialect) for name in names]
    arrays = ", ".join(f"%s::{kind}[]" for kind in types)
    assigns = ", ".join(f"{name} = t.{name} + v.{name}" if name in add else f"{name} = v.{name}" for name in columns)
    sql = (f"UPDATE {table.name} AS t SET {assigns} FROM unnest({arrays}) AS v({', '.join(names)}) "  # noqa: S608
           f"WHERE t.{key} = v.{key}")
    with driver.cursor() as cursor:
        cursor.execute(sql, [[row[name] for row in rows] for name in names])
        return int(cursor.rowcount)


def in_ids(session: AnySession, column: Any, ids: Sequence[int]) -> Any:
    """`column IN ids` as one array parameter on PostgreSQL (`= ANY(%s)`), so that a statement over a
    thousand ids is one short query to parse; an ordinary IN elsewhere."""
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, list(ids), type_=postgresql.ARRAY(column.type)))
    return column.in_(list(ids))
