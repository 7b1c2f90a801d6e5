"""A row that must exist once: inserted in one round trip, or found to exist already.

A payment per provider id, an outbox message per idempotency key: the unique key is the arbiter
between two writers, and the loser must not fail. A SAVEPOINT, the INSERT and a RELEASE (catching
the IntegrityError in between) cost three round trips, and a read before them, to skip the usual
duplicate, a fourth. `INSERT … ON CONFLICT (key) DO NOTHING RETURNING` costs one, on PostgreSQL and
SQLite alike: it gives the new row, or nothing when the key exists (committed, or committed by a
concurrent transaction it waited for). A conflict on another unique column is still an error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from sqlalchemy.dialects import postgresql, sqlite

from app.core.bulk import AnySession

Model = TypeVar("Model")


def insert_new(session: AnySession, model: type[Model], values: Mapping[str, Any], *,
               unique: Sequence[str]) -> Model | None:
    """The new row, as an object of the session (flushed, in its transaction), or None when a row
    with the same `unique` columns exists. The columns' Python defaults apply as for `session.add`;
    the ORM's flush events do not run (none are used for such rows)."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    statement = (insert(model).values(dict(values)).on_conflict_do_nothing(index_elements=list(unique))
                 .returning(model))
    return session.scalars(statement).first()
