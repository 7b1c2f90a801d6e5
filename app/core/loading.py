"""Entities read in one statement, kept together.

A statement of several joined entities (`select(PaymentAttempt, Invoice, Creditor)`) puts each in the
session's identity map, but the map holds what it loaded weakly: the invoice and the creditor are gone
as soon as the row is, and reading `attempt.invoice` then reads them again, a statement each. `linked`
sets each as its parent's relationship, as loaded (nothing to flush), so that the first holds the rest.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm.attributes import set_committed_value


def linked(row: Any, *path: str) -> Any:
    """The first entity of `row` (a row of entities, each the next one's parent by the relationship of
    the same place in `path`), with each set as its parent's relationship: `linked(row, "invoice",
    "creditor")` makes `row[0].invoice` `row[1]` and `row[1].creditor` `row[2]`. None for no row."""
    if row is None:
        return None
    for parent, name, child in zip(row, path, tuple(row)[1:], strict=False):
        set_committed_value(parent, name, child)
    return row[0]
