"""The experiments' intervals against values published for them (Wilson 1927; Student's t tables)."""

import pytest

from app.analytics.intervals import mean_interval, rate_interval


def test_a_rate_has_the_wilson_interval():
    # 81 of 263: the worked example of Newcombe (1998), Statistics in Medicine 17, table I: 0.2553–0.3662
    found = rate_interval(81, 263)
    assert found.estimate == pytest.approx(81 / 263)
    assert found.low == pytest.approx(0.2553, abs=5e-4)
    assert found.high == pytest.approx(0.3662, abs=5e-4)


def test_a_rate_of_nothing_stays_inside_zero_and_one():
    found = rate_interval(0, 10)
    assert found.estimate == 0 and found.low == pytest.approx(0, abs=1e-12) and 0.25 < found.high < 0.32


def test_no_trials_no_estimate_and_impossible_counts_refused():
    assert not rate_interval(0, 0).known
    with pytest.raises(ValueError):
        rate_interval(5, 4)


def test_a_mean_has_students_t_interval():
    # n = 4, mean 5, s = 2.582: t(0.975, 3) = 3.182, half-width 3.182 * 2.582 / 2 = 4.108
    found = mean_interval([2, 4, 6, 8])
    assert found.estimate == 5
    assert found.low == pytest.approx(5 - 4.108, abs=1e-3) and found.high == pytest.approx(5 + 4.108, abs=1e-3)


def test_one_value_has_a_mean_but_no_interval():
    found = mean_interval([3.0])
    assert found.estimate == 3.0 and found.low is None
    assert not mean_interval([]).known
