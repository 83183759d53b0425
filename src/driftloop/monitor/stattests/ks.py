"""Two-sample Kolmogorov–Smirnov test on binned profiles.

The statistic is the largest gap between the two cumulative distributions, read at the bin
edges. Compared with scipy's exact ``ks_2samp`` on the raw values it can only be smaller, by
at most the largest share of rows either sample has inside one bin (``max_error``): the
reference's bins each hold ~1% of it, so the error is small unless the current window piles
up inside one reference bin, which is itself a drift far above any threshold.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy.stats import kstwo

from driftloop.monitor.stattests import TestResult
from driftloop.monitor.stattests._cdf import cdfs, shares
from driftloop.profiles import CategoryProfile, NumericProfile


class KolmogorovSmirnov:
    name: str = "ks"
    applies_to: Literal["numeric", "category"] = "numeric"
    default_threshold: float = 0.05  # p-value

    def __call__(
        self, reference: NumericProfile | CategoryProfile, current: NumericProfile | CategoryProfile, threshold: float
    ) -> TestResult:
        assert isinstance(reference, NumericProfile) and isinstance(current, NumericProfile)
        statistic = ks_statistic(reference, current)
        n, m = reference.count, current.count
        effective = max(1, round(n * m / (n + m))) if n and m else 1
        p_value = float(kstwo.sf(statistic, effective))
        return TestResult(self.name, statistic, threshold, p_value < threshold, p_value)


def ks_statistic(reference: NumericProfile, current: NumericProfile) -> float:
    ref, cur = cdfs(reference, current)
    return float(np.max(np.abs(ref - cur))) if ref.size else 0.0


def max_error(reference: NumericProfile, current: NumericProfile) -> float:
    """Bound on how far ``ks_statistic`` can be below the exact statistic of the raw values."""
    ref, cur = shares(reference, current)
    return float(max(ref.max(initial=0.0), cur.max(initial=0.0)))


TEST = KolmogorovSmirnov()
