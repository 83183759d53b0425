"""Spark's rows into a Delta table through Spark's own Delta writer, where the engine has one:
Databricks, a cluster with delta-spark, or a Spark Connect server with native Delta (Sail).

Chosen by ``[spark] delta = "native"`` (the project's lake carries the choice). A
replace is Delta's ``replaceWhere`` (the rows ``where`` selects swapped in one commit), the
commit's metadata its ``userMetadata``. An append that must be exactly once (a named
``transaction``) takes the delta-rs path instead, whatever the engine: its commit records the
transaction in the table's state, which not every Spark's Delta writer does, and a writer
killed after its commit must be able to ask whether the rows are in.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from driftloop.errors import LakeError
from driftloop.lake.maintenance import USER_METADATA
from driftloop.lake.spark_files import commit_spark, conform_spark
from driftloop.lake.tables import TableSpec
from driftloop.lake.where import Where
from driftloop.lake.write import Write

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from driftloop.lake.lake import Lake


def commit_native(lake: Lake, spec: TableSpec, frame: DataFrame, request: Write) -> int:
    """Append ``frame`` to the table with Spark's Delta writer as ``request`` says, in one
    commit; returns the new version."""
    if request.transaction is not None:
        return commit_spark(lake, spec, frame, request)
    where, metadata = request.where, request.metadata
    table = spec.name
    rows = conform_spark(spec, frame)
    writer = rows.write.format("delta").option("mergeSchema", "false")
    if spec.partition_by:
        writer = writer.partitionBy(*spec.partition_by)
    if metadata:
        writer = writer.option(USER_METADATA, json.dumps(dict(metadata), sort_keys=True))
    if request.read_version is not None and lake.exists(table):
        # Checked before the write, not inside its commit: a writer racing in between is Delta's
        # own conflict check to catch (it refuses a replace whose partitions gained files).
        request.still_current(lake.open(table), table)
    replacing = where is not None and lake.exists(table)
    if replacing:
        assert where is not None
        writer = writer.mode("overwrite").option("replaceWhere", where.sql(dialect="spark"))
    else:
        writer = writer.mode("append")
    try:
        writer.save(lake.uri(table))
    except Exception as exc:  # the engine's own error, whichever Spark it is
        raise LakeError(f"Spark's Delta writer could not write table '{table}' at {lake.uri(table)}: {exc}") from exc
    return lake.open(table).version()


def scan_native(
    lake: Lake, spark: SparkSession, table: str, *, version: int | None = None, where: Where | None = None
) -> DataFrame:
    """The table (at ``version``, default the latest) read by Spark's own Delta reader; with
    ``where``, only its rows (the reader skips files by their statistics)."""
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", version)
    try:
        rows = reader.load(lake.uri(table))
        return rows if where is None else rows.where(where.sql(dialect="spark"))
    except Exception as exc:
        raise LakeError(f"Spark's Delta reader could not read table '{table}' at {lake.uri(table)}: {exc}") from exc
