"""Text to typed values, per contract type, vectorised with Polars.

Every input column is read as text when its source gives no trustworthy type (CSV), so a cell
that does not parse keeps its original text for quarantine. A parsed value is null when the
text was empty or did not parse; comparing with the text tells the two apart.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

import polars as pl

from driftloop.data.contract import ColumnType

# Written for "no value" by common tools; read as missing in every column that is not a string.
NULL_WORDS = ("na", "n/a", "nan", "null", "none", "-nan")
TRUE_WORDS = ("true", "t", "yes", "y", "1")
# Rows of a date column tried against each format to find the one the batch is written in.
SAMPLE_FOR_FORMAT = 200
FALSE_WORDS = ("false", "f", "no", "n", "0")


def nested_as_text(values: pl.Series) -> pl.Series:
    """A column of lists or records (where cells were expected) as their JSON text; others as they are.

    Such a value then fails its column's type rule and is shown as it came, instead of making
    every later cast to text fail.
    """
    if not (values.dtype.is_nested() or values.dtype == pl.Object):
        return values
    text = [None if v is None else json.dumps(v, default=str) for v in values.to_list()]
    return pl.Series(values.name, text, dtype=pl.String)


def clean_text(values: pl.Series) -> pl.Series:
    """Values as text with surrounding white space stripped; an empty cell is missing (null)."""
    stripped = nested_as_text(values).cast(pl.String).str.strip_chars()
    return pl.select(pl.when(stripped != "").then(stripped)).to_series().alias(values.name)


def unparsed(text: pl.Series, values: pl.Series, ctype: ColumnType) -> pl.Series:
    """Where ``text`` was given but did not parse; a null word ("NA", "null"...) counts as missing.

    Null words are looked for only among the failures, which are few, so the common case costs
    one comparison per row.
    """
    failed = text.is_not_null() & values.is_null()
    if ctype is ColumnType.STRING or not failed.any():
        return failed
    positions = failed.arg_true()
    words = text.gather(positions).str.to_lowercase().is_in(NULL_WORDS)
    return failed.scatter(positions.filter(words), False)


def parse_column(text: pl.Series, ctype: ColumnType, formats: Sequence[str] = ()) -> pl.Series:
    """Parse cleaned text to ``ctype``; null where the text is missing or does not parse.

    Ints: "60" and "60.0" parse, "60.5" does not. Dates and datetimes: ``formats`` are tried
    in order, first match wins. The common case is parsed in one pass (the format that fits a
    sample of the column, the plain integer cast); only the rows it leaves unparsed are tried
    again the slower ways, so a clean column costs one parse.
    """
    if ctype is ColumnType.STRING:
        return text
    if ctype is ColumnType.FLOAT:
        return text.cast(pl.Float64, strict=False)
    if ctype is ColumnType.BOOL:
        lower = text.str.to_lowercase()
        return pl.select(
            pl.when(lower.is_in(TRUE_WORDS)).then(True).when(lower.is_in(FALSE_WORDS)).then(False)
        ).to_series()
    if ctype is ColumnType.INT:
        return _fill_unparsed(text, text.cast(pl.Int64, strict=False), [_integral_float])
    target = pl.Date() if ctype is ColumnType.DATE else pl.Datetime("us")
    ordered = _by_fit(text, target, formats)
    first, *rest = [_strptime(target, f) for f in ordered]
    return _fill_unparsed(text, first(text), rest)


def _strptime(target: pl.DataType, fmt: str) -> Callable[[pl.Series], pl.Series]:
    return lambda text: text.str.strptime(target, fmt, strict=False)  # type: ignore[arg-type]


def _integral_float(text: pl.Series) -> pl.Series:
    as_float = text.cast(pl.Float64, strict=False)
    return pl.select(pl.when(as_float == as_float.round()).then(as_float.cast(pl.Int64, strict=False))).to_series()


def _fill_unparsed(text: pl.Series, parsed: pl.Series, fallbacks: list[Callable[[pl.Series], pl.Series]]) -> pl.Series:
    """Try ``fallbacks`` in order on just the rows with text that ``parsed`` left null."""
    for fallback in fallbacks:
        missing = parsed.is_null() & text.is_not_null()
        if not missing.any():
            break
        positions = missing.arg_true()
        parsed = parsed.scatter(positions, fallback(text.gather(positions)))
    return parsed


def _by_fit(text: pl.Series, target: pl.DataType, formats: Sequence[str]) -> list[str]:
    """``formats`` with the one that parses most of a sample first (ties keep the given order)."""
    sample = text.drop_nulls().head(SAMPLE_FOR_FORMAT)
    if len(formats) < 2 or sample.is_empty():
        return list(formats)
    fits = [sample.str.strptime(target, f, strict=False).null_count() for f in formats]  # type: ignore[arg-type]
    best = min(range(len(formats)), key=lambda i: (fits[i], i))
    return [formats[best], *(f for i, f in enumerate(formats) if i != best)]


def cast_typed(expr: pl.Expr, source: pl.DataType, ctype: ColumnType) -> pl.Expr | None:
    """Convert an already-typed column (Parquet, a frame) to ``ctype`` without going through text.

    Returns None when the source type is not a lossless match, so the caller parses text instead.
    """
    target = ctype.polars
    if source == target:
        return expr
    if ctype is ColumnType.FLOAT and source.is_numeric():
        return expr.cast(pl.Float64)
    if ctype is ColumnType.INT and source.is_integer():
        return expr.cast(pl.Int64)
    if ctype is ColumnType.DATETIME and isinstance(source, pl.Datetime):
        # Times are stored naive; an aware source is converted to UTC first so no hour shifts.
        converted = expr.dt.convert_time_zone("UTC").dt.replace_time_zone(None) if source.time_zone else expr
        return converted.cast(pl.Datetime("us"))
    if ctype is ColumnType.DATETIME and source == pl.Date:
        return expr.cast(pl.Datetime("us"))
    if ctype is ColumnType.DATE and isinstance(source, pl.Datetime):
        # pandas has no date type: a date column arrives as midnight datetimes. A datetime given
        # for a date counts as its calendar day (in UTC when it carries a time zone).
        return (expr.dt.convert_time_zone("UTC") if source.time_zone else expr).dt.date()
    if ctype is ColumnType.STRING and source in (pl.Categorical, pl.Enum):
        return expr.cast(pl.String)
    return None
