"""Frames between Polars and Spark, by Arrow, with driftloop's conventions kept.

A naive datetime stays naive: it is a ``TimestampNTZType`` in Spark, so a wall-clock time of a
batch is read in the contract's zone by either engine, and the stored instants (naive UTC) are
what Delta calls ``timestamp_ntz``. A Spark ``TimestampType`` is an instant and comes to Polars
as one, in UTC (the session's zone: :mod:`~driftloop.engine.spark.session`). Arrow's large types,
which Polars writes and Spark does not read, become their ordinary kinds. Only results that are small by
nature (a sample, counts, a profile) come to the driver as Polars; rows stay in Spark.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl
import pyarrow as pa

from driftloop.lake.spark_files import arrow_schema, ordinary_type, spark_schema_of

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType

UTC = "UTC"


def to_spark(spark: SparkSession, frame: pl.DataFrame) -> DataFrame:
    """``frame`` as a Spark frame of the same types."""
    schema = spark_schema(frame)
    if frame.height == 0:  # PySpark cannot read the columns of an empty Arrow table of lists
        return spark.createDataFrame([], schema=schema)
    table = ordinary_types(frame.to_arrow(compat_level=pl.CompatLevel.oldest()))
    return spark.createDataFrame(table, schema=schema)


def to_polars(frame: DataFrame) -> pl.DataFrame:
    """A (small) Spark frame on the driver as Polars: a ``TimestampType`` as a UTC datetime, a
    ``TimestampNTZType`` as a naive one."""
    rows = pl.from_arrow(frame.toArrow())
    assert isinstance(rows, pl.DataFrame)
    return rows


def naive_instants(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with its UTC datetimes made naive (driftloop's form of an instant)."""
    aware = [n for n, t in frame.schema.items() if isinstance(t, pl.Datetime) and t.time_zone is not None]
    return frame.with_columns(pl.col(aware).dt.convert_time_zone(UTC).dt.replace_time_zone(None)) if aware else frame


def arrow_for(frame: pl.DataFrame, schema: StructType) -> pa.Table:
    """``frame`` as the Arrow table Spark expects for ``schema`` (what a function given to
    ``mapInArrow`` must yield: the declared types exactly, instants in UTC)."""
    table = ordinary_types(frame.select(schema.names).to_arrow(compat_level=pl.CompatLevel.oldest()))
    return table.cast(arrow_schema(schema))


def spark_schema(frame: pl.DataFrame) -> StructType:
    """The Spark schema of a Polars frame's columns."""
    return spark_schema_of(frame.head(0).to_arrow(compat_level=pl.CompatLevel.oldest()).schema)


def ordinary_types(table: pa.Table) -> pa.Table:
    """``table`` with large strings, binaries and lists as their ordinary kinds."""
    schema = pa.schema([field.with_type(ordinary_type(field.type)) for field in table.schema])
    return table if schema == table.schema else table.cast(schema)
