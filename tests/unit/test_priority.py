"""WORKER_NICE read for the documents pool and the background loops (app/core/priority.py)."""

from __future__ import annotations

import pytest

from app.config import ConfigError
from app.core.priority import lower_priority, worker_nice


@pytest.mark.parametrize(("value", "nice"), [(None, 0), ("", 0), (" ", 0), ("0", 0), ("10", 10), (" 7 ", 7),
                                             ("19", 19)])
def test_worker_nice_reads_a_whole_number_from_0_to_19(value, nice):
    assert worker_nice({} if value is None else {"WORKER_NICE": value}) == nice


@pytest.mark.parametrize("value", ["20", "-1", "ten", "1.5", "+3"])
def test_a_wrong_worker_nice_is_refused_by_name(value):
    with pytest.raises(ConfigError, match="WORKER_NICE must be a whole number from 0 to 19"):
        worker_nice({"WORKER_NICE": value})
    with pytest.raises(ConfigError):  # a loop refuses to start rather than run at the pages' priority
        lower_priority({"WORKER_NICE": value})


def test_without_worker_nice_nothing_changes():
    import os

    before = os.nice(0)
    assert lower_priority({}) == 0
    assert os.nice(0) == before
