"""Spark's rows in and out of a Delta table without Delta's jars: Spark writes Parquet, delta-rs
commits it; Spark reads the files a snapshot's log lists.

The Delta connector for Spark (delta-spark) fetches its jars from Maven at start-up, which a
machine that reaches only PyPI cannot do. The Delta part of a write is small, and driftloop
already does it for Polars' files (:mod:`driftloop.lake.files`):

1. the rows are put in the table's shape by Spark expressions (:func:`conform_spark`);
2. Spark writes them as Parquet, partitioned as the table is, into a staging folder of the
   table's own (``_spark-<id>``: Delta and Spark readers skip folders starting with ``_``);
3. each file moves to its partition's folder under a unique name, and its add action is made
   from its Parquet footer (rows, null counts, bounds), so no row is read again;
4. delta-rs commits the add actions, and removes those of the rows replaced, in one
   transaction, retried when another writer wins the race.

A read lists the snapshot's files and partition values from the log and has Spark read those
files with the table's schema. A table using a Delta feature this path cannot honour on read
(deletion vectors, column mapping) is refused, naming the feature.
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import DeltaTable, Schema
from deltalake.transaction import AddAction, RemoveAction

from driftloop.errors import LakeError
from driftloop.lake import files
from driftloop.lake.tables import EVENT_MONTH, TableSpec
from driftloop.lake.where import Where
from driftloop.lake.write import Write, retry, unselect

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import DataType, StructType

    from driftloop.lake.lake import Lake

# Reader features whose meaning a plain read of the Parquet files would miss.
UNREADABLE_FEATURES = {
    "deletionVectors": "rows deleted by deletion vectors would be read as present",
    "columnMapping": "columns are stored under physical names the files do not show",
}
STAGING = "_spark-"
FILE = "__file__"
NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"


def commit_spark(lake: Lake, spec: TableSpec, frame: DataFrame, request: Write) -> int:
    """:func:`driftloop.lake.write.commit` for a Spark frame: append ``frame`` to the table as
    ``request`` says, in one commit; returns the new version."""
    where, metadata, transaction = request.where, request.metadata, request.transaction
    table, partition_by = spec.name, list(spec.partition_by)
    frame = conform_spark(spec, frame)
    schema = Schema.from_arrow(arrow_schema(frame.schema))
    current = lake.open(table) if lake.exists(table) else None
    if current is not None:
        _refuse_unreadable(current, table)
        if not files.same_columns(current.schema(), schema):
            raise LakeError(
                f"rows for table '{table}' from Spark do not have the table's columns (differing: "
                f"{_differences(schema, current.schema())}); a schema change is written by the Polars engine "
                "(ingest the batch once with [project] engine = 'polars')"
            )
        schema = current.schema()
    uri = lake.uri(table)
    actions, rows = write_spark_files(uri, frame, partition_by)

    def run() -> int | None:
        read = current
        if read is not None:
            read.update_incremental()
        elif lake.exists(table):
            read = lake.open(table)
        removes: list[RemoveAction] = []
        kept: list[AddAction] = []
        if read is not None:
            request.still_current(read, table)
        if read is not None and where is not None:
            removes, kept = unselect(lake, spec, read, where)
        files.commit(uri, actions + kept, schema, partition_by, metadata, table=read, removes=removes,
                     rows_added=rows, transaction=transaction)  # fmt: skip
        if read is None:
            return None
        read.update_incremental()
        return read.version()

    return retry(lake, spec, run)


def conform_spark(spec: TableSpec, frame: DataFrame) -> DataFrame:
    """``frame`` in the shape of ``spec``'s table (:func:`~driftloop.lake.tables.conform`, as
    Spark expressions): its event month derived, every fixed column there and of its type."""
    import pyspark.sql.functions as sf

    if spec.month_of is not None and EVENT_MONTH not in frame.columns:
        if spec.month_of not in frame.columns:
            raise LakeError(f"rows for table '{spec.name}' lack its partition column {EVENT_MONTH!r} and the "
                            f"{spec.month_of!r} it comes from")  # fmt: skip
        frame = frame.withColumn(EVENT_MONTH, sf.date_format(sf.col(spec.month_of), "yyyy-MM"))
    if spec.data is None:
        unknown = [c for c in frame.columns if c not in spec.columns]
        if unknown:
            raise LakeError(f"table '{spec.name}' has no column(s) {unknown}; its columns are {list(spec.columns)}")
    wanted = spark_types(spec.columns)
    present = {f.name: f.dataType for f in frame.schema.fields}
    for name, kind in wanted.items():
        if name not in present:
            frame = frame.withColumn(name, sf.lit(None).cast(kind))
        elif present[name] != kind:
            frame = frame.withColumn(name, sf.col(f"`{name}`").cast(kind))
    return frame


def write_spark_files(root: str, frame: DataFrame, partition_by: list[str]) -> tuple[list[AddAction], int]:
    """Have Spark write ``frame`` as Parquet into the table at ``root``; the files' add actions
    and their rows. A write that fails leaves no file behind in the table's own folders."""
    staging = Path(root) / f"{STAGING}{uuid.uuid4()}"
    writer = frame.write.mode("error").option("compression", "snappy")
    try:
        (writer.partitionBy(*partition_by) if partition_by else writer).parquet(str(staging))
        written = sorted(p for p in staging.rglob("*.parquet") if p.is_file())
        actions = [_add_action(Path(root), staging, path) for path in written]
    except Exception as exc:
        raise LakeError(f"Spark could not write the files of the table at {root}: {exc}") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return actions, sum(files.rows_of(a) for a in actions)


