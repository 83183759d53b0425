"""Text to typed values, per contract type, vectorised with Polars.

Every input column is read as text when its source gives no trustworthy type (CSV), so a cell
that does not parse keeps its original text for quarantine. A parsed value is null when the
text was empty or did not parse; comparing with the text tells the two apart.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import polars as pl

from driftloop.data.clock import UTC_ZONE, from_local
from driftloop.data.contract import TIME_PARTS, Column, ColumnType, EpochUnit

# Written for "no value" by common tools; read as missing in every column that is not a string.
NULL_WORDS = ("na", "n/a", "nan", "null", "none", "-nan")
TRUE_WORDS = ("true", "t", "yes", "y", "1")
# Rows of a date column tried against each format to find the one the batch is written in.
SAMPLE_FOR_FORMAT = 200
FALSE_WORDS = ("false", "f", "no", "n", "0")
EPOCH_MICROS = {"s": 1_000_000, "ms": 1_000, "us": 1}
# Digits of each part of an assembled time (year, month, day, hour, minute, second).
PART_WIDTHS = (4, 2, 2, 2, 2, 2)


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


def parse_column(
    text: pl.Series, column: Column, zone_name: str = UTC_ZONE, *, sample: pl.Series | None = None
) -> pl.Series:
    """Parse cleaned text to ``column``'s type; null where the text is missing or does not parse.

    Ints: "60" and "60.0" parse, "60.5" does not. Dates and datetimes: the column's formats are
    tried in order, first match wins; a datetime with an offset is converted to UTC, a naive one
    is read in ``zone_name``. The common case is parsed in one pass (the format that fits a
    sample of the column, the plain integer cast); only the rows it leaves unparsed are tried
    again the slower ways, so a clean column costs one parse. ``sample`` (default: ``text``
    itself) is the text whose first values pick a time column's format: an engine that parses a
    batch in parts gives every part the batch's own, so they all prefer the same format.
    """
    ctype = column.type
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
    parsers = _by_fit(text if sample is None else sample, time_parsers(column, zone_name))
    first, *rest = [_on_series(parse) for parse in parsers]
    return _fill_unparsed(text, first(text), rest)


TimeParser = Callable[[pl.Expr], pl.Expr]


def time_parsers(column: Column, zone_name: str = UTC_ZONE) -> list[TimeParser]:
    """One parser per way ``column``'s text may be written, each giving the stored type (a date,
    or a naive UTC datetime), null where the text does not fit."""
    if column.unit is not None:
        return [lambda text: epoch_instants(text.cast(pl.Float64, strict=False), column.unit or "s")]
    if column.type is ColumnType.DATE:
        return [_date_format(f) for f in column.parse_formats]
    return [_zoned_format(f) if has_offset(f) else _local_format(f, zone_name) for f in column.parse_formats]


def has_offset(fmt: str) -> bool:
    """Whether a strptime format reads a UTC offset (``%z``, ``%:z``, ``%#z``)."""
    return any(directive in fmt for directive in ("%z", "%:z", "%#z"))


def epoch_instants(numbers: pl.Expr, unit: EpochUnit) -> pl.Expr:
    """Numbers of ``unit`` since the epoch as naive UTC datetimes (fractions kept to the microsecond)."""
    micros = (numbers * EPOCH_MICROS[unit]).round().cast(pl.Int64, strict=False)
    return pl.from_epoch(micros, time_unit="us")


def _date_format(fmt: str) -> TimeParser:
    return lambda text: text.str.strptime(pl.Date, fmt, strict=False)


def _zoned_format(fmt: str) -> TimeParser:
    return lambda text: text.str.strptime(pl.Datetime("us", UTC_ZONE), fmt, strict=False).dt.replace_time_zone(None)


def _local_format(fmt: str, zone_name: str) -> TimeParser:
    return lambda text: from_local(text.str.strptime(pl.Datetime("us"), fmt, strict=False), zone_name)


def _on_series(parse: TimeParser) -> Callable[[pl.Series], pl.Series]:
    return lambda text: text.to_frame().select(parse(pl.col(text.name))).to_series()


def assemble_time(frame: pl.DataFrame, name: str, column: Column) -> pl.Series:
    """The text of a time assembled from ``column.parts`` ("2016-03-01 06:00:00"), null where a
    part is missing; parsed and checked like any other time, so a bad part keeps its text."""
    names = list(column.parts or ())
    parts = frame.select(clean_text(frame.get_column(p)) for p in names)
    numbers = [pl.col(p).cast(pl.Float64, strict=False) for p in names]
    whole = [pl.when(n == n.round()).then(n.cast(pl.Int64, strict=False)) for n in numbers]
    digits = [w.cast(pl.String).str.zfill(width) for w, width in zip(whole, PART_WIDTHS, strict=False)]
    # A month or day not given is the first; an hour, minute or second not given is zero.
    digits += [pl.lit("01" if i < 3 else "00") for i in range(len(digits), len(TIME_PARTS))]
    day = pl.concat_str(digits[:3], separator="-")
    text = (
        day
        if column.type is ColumnType.DATE
        else pl.concat_str([day, pl.concat_str(digits[3:], separator=":")], separator=" ")
    )
    # A part that is not a whole number shows the parts as given, so quarantine keeps them.
    broken = pl.any_horizontal([pl.col(p).is_not_null() & w.is_null() for p, w in zip(names, whole, strict=True)])
    shown = pl.concat_str([pl.col(p) for p in names], separator="|")
    return parts.select(pl.when(broken).then(shown).otherwise(text).alias(name)).to_series()


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


def _by_fit(text: pl.Series, parsers: list[TimeParser]) -> list[TimeParser]:
    """``parsers`` with the one that parses most of a sample first (ties keep the given order)."""
    sample = text.drop_nulls().head(SAMPLE_FOR_FORMAT)
    if len(parsers) < 2 or sample.is_empty():
        return parsers
    frame = sample.to_frame("text")
    fits = frame.select(parse(pl.col("text")).null_count().alias(str(i)) for i, parse in enumerate(parsers)).row(0)
    best = min(range(len(parsers)), key=lambda i: (fits[i], i))
    return [parsers[best], *(p for i, p in enumerate(parsers) if i != best)]


def cast_typed(expr: pl.Expr, source: pl.DataType, column: Column, zone_name: str = UTC_ZONE) -> pl.Expr | None:
    """Convert an already-typed column (Parquet, a frame) to ``column``'s type without going through text.

    A naive datetime is a wall-clock time of ``zone_name``, an aware one says its own instant;
    both are stored as naive UTC. Returns None when the source type is not a lossless match, so
    the caller parses text instead.
    """
    ctype = column.type
    if source == pl.Null:  # every value missing (a JSON field sent as null): that type's nulls, no parsing
        return expr.cast(ctype.polars)
    if ctype is ColumnType.DATETIME:
        return _typed_instants(expr, source, column, zone_name)
    if source == ctype.polars:
        return expr
    if ctype is ColumnType.FLOAT and source.is_numeric():
        return expr.cast(pl.Float64)
    if ctype is ColumnType.INT and source.is_integer():
        return expr.cast(pl.Int64)
    if ctype is ColumnType.DATE and isinstance(source, pl.Datetime):
        # pandas has no date type: a date column arrives as midnight datetimes. A datetime given
        # for a date counts as its calendar day (in the zone when it carries one of its own).
        return (expr.dt.convert_time_zone(zone_name) if source.time_zone else expr).dt.date()
    if ctype is ColumnType.STRING and source in (pl.Categorical, pl.Enum):
        return expr.cast(pl.String)
    return None


def _typed_instants(expr: pl.Expr, source: pl.DataType, column: Column, zone_name: str) -> pl.Expr | None:
    if isinstance(source, pl.Datetime):
        if source.time_zone:
            return expr.dt.convert_time_zone(UTC_ZONE).dt.replace_time_zone(None).cast(pl.Datetime("us"))
        return from_local(expr.cast(pl.Datetime("us")), zone_name)
    if source == pl.Date:
        return from_local(expr.cast(pl.Datetime("us")), zone_name)
    if column.unit is not None and source.is_numeric():
        return epoch_instants(expr.cast(pl.Float64), column.unit)
    return None
