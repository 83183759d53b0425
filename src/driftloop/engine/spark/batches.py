"""A Polars function applied on Spark, batch by batch (``mapInArrow``): how the Spark engine
runs the code a served request runs (features, scoring) where the rows are, so rows never
gather on the driver. The function, and what it holds (a model package), is serialised into
the job once and unpacked once per task, not per row."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

import polars as pl

from driftloop.engine.base import BatchFunction
from driftloop.engine.spark.frames import arrow_for, naive_instants, spark_schema, to_polars

if TYPE_CHECKING:
    from collections.abc import Iterator

    import pyarrow as pa
    from pyspark.sql import DataFrame


def map_on_spark(frame: DataFrame, function: BatchFunction, *, probe_rows: int = 1) -> DataFrame:
    """``function`` applied to each Arrow batch of each partition of ``frame``.

    It is first applied on the driver to the first ``probe_rows`` rows (none: free to read, where
    the plan before holds a window or a join): that gives the result's types, and a function
    that cannot run fails here, before a job starts.
    """
    probe = naive_instants(to_polars(frame.limit(probe_rows)))
    schema = spark_schema(function(probe))
    return frame.mapInArrow(partial(_batches, function=function, schema=schema), schema)


def _batches(batches: Iterator[pa.RecordBatch], function: BatchFunction, schema: Any) -> Iterator[pa.RecordBatch]:
    for batch in batches:
        rows = pl.from_arrow(batch)
        assert isinstance(rows, pl.DataFrame)
        yield from arrow_for(function(naive_instants(rows)), schema).to_batches()
