"""Normalised Wasserstein (earth mover's) distance on binned profiles.

W1 is the area between the two cumulative distributions, each bin's rows placed at their
mean; it is divided by the reference's standard deviation so one threshold (0.1 by default,
Evidently's) suits every column.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from driftloop.monitor.stattests import TestResult
from driftloop.profiles import CategoryProfile, NumericProfile


class NormalisedWasserstein:
    name: str = "wasserstein"
    applies_to: Literal["numeric", "category"] = "numeric"
    default_threshold: float = 0.1  # distance, in reference standard deviations

    def __call__(
        self, reference: NumericProfile | CategoryProfile, current: NumericProfile | CategoryProfile, threshold: float
    ) -> TestResult:
        assert isinstance(reference, NumericProfile) and isinstance(current, NumericProfile)
        distance = wasserstein(reference, current) / (reference.std or 1.0)
        return TestResult(self.name, distance, threshold, distance > threshold)


def wasserstein(reference: NumericProfile, current: NumericProfile) -> float:
    """W1 between the two profiles, each bin's rows placed at that bin's mean value.

    Between two weighted sets of points W1 is exact: the area between their step CDFs. The
    only approximation is collapsing each bin (1% of the reference) to its mean.
    """
    ref_at, ref_weight = _atoms(reference)
    cur_at, cur_weight = _atoms(current)
    points = np.concatenate([ref_at, cur_at])
    order = np.argsort(points, kind="stable")
    steps = np.concatenate([ref_weight, -cur_weight])[order]
    gap = np.abs(np.cumsum(steps))[:-1]  # F_ref - F_cur between consecutive points
    return float(np.sum(gap * np.diff(points[order])))


def _atoms(profile: NumericProfile) -> tuple[np.ndarray, np.ndarray]:
    counts = np.asarray(profile.counts, dtype=np.float64)
    used = counts > 0
    at = np.asarray(profile.sums, dtype=np.float64)[used] / counts[used]
    return at, counts[used] / max(counts.sum(), 1.0)


TEST = NormalisedWasserstein()
