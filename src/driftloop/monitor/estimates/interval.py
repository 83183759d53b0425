"""An estimate with its interval, and the two ways the estimators make one."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

# Two-sided coverage of every estimate's interval.
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Interval:
    """A value and the interval around it (``low <= value <= high``)."""

    value: float
    low: float
    high: float

    def map(self, f: Callable[[float], float]) -> Interval:
        """The interval through an increasing ``f``."""
        return Interval(f(self.value), f(self.low), f(self.high))


def normal_interval(mean: float, spread: float, rows: int) -> Interval:
    """The interval of a mean of ``rows`` values whose standard deviation is ``spread``."""
    half = float(norm.ppf(0.5 + CONFIDENCE / 2)) * spread / np.sqrt(max(rows, 1))
    return Interval(float(mean), float(mean - half), float(mean + half))


def draws_interval(draws: np.ndarray) -> Interval:
    """The mean of simulated values and the central ``CONFIDENCE`` share of them."""
    finite = draws[np.isfinite(draws)]
    if finite.size == 0:
        return Interval(float("nan"), float("nan"), float("nan"))
    tail = (1 - CONFIDENCE) / 2
    low, high = np.quantile(finite, [tail, 1 - tail])
    return Interval(float(np.mean(finite)), float(low), float(high))
