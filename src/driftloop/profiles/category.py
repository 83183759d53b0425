"""The profile of a category (string) column: how often each category was seen, and nulls.

A column with more than ``MAX_CATEGORIES`` categories keeps the most frequent and counts the
rest as ``OTHER``, so a profile stays small whatever the column holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

# A column with at most this many categories keeps all; the rest are counted as OTHER.
MAX_CATEGORIES = 200
OTHER = "__other__"


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


def category_profile(series: pl.Series) -> CategoryProfile:
    """The category counts of ``series`` (as text)."""
    values = series.cast(pl.String)
    counts = values.drop_nulls().value_counts(sort=True)
    names, numbers = counts.get_column(values.name).to_list(), counts.get_column("count").to_list()
    kept = dict(zip(names[:MAX_CATEGORIES], numbers[:MAX_CATEGORIES], strict=True))
    if len(names) > MAX_CATEGORIES:
        kept[OTHER] = int(sum(numbers[MAX_CATEGORIES:]))
    return CategoryProfile(int(values.len() - values.null_count()), int(values.null_count()), kept)
