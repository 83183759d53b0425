"""Population Stability Index over reference deciles.

The reference's ~1% bins are merged ten at a time into deciles (PSI's usual granularity);
PSI = sum((c - r) * ln(c / r)), with empty shares floored at 0.0001. Common reading: below
0.1 stable, 0.1–0.25 some shift, above 0.25 (the default threshold) a real shift.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from driftloop.monitor.stattests import TestResult
from driftloop.monitor.stattests._cdf import shares
from driftloop.profiles import CategoryProfile, NumericProfile

FLOOR = 1e-4
GROUPS = 10


class PopulationStabilityIndex:
    name: str = "psi"
    applies_to: Literal["numeric", "category"] = "numeric"
    default_threshold: float = 0.25

    def __call__(
        self, reference: NumericProfile | CategoryProfile, current: NumericProfile | CategoryProfile, threshold: float
    ) -> TestResult:
        assert isinstance(reference, NumericProfile) and isinstance(current, NumericProfile)
        value = psi(reference, current)
        return TestResult(self.name, value, threshold, value > threshold)


def psi(reference: NumericProfile, current: NumericProfile) -> float:
    ref, cur = shares(reference, current)
    # Group boundaries at the reference's deciles; a column with few distinct values has fewer
    # bins than groups, so duplicates and the ends are dropped.
    bounds = np.unique(np.searchsorted(np.cumsum(ref), np.linspace(0, 1, GROUPS + 1)[1:-1], side="left") + 1)
    starts = np.r_[0, bounds[(bounds > 0) & (bounds < ref.size)]]
    ref_groups = np.maximum(np.add.reduceat(ref, starts), FLOOR)
    cur_groups = np.maximum(np.add.reduceat(cur, starts), FLOOR)
    return float(np.sum((cur_groups - ref_groups) * np.log(cur_groups / ref_groups)))


TEST = PopulationStabilityIndex()
