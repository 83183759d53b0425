"""Shared arithmetic of the category tests: both count vectors over the union of categories."""

from __future__ import annotations

import numpy as np

from driftloop.profiles import CategoryProfile


def aligned(reference: CategoryProfile, current: CategoryProfile) -> tuple[np.ndarray, np.ndarray]:
    names = sorted(set(reference.counts) | set(current.counts))
    ref = np.asarray([reference.counts.get(n, 0) for n in names], dtype=np.float64)
    cur = np.asarray([current.counts.get(n, 0) for n in names], dtype=np.float64)
    return ref, cur
