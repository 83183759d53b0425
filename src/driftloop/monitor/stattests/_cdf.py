"""Shared arithmetic of the numeric tests: distributions of two profiles on the same bins."""

from __future__ import annotations

import numpy as np

from driftloop.profiles import NumericProfile


def shares(reference: NumericProfile, current: NumericProfile) -> tuple[np.ndarray, np.ndarray]:
    """The share of rows in each bin, for both profiles (which must share their bin edges)."""
    if reference.edges != current.edges:
        raise ValueError("drift tests compare profiles on the same bin edges; profile the window with like=reference")
    ref = np.asarray(reference.counts, dtype=np.float64)
    cur = np.asarray(current.counts, dtype=np.float64)
    return ref / max(ref.sum(), 1.0), cur / max(cur.sum(), 1.0)


def cdfs(reference: NumericProfile, current: NumericProfile) -> tuple[np.ndarray, np.ndarray]:
    """Both cumulative distributions at the inner bin edges."""
    ref, cur = shares(reference, current)
    return np.cumsum(ref)[:-1], np.cumsum(cur)[:-1]
