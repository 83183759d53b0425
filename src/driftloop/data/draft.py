"""Draft a data contract from a sample, for a person to review and edit.

The draft records what the sample shows: each column's narrowest type, a range around the
observed one, its categories when there are few, and whether it had nulls. A range is a
validity bound, not a description of today's data: values that merely drift (a warmer month)
must pass and be caught by monitoring, so the observed span is widened by itself on each side
(and a column never seen negative stays non-negative). Tighten ranges to what the domain allows.
"""

from __future__ import annotations

import polars as pl

from driftloop.data.contract import Column, ColumnType, Contract, Role
from driftloop.data.parse import clean_text, parse_column, unparsed
from driftloop.errors import ContractError

# A sample column with at most this many distinct strings is drafted as a category with allowed values.
MAX_DRAFTED_CATEGORIES = 50
# A drafted range reaches this many observed spans beyond the observed min and max.
RANGE_MARGIN = 1.0


def draft_contract(
    sample: pl.DataFrame,
    *,
    id_column: str | None = None,
    time_column: str | None = None,
    targets: tuple[str, ...] = (),
) -> Contract:
    """Draft a contract from a sample: types, observed ranges, categories and nullability.

    ``sample`` may hold strings (a CSV read as text) or typed columns. The ranges drafted are
    the sample's own min and max; widen them to what the domain allows before production.
    """
    for name in (id_column, time_column, *targets):
        if name is not None and name not in sample.columns:
            raise ContractError(
                f"column {name!r} given as a role is not in the sample; its columns are {sample.columns}"
            )
    inferred = {name: _infer(sample.get_column(name)) for name in sample.columns}
    if time_column is None:
        clocks = [n for n, (_, t) in inferred.items() if t.is_temporal and n != id_column and n not in targets]
        if len(clocks) == 1:  # one obvious clock: make it the event time
            time_column = clocks[0]
    columns = {
        name: _draft_column(values, ctype, _role(name, ctype, id_column, time_column, targets))
        for name, (values, ctype) in inferred.items()
    }
    return Contract(columns=columns)


def _role(
    name: str, ctype: ColumnType, id_column: str | None, time_column: str | None, targets: tuple[str, ...]
) -> Role:
    if name == id_column:
        return Role.ID
    if name == time_column:
        if not ctype.is_temporal:
            raise ContractError(
                f"column {name!r} was given as the event time but its values do not parse as dates "
                "or datetimes; pass another column with --time, or fix the sample"
            )
        return Role.EVENT_TIME
    if name in targets:
        return Role.TARGET
    return Role.FEATURE


def _draft_column(values: pl.Series, ctype: ColumnType, role: Role) -> Column:
    nulls = values.null_count()
    spec: dict[str, object] = {"type": ctype, "role": role, "nullable": nulls > 0}
    if role is Role.TARGET:
        spec.update(nullable=True, required=False)  # labels may arrive later than features
    if ctype.is_numeric and role is not Role.ID and values.len() > nulls:
        finite = values.filter(values.is_finite()) if ctype is ColumnType.FLOAT else values.drop_nulls()
        if finite.len():
            spec.update(_widened(float(finite.min()), float(finite.max())))  # type: ignore[arg-type]
    if ctype is ColumnType.STRING and role not in (Role.ID,):
        distinct = values.drop_nulls().unique()
        if distinct.len() <= MAX_DRAFTED_CATEGORIES:
            spec["allowed"] = sorted(distinct.to_list())
    return Column.model_validate(spec)


def _widened(low: float, high: float) -> dict[str, float]:
    """The observed range widened by its own span on each side (at least 1 when the span is 0)."""
    span = (high - low) or max(abs(high), 1.0)
    wide_low = low - RANGE_MARGIN * span
    if low >= 0:
        wide_low = max(wide_low, 0.0)
    return {"min": _round(wide_low), "max": _round(high + RANGE_MARGIN * span)}


def _round(value: float) -> float:
    return float(f"{value:.4g}")


def _infer(values: pl.Series) -> tuple[pl.Series, ColumnType]:
    """The narrowest contract type every non-null value of ``values`` parses to."""
    if values.dtype == pl.Boolean:
        return values, ColumnType.BOOL
    if values.dtype.is_integer():
        return values.cast(pl.Int64), ColumnType.INT
    if values.dtype.is_float():
        return values.cast(pl.Float64).fill_nan(None), ColumnType.FLOAT
    if values.dtype == pl.Date:
        return values, ColumnType.DATE
    if isinstance(values.dtype, pl.Datetime):
        return values.cast(pl.Datetime("us")).dt.replace_time_zone(None), ColumnType.DATETIME
    text = clean_text(values)
    if text.null_count() < text.len():
        for ctype in (ColumnType.INT, ColumnType.FLOAT, ColumnType.BOOL, ColumnType.DATE, ColumnType.DATETIME):
            formats = Column(type=ctype).parse_formats if ctype.is_temporal else ()
            parsed = parse_column(text, ctype, formats)
            if not unparsed(text, parsed, ctype).any():
                return parsed.fill_nan(None) if ctype is ColumnType.FLOAT else parsed, ctype
    # A string column keeps words like "NA" as values: only empty cells are missing.
    return text, ColumnType.STRING
