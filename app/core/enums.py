"""Codes stored as strings (statuses, kinds, roles) as `StrEnum`s.

A member is its string: equal to it, hashed like it, written to the database and to JSON as it. A
value read back from a column is a plain `str` and compares equal to the member, so no conversion
is needed either way. Groups of members (the closed statuses...) are `enum.nonmember` tuples.

Pure Python on purpose: the payment gateways, which may not import Flask, use `Codes` too. The
words of a `Labelled` enum are written in its own module, with that module's `gettext`.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class Codes(StrEnum):
    """A StrEnum with helpers for the places that need plain strings."""

    @classmethod
    def values(cls) -> tuple[str, ...]:
        """Every member's value, as plain strings (click's choices, JSON Schema enums)."""
        return tuple(member.value for member in cls)

    @classmethod
    def sql_in(cls, column: str, members: Iterable[str] | None = None) -> str:
        """`column IN ('a', 'b', ...)` for every member (a CHECK constraint that keeps the column to
        these codes), or for some (a partial index's condition)."""
        values = cls.values() if members is None else tuple(cls(member).value for member in members)
        listed = ", ".join(f"'{value}'" for value in values)
        return f"{column} IN ({listed})"


class Labelled(Codes):
    """Codes with words: a subclass's `words()` gives every member's label, translated when it is
    called (in the current locale), never at import."""

    @classmethod
    def words(cls) -> dict[str, str]:
        raise NotImplementedError(f"{cls.__name__} has no words")

    @property
    def label(self) -> str:
        return self.words()[self]

    @classmethod
    def label_of(cls, value: str | None) -> str:
        """The label of a value read from the database or an event; an unknown value as it is, None as ""."""
        if value is None:
            return ""
        return cls.words().get(value, value)
