"""Upserting Spark's rows by key: the merge that keeps the features table one row per key.

Delta's MERGE needs Delta's jars in Spark, which not every engine has (:mod:`.spark_files`). The
same result comes from a replace, which every Spark write path has: the partitions the new rows
fall in are rewritten, holding their stored rows whose key is not among the new rows, and the
new rows. Nothing passes through the driver but the list of partitions.

The stored rows are read at one version, and the commit goes in only while the table is still at
it (:class:`~driftloop.errors.TableChanged` otherwise); the merge is then computed again from the
new version, so a row another writer committed meanwhile is never dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from driftloop.errors import LakeError, TableChanged
from driftloop.lake.spark_files import conform_spark
from driftloop.lake.tables import TableSpec
from driftloop.lake.where import Where
from driftloop.lake.write import COMMIT_ATTEMPTS

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from driftloop.lake.lake import Lake


def merge_spark(
    lake: Lake, spec: TableSpec, frame: DataFrame, *, key: list[str], metadata: Mapping[str, str] | None
) -> int:
    """Upsert ``frame`` into the table by ``key`` (stored rows of a key it holds are replaced, the
    others kept); returns the new version."""
    if not key:
        raise LakeError(f"merge into '{spec.name}' needs at least one key column")
    if not spec.partition_by:
        raise LakeError(f"merge of Spark rows into '{spec.name}' rewrites the partitions they touch; it has none")
    # Computed once (features, a scorer): the new rows are read for their partitions and again to be written.
    rows = conform_spark(spec, frame).localCheckpoint(eager=True)
    if not lake.exists(spec.name):
        return lake.append(spec.name, rows, metadata=metadata)
    spark = rows.sparkSession
    partitions = {p: _values(rows, p) for p in spec.partition_by}
    if not all(partitions.values()):
        return lake.version(spec.name) or 0  # no row: nothing to merge
    touched = Where(one_of=partitions)
    for _ in range(COMMIT_ATTEMPTS):
        version = lake.version(spec.name)
        stored = lake.scan_spark(spec.name, spark, version=version, where=touched)
        kept = stored.join(rows.select(*key), on=key, how="left_anti")
        merged = kept.unionByName(rows.select(*stored.columns))
        try:
            return lake.replace(spec.name, merged, where=touched, metadata=metadata, read_version=version)
        except TableChanged:
            continue  # another writer committed: merge again from its version
    raise LakeError(
        f"could not merge into table '{spec.name}' at {lake.uri(spec.name)}: other writers kept changing it "
        f"({COMMIT_ATTEMPTS} attempts)"
    )


def _values(rows: DataFrame, column: str) -> list[str]:
    """The distinct values of a partition column among ``rows`` (few: months), nulls aside."""
    return sorted(r[0] for r in rows.select(column).distinct().collect() if r[0] is not None)
