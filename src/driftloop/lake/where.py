"""A selection of rows, as data: what a replace swaps out and a delete removes.

Structured rather than SQL text so the lake can tell from each file's statistics in the Delta
log whether all, none or some of its rows are selected: a replace then drops whole files unread
and rewrites only the files it cuts through.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

import polars as pl

from driftloop.errors import LakeError


@dataclass(frozen=True)
class Where:
    """A selection of rows: columns equal to a value (``equal``), equal to one of several values
    (``one_of``), and within half-open ``[low, high)`` ranges (``between``), all at once."""

    equal: Mapping[str, Any] = field(default_factory=dict)
    one_of: Mapping[str, Collection[Any]] = field(default_factory=dict)
    between: Mapping[str, tuple[Any, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not (self.equal or self.one_of or self.between):
            raise LakeError("a row selection needs at least one condition (equal=, one_of= or between=)")
        for column, values in self._values().items():
            if not values or any(v is None for v in values):
                raise LakeError(f"selection on {column!r} needs values that are not None; no row equals a missing one")
        for column, (low, high) in self.between.items():
            if low is None or high is None:
                raise LakeError(f"range on {column!r} needs both ends; got [{low}, {high})")

    def _values(self) -> dict[str, list[Any]]:
        return {**{c: [v] for c, v in self.equal.items()}, **{c: sorted(set(v)) for c, v in self.one_of.items()}}

    def expr(self) -> pl.Expr:
        """The selection as a Polars predicate (a null never matches)."""
        conditions = [pl.col(c).is_in(v) for c, v in self._values().items()]
        conditions += [(pl.col(c) >= pl.lit(lo)) & (pl.col(c) < pl.lit(hi)) for c, (lo, hi) in self.between.items()]
        return pl.all_horizontal(conditions).fill_null(False)

    def sql(self, dialect: Literal["datafusion", "spark"] = "datafusion") -> str:
        """The selection in the SQL of Delta's engine (DataFusion), or of Spark (names in backticks)."""
        quote = '"' if dialect == "datafusion" else "`"

        def name(column: str) -> str:
            return f"{quote}{column}{quote}"

        conditions = [
            f"{name(c)} = {_sql_literal(v[0])}" if len(v) == 1 else f"{name(c)} IN ({', '.join(map(_sql_literal, v))})"
            for c, v in self._values().items()
        ]
        conditions += [
            f"{name(c)} >= {_sql_literal(lo)} AND {name(c)} < {_sql_literal(hi)}"
            for c, (lo, hi) in self.between.items()
        ]
        return " AND ".join(conditions)

    def __str__(self) -> str:
        return self.sql()

    def file_coverage(self, files: pl.DataFrame, partition_by: tuple[str, ...]) -> tuple[pl.Series, pl.Series]:
        """For each file of ``get_add_actions(flatten=True)``: whether every row is selected, and
        whether none is, decided from its statistics (a file without them is neither)."""
        verdicts = [_values_coverage(files, c, v, partition_by) for c, v in self._values().items()]
        verdicts += [_range_coverage(files, c, lo, hi, partition_by) for c, (lo, hi) in self.between.items()]
        every = pl.all_horizontal(e for e, _ in verdicts).fill_null(False)
        none = pl.any_horizontal(n for _, n in verdicts).fill_null(False)
        verdict = files.select((every & ~none).alias("every"), none.alias("none"))
        return verdict.get_column("every"), verdict.get_column("none")


def _values_coverage(
    files: pl.DataFrame, column: str, values: list[Any], partition_by: tuple[str, ...]
) -> tuple[pl.Expr, pl.Expr]:
    """(every row of each file has one of ``values`` in ``column``, no row has); null where the log cannot tell."""
    if column in partition_by:
        inside = pl.col(f"partition.{column}").is_in(values)
        return inside, ~inside
    low, high, nulls = _stats(files, column)
    if low is None or high is None or nulls is None:
        return pl.lit(None, pl.Boolean), pl.lit(None, pl.Boolean)
    every = (low == high) & low.is_in(values) & (nulls == 0)
    none = (high < pl.lit(values[0])) | (low > pl.lit(values[-1]))  # values are sorted
    return every, none


def _range_coverage(
    files: pl.DataFrame, column: str, low_value: Any, high_value: Any, partition_by: tuple[str, ...]
) -> tuple[pl.Expr, pl.Expr]:
    """(every row of each file has ``low_value <= column < high_value``, no row has)."""
    if column in partition_by:
        value = pl.col(f"partition.{column}")
        inside = (value >= pl.lit(low_value)) & (value < pl.lit(high_value))
        return inside, ~inside
    low, high, nulls = _stats(files, column)
    if low is None or high is None or nulls is None:
        return pl.lit(None, pl.Boolean), pl.lit(None, pl.Boolean)
    every = (low >= pl.lit(low_value)) & (high < pl.lit(high_value)) & (nulls == 0)
    none = (high < pl.lit(low_value)) | (low >= pl.lit(high_value))
    return every, none


def _stats(files: pl.DataFrame, column: str) -> tuple[pl.Expr | None, pl.Expr | None, pl.Expr | None]:
    """The log's minimum, maximum and null count of ``column`` per file (None when not recorded)."""
    names = set(files.columns)
    return tuple(  # type: ignore[return-value]
        pl.col(f"{kind}.{column}") if f"{kind}.{column}" in names else None for kind in ("min", "max", "null_count")
    )


def _sql_literal(value: Any) -> str:
    if isinstance(value, datetime):
        return _sql_timestamp(value)
    if isinstance(value, date):
        return f"'{value.isoformat()}'"
    if isinstance(value, bool | int | float):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


def _sql_timestamp(value: datetime) -> str:
    """A naive timestamp as a literal Delta's SQL engine compares with a timestamp column."""
    return f"'{value:%Y-%m-%dT%H:%M:%S.%f}'"
