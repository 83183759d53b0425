"""Drift of a network's embeddings: a kernel two-sample test (maximum mean discrepancy) with a
permutation p-value.

The statistics of images (brightness, sharpness) see what a camera changes; the embeddings see
what the network itself makes of the images, which is where a change the statistics miss shows
(a new kind of part, a new background). MMD with a Gaussian kernel compares the two sets of
vectors as wholes, whatever their dimension; its bandwidth is the median distance between the
pooled vectors, and its p-value is the share of random splits of the pooled vectors that differ
at least as much as the real one, so it holds without assumptions on the distribution. Both sets
are subsampled to at most :data:`MAX_VECTORS`, which bounds the cost (a kernel matrix of at most
600 x 600) whatever the window's size.
"""

from __future__ import annotations

import numpy as np

from driftloop.monitor.stattests import TestResult

MAX_VECTORS = 300
PERMUTATIONS = 200
NAME = "mmd"


def mmd_test(
    reference: np.ndarray, current: np.ndarray, *, alpha: float = 0.05, permutations: int = PERMUTATIONS, seed: int = 0
) -> TestResult:
    """Whether ``current`` (rows of vectors) comes from another distribution than ``reference``:
    drifted when the permutation p-value is below ``alpha``. The statistic is the unbiased MMD²."""
    if reference.ndim != 2 or current.ndim != 2 or reference.shape[1] != current.shape[1]:
        raise ValueError(f"two sets of vectors of one width are compared, not {reference.shape} and {current.shape}")
    if len(reference) < 2 or len(current) < 2:
        raise ValueError(f"each set needs two vectors at least: {len(reference)} and {len(current)}")
    rng = np.random.default_rng(seed)
    ref, cur = _subsample(reference, rng), _subsample(current, rng)
    pooled = np.concatenate([ref, cur]).astype(np.float64)
    squared = _squared_distances(pooled)
    bandwidth = float(np.median(squared[np.triu_indices(len(pooled), k=1)]))
    kernel = np.exp(-squared / bandwidth) if bandwidth > 0 else np.ones_like(squared)
    split = len(ref)
    observed = _mmd2(kernel, np.arange(len(pooled)) < split)
    beaten = 0
    for _ in range(permutations):
        mask = np.zeros(len(pooled), dtype=bool)
        mask[rng.permutation(len(pooled))[:split]] = True
        beaten += _mmd2(kernel, mask) >= observed
    p_value = (1 + beaten) / (1 + permutations)
    return TestResult(NAME, observed, alpha, p_value < alpha, p_value)


def _subsample(vectors: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    if len(vectors) <= MAX_VECTORS:
        return vectors
    return vectors[rng.choice(len(vectors), MAX_VECTORS, replace=False)]


def _squared_distances(points: np.ndarray) -> np.ndarray:
    norms = (points**2).sum(axis=1)
    squared: np.ndarray = np.maximum(norms[:, None] + norms[None, :] - 2 * points @ points.T, 0.0)
    return squared


def _mmd2(kernel: np.ndarray, first: np.ndarray) -> float:
    """The unbiased MMD² between the points ``first`` marks and the others."""
    x, y = np.flatnonzero(first), np.flatnonzero(~first)
    kxx, kyy, kxy = kernel[np.ix_(x, x)], kernel[np.ix_(y, y)], kernel[np.ix_(x, y)]
    n, m = len(x), len(y)
    within_x = (kxx.sum() - np.trace(kxx)) / (n * (n - 1))
    within_y = (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
    return float(within_x + within_y - 2 * kxy.mean())
