"""Chi-square goodness of fit: are the current category counts what the reference shares predict?

A category the reference never saw gets a tiny expected share rather than zero, so a new
category raises the statistic sharply instead of dividing by zero.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy.stats import chisquare

from driftloop.monitor.stattests import TestResult
from driftloop.monitor.stattests._categories import aligned
from driftloop.profiles import CategoryProfile, NumericProfile

UNSEEN_SHARE = 1e-6


class ChiSquare:
    name: str = "chisquare"
    applies_to: Literal["numeric", "category"] = "category"
    default_threshold: float = 0.05  # p-value

    def __call__(
        self, reference: NumericProfile | CategoryProfile, current: NumericProfile | CategoryProfile, threshold: float
    ) -> TestResult:
        assert isinstance(reference, CategoryProfile) and isinstance(current, CategoryProfile)
        ref, cur = aligned(reference, current)
        if cur.sum() == 0 or ref.sum() == 0:
            return TestResult(self.name, 0.0, threshold, False, 1.0)
        shares = np.maximum(ref / ref.sum(), UNSEEN_SHARE)
        expected = shares / shares.sum() * cur.sum()
        statistic, p_value = chisquare(cur, expected)
        return TestResult(self.name, float(statistic), threshold, float(p_value) < threshold, float(p_value))


TEST = ChiSquare()
