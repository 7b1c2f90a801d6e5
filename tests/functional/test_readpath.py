"""The driver-connection reads (`app.readpath`) give the values the ORM gives for the same statement."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import literal_column, select

from app.access.services import _BILL_ACCESS, _bill_access_statement
from app.readpath import ReadQuery
from tests.factories import make_creditor, make_invoice


def test_the_bill_access_read_gives_what_the_orm_gives(app, session):
    with app.app_context():
        invoice = make_invoice(make_creditor("NO"), lines=3)
        session.flush()
        params = {"public_id": invoice.public_id, "source_id": 0}
        expected = tuple(session.execute(_bill_access_statement(), params).one())
        row = _BILL_ACCESS.first(**params)
        assert row == expected
        # processed like the ORM's results: timestamps as aware datetimes, NULLs as None
        columns = [column.key for column in _bill_access_statement().selected_columns]
        updated = row[columns.index("updated_at")]
        assert isinstance(updated, datetime) and updated.tzinfo is not None
        assert row[columns.index("dunning_next_on")] is None
        assert _BILL_ACCESS.first(public_id="no-such-bill", source_id=0) is None


def test_a_statement_without_processed_columns_gives_its_row_as_is(app, session):
    query = ReadQuery(lambda: select(literal_column("7").label("a"), literal_column("'x'").label("b")))
    with app.app_context():
        assert query.first() == (7, "x")
