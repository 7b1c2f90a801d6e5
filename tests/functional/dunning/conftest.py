"""The dunning fixtures (an app context, creditors with the shipped plans) for the functional tier's
dunning tests: the same as the unit tier's, which `tests/unit/dunning/conftest.py` defines."""

from tests.unit.dunning.conftest import ctx, germany, norway  # noqa: F401  (pytest finds fixtures by name)
