"""Which statements a reading request may run outside a transaction (`core.connections.plain_read`), and
that the text of each is searched once, not at every execution."""

from __future__ import annotations

import secrets

import psycopg
import pytest

from app.core.connections import _plain_select, plain_read


@pytest.mark.parametrize("statement, plain", [
    ("SELECT invoices.id FROM invoices WHERE invoices.public_id = %(p)s", True),
    ("  select 1", True),
    ("SELECT formats.id FROM formats WHERE formats.updated_before IS NULL", True),  # FOR inside words
    ("SELECT invoices.id FROM invoices WHERE invoices.id = %(id)s FOR UPDATE", False),
    ("SELECT invoices.id FROM invoices FOR UPDATE OF invoices", False),
    ("select a.id from a for no key update", False),
    ("SELECT a.id FROM a FOR SHARE", False),
    ("SELECT a.id FROM a FOR KEY SHARE", False),
    ("SELECT pg_advisory_xact_lock(%(k)s)", False),
    ("SELECT set_config('app.x', %(v)s, true)", False),
    ("SELECT nextval('creditor_event_position')", False),
    ("INSERT INTO t (a) VALUES (%(a)s)", False),
    ("UPDATE t SET a = 1", False),
])
def test_a_plain_read_locks_sets_and_writes_nothing(statement, plain):
    assert plain_read(statement, None) is plain


class _ServerCursor(psycopg.ServerCursor):
    """Its type is what counts: no connection, nothing to close."""

    def __init__(self):
        pass

    def __del__(self):
        pass


def test_a_server_side_cursor_is_never_a_plain_read():
    assert plain_read("SELECT 1", _ServerCursor()) is False


def test_each_statement_is_searched_once():
    statement = f"SELECT t.id FROM t WHERE t.name = %(n)s -- {secrets.token_hex(8)}"
    before = _plain_select.cache_info()
    for _ in range(5):
        assert plain_read(statement, None)
    after = _plain_select.cache_info()
    assert (after.misses - before.misses, after.hits - before.hits) == (1, 4)