def _add_action(root: Path, staging: Path, path: Path) -> AddAction:
    """Move one file Spark wrote to its partition's folder; its add action, from its footer."""
    folder = path.parent.relative_to(staging)
    partition: dict[str, str | None] = {}
    for part in folder.parts:
        name, _, value = part.partition("=")
        partition[unquote(name)] = None if value == NULL_PARTITION else unquote(value)
    target = "/".join(f"{n}={quote(v or NULL_PARTITION)}" for n, v in partition.items())
    relative = f"{target}/part-{uuid.uuid4()}.parquet" if target else f"part-{uuid.uuid4()}.parquet"
    (root / relative).parent.mkdir(parents=True, exist_ok=True)
    stats = footer_stats(path)
    size = path.stat().st_size
    path.replace(root / relative)
    return AddAction(relative, size, partition, int(time.time() * 1000), True, stats)


def footer_stats(path: Path) -> str:
    """Delta file statistics of a Parquet file from its footer: rows, null counts of flat
    columns, and bounds where they are exact (no bounds for floats, which may hold NaN)."""
    import json

    metadata = pq.ParquetFile(path).metadata
    schema = metadata.schema.to_arrow_schema()
    flat = {f.name for f in schema if not pa.types.is_nested(f.type)}
    nulls: dict[str, int] = {}
    minimum: dict[str, Any] = {}
    maximum: dict[str, Any] = {}
    bounded = {f.name for f in schema if f.name in flat and not pa.types.is_floating(f.type)}
    bounded -= {f.name for f in schema if pa.types.is_boolean(f.type)}
    for i in range(metadata.num_columns):
        name = metadata.schema.column(i).path
        if name not in flat:
            continue
        groups = [metadata.row_group(g).column(i).statistics for g in range(metadata.num_row_groups)]
        if any(s is None or not s.has_null_count for s in groups):
            continue
        nulls[name] = sum(s.null_count for s in groups)
        with_bounds = [s for s in groups if s.has_min_max]
        if name in bounded and with_bounds and len(with_bounds) == sum(s.num_values > 0 for s in groups):
            low = files.stat_value(min(s.min for s in with_bounds))
            high = files.stat_value(max(s.max for s in with_bounds))
            if low is not None and high is not None:
                minimum[name], maximum[name] = low, high
    return json.dumps({"numRecords": metadata.num_rows, "minValues": minimum, "maxValues": maximum,
                       "nullCount": nulls})  # fmt: skip


