"""Jensen–Shannon distance between the reference and current category shares (natural log)."""

from __future__ import annotations

from typing import Literal

from scipy.spatial.distance import jensenshannon as js_distance

from driftloop.monitor.stattests import TestResult
from driftloop.monitor.stattests._categories import aligned
from driftloop.profiles import CategoryProfile, NumericProfile


class JensenShannon:
    name: str = "jensenshannon"
    applies_to: Literal["numeric", "category"] = "category"
    default_threshold: float = 0.1

    def __call__(
        self, reference: NumericProfile | CategoryProfile, current: NumericProfile | CategoryProfile, threshold: float
    ) -> TestResult:
        assert isinstance(reference, CategoryProfile) and isinstance(current, CategoryProfile)
        ref, cur = aligned(reference, current)
        if cur.sum() == 0 or ref.sum() == 0:
            return TestResult(self.name, 0.0, threshold, False)
        distance = float(js_distance(ref / ref.sum(), cur / cur.sum()))
        return TestResult(self.name, distance, threshold, distance > threshold)


TEST = JensenShannon()
