"""Profiles from Spark aggregations: the same bins, counts and moments as
:func:`~driftloop.profiles.profile`, from a few jobs whose results are small.

- Moments (count, nulls, min, max, sum, sum of squares) of every numeric column: one aggregation.
- Bin edges of a reference: Spark's exact ``percentile`` (linear interpolation, as NumPy's
  quantiles), one aggregation.
- Histograms: each value's bin by binary search over the edges (``Bucketizer``), then rows and
  sums per (column, bin) in one grouped aggregation.
- Categories: the most frequent ``MAX_CATEGORIES`` per column, the rest counted as ``OTHER``
  (ties broken by name).

Sums are added in another order than NumPy's, so totals agree to float rounding.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import pyspark.sql.functions as sf
from pyspark.ml.feature import Bucketizer

from driftloop.profiles import DEFAULT_BINS, MAX_CATEGORIES, OTHER, CategoryProfile, NumericProfile, Profile

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

BIN = "__bin_"


def profile_on_spark(
    frame: DataFrame,
    numeric: list[str],
    categorical: list[str],
    *,
    like: Profile | None = None,
    bins: int = DEFAULT_BINS,
) -> Profile:
    """Profile ``frame``'s columns; with ``like``, numeric columns reuse its bin edges."""
    values = {name: _number(name) for name in numeric}
    moments = frame.agg(
        sf.count(sf.lit(1)).alias("rows"),
        *(agg.alias(f"{kind}_{i}") for i, v in enumerate(values.values()) for kind, agg in _moments(v)),
    ).first()
    assert moments is not None
    rows = int(moments["rows"])
    edges = _edges(frame, numeric, values, like, bins)
    histograms = _histograms(frame, numeric, values, edges)
    columns: dict[str, NumericProfile | CategoryProfile] = {}
    for i, name in enumerate(numeric):
        present = int(moments[f"n_{i}"])
        counts, sums = histograms[name]
        columns[name] = NumericProfile(
            count=present,
            nulls=rows - present,
            minimum=_float(moments[f"min_{i}"]),
            maximum=_float(moments[f"max_{i}"]),
            total=_float(moments[f"sum_{i}"], 0.0),
            total_squares=_float(moments[f"squares_{i}"], 0.0),
            edges=edges[name],
            counts=counts,
            sums=sums,
        )
    for name in categorical:
        columns[name] = _categories(frame, name)
    return Profile(rows, columns)


def _moments(value: Column) -> list[tuple[str, Column]]:
    """What a numeric profile keeps of a column besides its histogram, as Spark aggregates."""
    return [("n", sf.count(value)), ("min", sf.min(value)), ("max", sf.max(value)),
            ("sum", sf.sum(value)), ("squares", sf.sum(value * value))]  # fmt: skip


def _number(name: str) -> Column:
    """The column as a double, NaN as missing (as the Polars profile reads it)."""
    value = sf.col(f"`{name}`").cast("double")
    return sf.when(~sf.isnan(value), value)


def _float(value: float | None, missing: float = math.nan) -> float:
    return missing if value is None else float(value)


def _edges(
    frame: DataFrame, numeric: list[str], values: dict[str, Column], like: Profile | None, bins: int
) -> dict[str, list[float]]:
    """Each column's edges: the reference's when given, else its own distinct quantiles opened to ±inf."""
    edges: dict[str, list[float]] = {}
    own = []
    for name in numeric:
        reference = like.columns.get(name) if like else None
        if isinstance(reference, NumericProfile):
            edges[name] = reference.edges
        else:
            own.append(name)
    if not own:
        return edges
    levels = [float(q) for q in np.linspace(0, 1, bins + 1)[1:-1]]
    quantiles = frame.agg(*(sf.percentile(values[n], sf.lit(levels)).alias(f"q{i}") for i, n in enumerate(own))).first()
    assert quantiles is not None
    for i, name in enumerate(own):
        found = quantiles[f"q{i}"]
        inner = np.unique(np.asarray(found, dtype=np.float64)) if found else np.array([])
        edges[name] = [-math.inf, *(float(e) for e in inner), math.inf]
    return edges


def _histograms(
    frame: DataFrame, numeric: list[str], values: dict[str, Column], edges: dict[str, list[float]]
) -> dict[str, tuple[list[int], list[float]]]:
    """Rows and sum of values per bin of each column (bin i holds edges[i] <= v < edges[i+1])."""
    empty = {n: ([0] * (len(edges[n]) - 1), [0.0] * (len(edges[n]) - 1)) for n in numeric}
    if not numeric:
        return empty
    number = [f"__value_{i}" for i in range(len(numeric))]
    cut = [i for i, n in enumerate(numeric) if len(edges[n]) > 2]  # two edges: one bin, nothing to search
    frame = frame.select(*(values[n].alias(number[i]) for i, n in enumerate(numeric)))
    if cut:
        frame = Bucketizer(
            splitsArray=[edges[numeric[i]] for i in cut],
            inputCols=[number[i] for i in cut],
            outputCols=[f"{BIN}{i}" for i in cut],
            handleInvalid="keep",
        ).transform(frame)
    cells = sf.explode(
        sf.array(
            *(
                sf.struct(
                    sf.lit(i).alias("column"),
                    (sf.col(f"{BIN}{i}") if i in cut else sf.lit(0.0)).cast("int").alias("bin"),
                    sf.col(number[i]).alias("value"),
                )
                for i in range(len(numeric))
            )
        )
    ).alias("cell")
    grouped = (
        frame.select(cells)
        .where(sf.col("cell.value").isNotNull())
        .groupBy("cell.column", "cell.bin")
        .agg(sf.count(sf.lit(1)).alias("rows"), sf.sum("cell.value").alias("total"))
        .collect()
    )
    for row in grouped:
        counts, sums = empty[numeric[row["column"]]]
        counts[row["bin"]], sums[row["bin"]] = int(row["rows"]), float(row["total"])
    return empty


def _categories(frame: DataFrame, name: str) -> CategoryProfile:
    value = sf.col(f"`{name}`").cast("string")
    totals = frame.agg(sf.count(value).alias("present"), sf.count(sf.lit(1)).alias("rows")).first()
    assert totals is not None
    top = (
        frame.where(value.isNotNull())
        .groupBy(value.alias("value"))
        .count()
        .orderBy(sf.col("count").desc(), sf.col("value"))
        .limit(MAX_CATEGORIES + 1)
        .collect()
    )
    kept = {str(r["value"]): int(r["count"]) for r in top[:MAX_CATEGORIES]}
    present = int(totals["present"])
    if len(top) > MAX_CATEGORIES:
        kept[OTHER] = present - sum(kept.values())
    return CategoryProfile(present, int(totals["rows"]) - present, kept)
