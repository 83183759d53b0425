"""Text to typed values, per contract type, as vectorised Polars expressions.

Every input column is read as text when its source gives no trustworthy type (CSV), so a cell
that does not parse keeps its original text for quarantine. A parsed value is null when the
text was empty or did not parse; comparing with the text tells the two apart.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from driftloop.contract import ColumnType

# Written for "no value" by common tools; read as missing in every column that is not a string.
NULL_WORDS = ("na", "n/a", "nan", "null", "none", "-nan")
TRUE_WORDS = ("true", "t", "yes", "y", "1")
FALSE_WORDS = ("false", "f", "no", "n", "0")


def clean_text(expr: pl.Expr, ctype: ColumnType = ColumnType.STRING) -> pl.Expr:
    """Strip surrounding white space; an empty cell (or a null word, outside strings) is missing."""
    stripped = expr.cast(pl.String).str.strip_chars()
    if ctype is ColumnType.STRING:
        return pl.when(stripped != "").then(stripped)
    return pl.when((stripped != "") & ~stripped.str.to_lowercase().is_in(NULL_WORDS)).then(stripped)


def parse_text(text: pl.Expr, ctype: ColumnType, formats: Sequence[str]) -> pl.Expr:
    """Parse cleaned text to ``ctype``; null where the text is missing or does not parse.

    Ints: "60" and "60.0" parse, "60.5" does not.
    Dates and datetimes: ``formats`` are tried in order, first match wins.
    """
    if ctype is ColumnType.STRING:
        return text
    if ctype is ColumnType.FLOAT:
        return text.cast(pl.Float64, strict=False)
    if ctype is ColumnType.INT:
        as_float = text.cast(pl.Float64, strict=False)
        integral = pl.when(as_float == as_float.round()).then(as_float.cast(pl.Int64, strict=False))
        return pl.coalesce(text.cast(pl.Int64, strict=False), integral)
    if ctype is ColumnType.BOOL:
        lower = text.str.to_lowercase()
        return pl.when(lower.is_in(TRUE_WORDS)).then(True).when(lower.is_in(FALSE_WORDS)).then(False)
    target = pl.Date() if ctype is ColumnType.DATE else pl.Datetime("us")
    return pl.coalesce([text.str.strptime(target, fmt, strict=False) for fmt in formats])


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
    if ctype is ColumnType.STRING and source in (pl.Categorical, pl.Enum):
        return expr.cast(pl.String)
    return None
