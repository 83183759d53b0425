"""The profile of a numeric column: count, nulls, min, max, sum and sum of squares (so mean and
spread merge exactly) and a histogram over bin edges: rows and the sum of their values per bin,
so each bin's mass is known to sit at its own mean.

A reference profile (the model's training data) takes its edges from its own quantiles, so each
bin holds about 1/bins of the reference; a later window is profiled on the *same* edges, which
makes profiles of any two windows comparable and adding them exact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import polars as pl


@dataclass
class NumericProfile:
    """Summary of one numeric column; ``counts[i]`` is the rows in [edges[i], edges[i+1])."""

    count: int
    nulls: int
    minimum: float
    maximum: float
    total: float
    total_squares: float
    edges: list[float]
    counts: list[int]
    sums: list[float]  # of the values in each bin: where a bin's rows sit, not just how many

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else math.nan

    @property
    def std(self) -> float:
        if self.count < 2:
            return 0.0
        variance = (self.total_squares - self.total**2 / self.count) / (self.count - 1)
        return math.sqrt(max(variance, 0.0))

    def merge(self, other: NumericProfile) -> NumericProfile:
        if self.edges != other.edges:
            raise ValueError("numeric profiles merge only over the same bin edges")
        return NumericProfile(
            self.count + other.count,
            self.nulls + other.nulls,
            min(self.minimum, other.minimum),
            max(self.maximum, other.maximum),
            self.total + other.total,
            self.total_squares + other.total_squares,
            self.edges,
            [a + b for a, b in zip(self.counts, other.counts, strict=True)],
            [a + b for a, b in zip(self.sums, other.sums, strict=True)],
        )


def numeric_profile(series: pl.Series, edges: list[float] | None, bins: int) -> NumericProfile:
    """The profile of ``series`` on ``edges`` (from its own quantiles, ``bins`` of them, when None)."""
    values = series.cast(pl.Float64).fill_nan(None)
    present = values.drop_nulls().to_numpy()
    if edges is None:
        edges = _edges(present, bins)
    counts, sums = _histogram(present, edges)
    return NumericProfile(
        count=int(present.size),
        nulls=int(values.null_count()),
        minimum=float(present.min()) if present.size else math.nan,
        maximum=float(present.max()) if present.size else math.nan,
        total=float(present.sum()),
        total_squares=float(np.dot(present, present)),
        edges=edges,
        counts=counts,
        sums=sums,
    )


def _edges(values: np.ndarray, bins: int) -> list[float]:
    """Distinct quantile edges of ``values``, opened to ±inf so every later value has a bin."""
    if values.size == 0:
        return [-math.inf, math.inf]
    inner = np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1]))
    return [-math.inf, *(float(e) for e in inner), math.inf]


def _histogram(values: np.ndarray, edges: list[float]) -> tuple[list[int], list[float]]:
    """Rows and sum of values per bin; bin i holds edges[i] <= v < edges[i+1] (one searchsorted pass)."""
    index = np.searchsorted(np.asarray(edges[1:-1]), values, side="right")
    bins = len(edges) - 1
    counts = np.bincount(index, minlength=bins)
    sums = np.bincount(index, weights=values, minlength=bins)
    return [int(c) for c in counts], [float(v) for v in sums]
