"""Batch scoring on Spark: the package's scoring function applied to each Arrow batch of each
partition (``mapInArrow``), so rows never gather on the driver. The function and the package
it holds are serialised into the job once and unpacked once per task, not per row."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

import polars as pl

from driftloop.engine.base import Scorer, beside
from driftloop.engine.spark.frames import arrow_for, naive_instants, spark_schema, to_polars

if TYPE_CHECKING:
    from collections.abc import Iterator

    import pyarrow as pa
    from pyspark.sql import DataFrame


def score_on_spark(frame: DataFrame, scorer: Scorer) -> DataFrame:
    """``frame`` with ``scorer``'s outputs beside each row. The first row is scored on the
    driver first: it gives the outputs' types, and a scorer that cannot run fails here, before
    a job is started."""
    probe = naive_instants(to_polars(frame.limit(1)))
    schema = spark_schema(beside(probe, scorer(probe)))
    return frame.mapInArrow(partial(_score_batches, scorer=scorer, schema=schema), schema)


def _score_batches(batches: Iterator[pa.RecordBatch], scorer: Scorer, schema: Any) -> Iterator[pa.RecordBatch]:
    for batch in batches:
        rows = pl.from_arrow(batch)
        assert isinstance(rows, pl.DataFrame)
        rows = naive_instants(rows)
        yield from arrow_for(beside(rows, scorer(rows)), schema).to_batches()
