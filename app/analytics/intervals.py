"""Confidence intervals for experiments' results, computed by SciPy (a maintained statistics library),
never by hand: a rate (paid, clicked: successes out of trials) by the Wilson score interval, which
stays inside [0, 1] and behaves for small counts; a mean (days to pay) by Student's t.

SciPy is imported when a result is computed, not when the app starts (it is a large import and only
the back office's results pages and the API's results need it)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

LEVEL = 0.95


@dataclass(frozen=True)
class Interval:
    """An estimate and its interval at `level` (0.95: the 95 % interval). Undefined without data."""

    estimate: float | None
    low: float | None
    high: float | None
    level: float = LEVEL

    @property
    def known(self) -> bool:
        return self.estimate is not None


NONE = Interval(None, None, None)


def rate_interval(successes: int, trials: int, level: float = LEVEL) -> Interval:
    """The share `successes / trials` with its Wilson score interval; no estimate without trials."""
    if trials < 0 or successes < 0 or successes > trials:
        raise ValueError(f"successes {successes} out of trials {trials}")
    if trials == 0:
        return Interval(None, None, None, level)
    from scipy.stats import binomtest

    ci = binomtest(successes, trials).proportion_ci(confidence_level=level, method="wilson")
    return Interval(successes / trials, float(ci.low), float(ci.high), level)


def mean_interval(values: Sequence[float], level: float = LEVEL) -> Interval:
    """The mean of `values` with Student's t interval; a single value has no interval, none no mean."""
    n = len(values)
    if n == 0:
        return Interval(None, None, None, level)
    mean = math.fsum(values) / n
    if n == 1:
        return Interval(mean, None, None, level)
    from scipy import stats

    spread = stats.sem(values)
    if spread == 0 or math.isnan(spread):
        return Interval(mean, mean, mean, level)
    low, high = stats.t.interval(level, n - 1, loc=mean, scale=spread)
    return Interval(mean, float(low), float(high), level)
