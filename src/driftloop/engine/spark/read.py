"""Batch files read by Spark, so a batch's rows never pass through the driver.

The rows are those the Polars reader gives (:func:`~driftloop.data.sources.read_rows`):

- **CSV**: every cell as text. The header is read on the driver by Python's csv module (a UTF-8
  byte-order mark dropped, a repeated name renamed as Polars renames it) and given to Spark as an
  all-text schema. A short line is padded with nulls; a line with more fields than the header
  refuses the file (a :class:`~driftloop.errors.SourceError` naming the line), since dropping its
  extra cells would lose data. A file holding a quote character is read whole by one task: a
  quoted cell may span lines, and a reader that splits the file by byte ranges could cut such a
  row in two. Other files are split across tasks. One difference remains: Spark skips a blank
  line, where Polars reads it as a row of nulls (which the contract then quarantines).
- **Parquet**: Spark's reader, the file's own types.
- **NDJSON**: Spark's reader, the schema inferred over every line, as Polars infers it; a line
  that is not JSON refuses the file.

Spark reads lazily: a file that cannot be parsed fails in the first job that reads it (the
contract check), as the same SourceError.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import TYPE_CHECKING

import pyspark.sql.functions as sf
from pyspark.sql.types import StringType, StructField, StructType

from driftloop.data.sources import csv_separator, file_kind
from driftloop.engine.spark.failures import failure_line, failure_types
from driftloop.errors import SourceError

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

CORRUPT = "__corrupt_line__"
NO_NULL_WORD = "\x00driftloop:no-null-word\x00"  # text no cell holds
# Bytes read at a time when looking for a quote character.
SCAN_BYTES = 8 * 2**20


def read_on_spark(spark: SparkSession, path: Path) -> DataFrame:
    """The rows of the batch file at ``path`` as a Spark frame (lazily read)."""
    kind = file_kind(path)
    if kind == "csv":
        return _csv(spark, path)
    if kind == "parquet":
        return spark.read.parquet(str(path))
    if kind == "ndjson":
        return _ndjson(spark, path)
    raise SourceError(f"{path}: unsupported file type {path.suffix!r}")


def _ndjson(spark: SparkSession, path: Path) -> DataFrame:
    """Lines of JSON, the schema inferred from every line here (a job): a line that is not JSON
    fails this inference, so the file is refused before any other work."""
    try:
        return spark.read.options(mode="FAILFAST", samplingRatio=1.0).json(str(path))
    except failure_types() as exc:
        raise SourceError(
            f"{path}: cannot be read as ndjson: a line is not a JSON object ({failure_line(exc)}); "
            "fix the file and ingest it again"
        ) from exc


def _csv(spark: SparkSession, path: Path) -> DataFrame:
    separator = csv_separator(path)
    names = csv_header(path, separator)
    schema = StructType([*(StructField(n, StringType()) for n in names), StructField(CORRUPT, StringType())])
    rows = (
        spark.read.schema(schema)
        .options(
            header=True,
            enforceSchema=True,  # the names are the header's, as read above
            sep=separator,
            quote='"',
            escape='"',  # a quote inside a quoted cell is doubled (RFC 4180), as Polars reads it
            # An empty cell is missing and a quoted empty one ("") is empty text, as Polars reads
            # them; Spark's default null word, "", would make both missing.
            nullValue=NO_NULL_WORD,
            mode="PERMISSIVE",  # a short line padded with nulls; the line itself kept for the check below
            columnNameOfCorruptRecord=CORRUPT,
            multiLine=_has_quotes(path),
            encoding="UTF-8",
        )
        .csv(str(path))
    )
    too_long = sf.col(CORRUPT).isNotNull() & (_fields(sf.col(CORRUPT), separator) > len(names))
    message = sf.concat(
        sf.lit(f"{SourceError.__name__}: {path}: a line has more fields than the header's {len(names)}: "),
        sf.substring(sf.col(CORRUPT), 1, 200),
        sf.lit("; fix the file and ingest it again"),
    )
    # Checked where the first column is read (every job that reads the rows' cells does), not
    # in a filter: Spark refuses a query whose only column read is the corrupt-line one (a count).
    first = sf.when(too_long, sf.raise_error(message).cast("string")).otherwise(sf.col(f"`{names[0]}`"))
    return rows.select(first.alias(names[0]), *(sf.col(f"`{n}`") for n in names[1:]))


def _fields(line: Column, separator: str) -> Column:
    """How many fields a CSV line holds: its separators outside quoted cells, plus one."""
    unquoted = sf.regexp_replace(line, r'"[^"]*"', "")
    return sf.size(sf.split(unquoted, re.escape(separator), -1))


def csv_header(path: Path, separator: str) -> list[str]:
    """The column names of a CSV file's first line, a repeated one renamed ``name_duplicated_N``
    as Polars names it."""
    try:
        with _text(path) as handle:
            header = next(csv.reader(handle, delimiter=separator), None)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise SourceError(f"{path}: cannot read the header line: {exc}; fix the file and ingest it again") from exc
    if not header:
        raise SourceError(f"{path}: the file is empty; a CSV batch starts with a header line")
    names: list[str] = []
    repeats: dict[str, int] = {}
    for name in header:
        if name in names:
            repeats[name] = repeats.get(name, -1) + 1
            name = f"{name}_duplicated_{repeats[name]}"
        names.append(name)
    return names


def _text(path: Path) -> io.TextIOWrapper:
    if path.name.lower().endswith(".gz"):
        import gzip

        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig", newline="")
    return path.open(encoding="utf-8-sig", newline="")


def _has_quotes(path: Path) -> bool:
    """Whether the file holds a quote character anywhere (read in chunks; a compressed file is
    not split by Spark anyway, so it is not looked into)."""
    if path.name.lower().endswith(".gz"):
        return True
    with path.open("rb") as handle:
        while chunk := handle.read(SCAN_BYTES):
            if b'"' in chunk:
                return True
    return False
