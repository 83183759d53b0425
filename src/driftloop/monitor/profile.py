"""Profiles: compact, mergeable summaries of columns, computed in one vectorised pass.

A numeric column is summarised by its count, nulls, min, max, sum and sum of squares (so mean
and spread merge exactly) and a histogram over bin edges: rows and the sum of their values
per bin, so each bin's mass is known to sit at its own mean. A reference profile (the model's
training data) takes its edges from its own quantiles, so each bin holds about 1/bins of the
reference; a later window is profiled on the *same* edges, which makes profiles of any two
windows comparable and adding them exact. A string column keeps its category counts.
The model package carries its training profile as JSON; drift tests read profiles only.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Self

import numpy as np
import polars as pl

DEFAULT_BINS = 100
# A column with at most this many categories keeps all; the rest are counted as OTHER.
MAX_CATEGORIES = 200
OTHER = "__other__"


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


@dataclass
class CategoryProfile:
    """Summary of one string column: how often each category was seen."""

    count: int
    nulls: int
    counts: dict[str, int] = field(default_factory=dict)

    def merge(self, other: CategoryProfile) -> CategoryProfile:
        counts = dict(self.counts)
        for key, value in other.counts.items():
            counts[key] = counts.get(key, 0) + value
        return CategoryProfile(self.count + other.count, self.nulls + other.nulls, counts)


@dataclass
class Profile:
    """Profiles of a set of columns over the same rows."""

    rows: int
    columns: dict[str, NumericProfile | CategoryProfile]

    def merge(self, other: Profile) -> Profile:
        """The profile of both sets of rows together (both must profile the same columns)."""
        if self.columns.keys() != other.columns.keys():
            raise ValueError(f"profiles of different columns: {sorted(self.columns)} vs {sorted(other.columns)}")
        merged = {name: _merge(p, other.columns[name]) for name, p in self.columns.items()}
        return Profile(self.rows + other.rows, merged)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "columns": {
                name: {"kind": "numeric" if isinstance(p, NumericProfile) else "category", **asdict(p)}
                for name, p in self.columns.items()
            },
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        columns: dict[str, NumericProfile | CategoryProfile] = {}
        for name, raw in data["columns"].items():
            fields = {k: v for k, v in raw.items() if k != "kind"}
            try:
                columns[name] = NumericProfile(**fields) if raw["kind"] == "numeric" else CategoryProfile(**fields)
            except TypeError as exc:
                raise ValueError(
                    f"the profile of column {name!r} is not in this driftloop's format ({exc}); "
                    "retrain the model to give it a current reference profile"
                ) from exc
        return cls(int(data["rows"]), columns)


def profile(
    frame: pl.DataFrame,
    numeric: list[str],
    categorical: list[str],
    *,
    like: Profile | None = None,
    bins: int = DEFAULT_BINS,
) -> Profile:
    """Profile ``frame``'s columns; with ``like``, numeric columns reuse its bin edges."""
    columns: dict[str, NumericProfile | CategoryProfile] = {}
    for name in numeric:
        reference = like.columns.get(name) if like else None
        edges = reference.edges if isinstance(reference, NumericProfile) else None
        columns[name] = _numeric(frame.get_column(name), edges, bins)
    for name in categorical:
        columns[name] = _categories(frame.get_column(name))
    return Profile(frame.height, columns)


def _numeric(series: pl.Series, edges: list[float] | None, bins: int) -> NumericProfile:
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


def _categories(series: pl.Series) -> CategoryProfile:
    values = series.cast(pl.String)
    counts = values.drop_nulls().value_counts(sort=True)
    names, numbers = counts.get_column(values.name).to_list(), counts.get_column("count").to_list()
    kept = dict(zip(names[:MAX_CATEGORIES], numbers[:MAX_CATEGORIES], strict=True))
    if len(names) > MAX_CATEGORIES:
        kept[OTHER] = int(sum(numbers[MAX_CATEGORIES:]))
    return CategoryProfile(int(values.len() - values.null_count()), int(values.null_count()), kept)


def _merge(
    a: NumericProfile | CategoryProfile, b: NumericProfile | CategoryProfile
) -> NumericProfile | CategoryProfile:
    if isinstance(a, NumericProfile) and isinstance(b, NumericProfile):
        return a.merge(b)
    if isinstance(a, CategoryProfile) and isinstance(b, CategoryProfile):
        return a.merge(b)
    raise ValueError("cannot merge a numeric profile with a category profile")