def scan_spark(
    lake: Lake, spark: SparkSession, table: str, *, version: int | None = None, where: Where | None = None
) -> DataFrame:
    """The table (at ``version``, default the latest) as a Spark frame: the files its log lists,
    read with its schema, each row with its file's partition values. With ``where``, only its
    rows, from the files whose statistics say they may hold some."""
    import pyspark.sql.functions as sf

    delta = lake.open(table)
    if version is not None:
        delta.load_as_version(version)
    _refuse_unreadable(delta, table)
    partition_by = delta.metadata().partition_columns
    full = spark_schema_of(pa.schema(delta.schema().to_arrow()))
    data_schema = _without(full, partition_by)
    listed = pl.DataFrame(delta.get_add_actions(flatten=True))
    if where is not None and not listed.is_empty():
        listed = listed.filter(~where.file_coverage(listed, tuple(partition_by))[1])
    root = Path(lake.uri(table))
    if listed.is_empty():
        return spark.createDataFrame([], schema=full)
    paths = [str(root / unquote(p)) for p in listed.get_column("path")]
    rows = spark.read.schema(data_schema).parquet(*paths)
    if partition_by:
        # Each row's partition values are its file's: the file's name (unique in a table) joins them.
        named = rows.withColumn(FILE, sf.regexp_extract(sf.col("_metadata.file_path"), r"([^/]+)$", 1))
        joined = named.join(sf.broadcast(_partition_values(spark, listed, partition_by)), on=FILE, how="left")
        kinds = {f.name: f.dataType for f in full.fields}
        rows = joined.select(
            *(sf.col(f"`{n}`").cast(kinds[n]).alias(n) if n in partition_by else sf.col(f"`{n}`") for n in full.names)
        )
    return rows if where is None else rows.where(where.sql(dialect="spark"))


def _partition_values(spark: SparkSession, listed: pl.DataFrame, partition_by: list[str]) -> DataFrame:
    """Each listed file's name and partition values (as text), as a small Spark frame."""
    values = listed.select(
        pl.col("path").map_elements(lambda p: Path(unquote(p)).name, return_dtype=pl.String).alias(FILE),
        *(pl.col(f"partition.{n}").cast(pl.String).alias(n) for n in partition_by),
    )
    schema = ", ".join([f"{FILE} string", *(f"`{n}` string" for n in partition_by)])
    return spark.createDataFrame(values.rows(), schema=schema)


def _refuse_unreadable(delta: DeltaTable, table: str) -> None:
    features = set(delta.protocol().reader_features or [])
    found = sorted(features & UNREADABLE_FEATURES.keys())
    if found:
        why = "; ".join(f"{f}: {UNREADABLE_FEATURES[f]}" for f in found)
        raise LakeError(
            f"table '{table}' uses the Delta feature(s) {found}, which Spark without the Delta jars cannot read "
            f"faithfully ({why}); use a Spark with delta-spark, or the Polars engine"
        )


def spark_types(columns: Mapping[str, pl.DataType]) -> dict[str, DataType]:
    """Spark's type for each Polars type (a naive datetime is a ``TimestampNTZType``)."""
    empty = pl.DataFrame(schema=dict(columns)).to_arrow(compat_level=pl.CompatLevel.oldest())
    return {f.name: f.dataType for f in spark_schema_of(empty.schema).fields}


def spark_schema_of(schema: pa.Schema) -> StructType:
    """The Spark schema of an Arrow schema (large types read as their ordinary kinds)."""
    from pyspark.sql.pandas.types import from_arrow_schema

    return from_arrow_schema(pa.schema([f.with_type(ordinary_type(f.type)) for f in schema]), prefer_timestamp_ntz=True)


def arrow_schema(schema: StructType) -> pa.Schema:
    """The Arrow schema of a Spark schema (an instant in UTC)."""
    from pyspark.sql.pandas.types import to_arrow_schema

    return to_arrow_schema(schema, timezone="UTC")


def ordinary_type(kind: pa.DataType) -> pa.DataType:
    """``kind`` with large strings, binaries and lists (which Spark does not read) as their ordinary kinds."""
    if pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        return pa.string()
    if pa.types.is_large_binary(kind) or pa.types.is_binary_view(kind):
        return pa.binary()
    if pa.types.is_large_list(kind) or pa.types.is_list(kind):
        return pa.list_(kind.value_field.with_type(ordinary_type(kind.value_type)))
    if pa.types.is_struct(kind):
        return pa.struct([field.with_type(ordinary_type(field.type)) for field in kind])
    return kind


def _without(schema: StructType, names: list[str]) -> StructType:
    from pyspark.sql.types import StructType

    return StructType([f for f in schema.fields if f.name not in names])


def _differences(mine: Schema, theirs: Schema) -> list[str]:
    """The columns two schemas disagree on, each with its type in both (``-`` where missing)."""
    left, right = ({f.name: str(getattr(f.type, "type", f.type)) for f in s.fields} for s in (mine, theirs))
    return [f"{n}: {left.get(n, '-')} vs {right.get(n, '-')}" for n in sorted(left.keys() | right.keys())
            if left.get(n) != right.get(n)]  # fmt: skip
