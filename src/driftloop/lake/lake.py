"""The lake of one project: its Delta tables under one root, and everything done to them.

:class:`Lake` is what the stages hold; each of its methods is one operation of the modules
beside it (``write``, ``read``, ``maintenance``; ``spark_files`` for Spark's rows) on a table
described in ``tables``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import polars as pl
from deltalake import DeltaTable
from deltalake.exceptions import DeltaError, TableNotFoundError

from driftloop.errors import LakeError, TableNotFound
from driftloop.lake import maintenance, read, write
from driftloop.lake.maintenance import Compaction, TableVersion
from driftloop.lake.tables import TableSpec, spec_of
from driftloop.lake.where import Where

SparkDelta = Literal["delta-rs", "native"]
DELTA_WRITERS: tuple[SparkDelta, ...] = ("delta-rs", "native")

if TYPE_CHECKING:
    from pyspark.sql import DataFrame as SparkFrame
    from pyspark.sql import SparkSession


class Lake:
    """The Delta tables of one project, under ``root`` (a local folder). Spark's rows go to
    Delta by ``spark_delta``: ``delta-rs`` (Spark writes Parquet, delta-rs commits it; no Delta
    jars needed) or ``native`` (Spark's own Delta reader and writer: Databricks, delta-spark, Sail)."""

    def __init__(self, root: str | Path, *, spark_delta: SparkDelta = "delta-rs") -> None:
        if spark_delta not in DELTA_WRITERS:
            raise LakeError(f"no Delta writer {spark_delta!r} for Spark's rows; choose one of {list(DELTA_WRITERS)}")
        self.root = Path(root)
        self.spark_delta = spark_delta

    def __repr__(self) -> str:
        return f"Lake({str(self.root)!r}, spark_delta={self.spark_delta!r})"

    def spec(self, table: str) -> TableSpec:
        """What ``table`` is (a LakeError for a name that is not a lake table)."""
        return spec_of(table)

    def uri(self, table: str) -> str:
        """Location of ``table``; raises LakeError for a name that is not a lake table."""
        return str(self.root / spec_of(table).name)

    def exists(self, table: str) -> bool:
        return DeltaTable.is_deltatable(self.uri(table))

    def version(self, table: str) -> int | None:
        """Current version of ``table``, or None before its first write."""
        return self.open(table).version() if self.exists(table) else None

    def open(self, table: str) -> DeltaTable:
        """The Delta table itself, at its latest version."""
        try:
            return DeltaTable(self.uri(table))
        except TableNotFoundError as exc:
            raise TableNotFound(f"table '{table}' has not been written yet ({self.uri(table)})") from exc

    # -- writing (driftloop.lake.write) -------------------------------------------------------

    def append(
        self,
        table: str,
        frame: pl.DataFrame | SparkFrame,
        *,
        metadata: Mapping[str, str] | None = None,
        transaction: str | None = None,
    ) -> int:
        """Append ``frame`` (Polars, or Spark: :mod:`driftloop.lake.spark_files`) to ``table``
        (created on first write); returns the new version.

        A ``transaction`` name is recorded with the commit, and :meth:`committed` then tells
        whether that append is in the table: a writer killed after its commit and before its
        own bookkeeping can find out on restart instead of appending the rows twice.
        """
        return _commit(self, spec_of(table), frame, write.Write(metadata=metadata, transaction=transaction))

    def committed(self, table: str, transaction: str) -> bool:
        """Whether an append recorded as ``transaction`` is in ``table``."""
        if not self.exists(table):
            return False
        try:
            return self.open(table).transaction_version(transaction) is not None
        except (DeltaError, OSError) as exc:
            raise LakeError(f"cannot read the transactions of table '{table}' at {self.uri(table)}: {exc}") from exc

    def replace(
        self,
        table: str,
        frame: pl.DataFrame | SparkFrame,
        *,
        where: Where,
        metadata: Mapping[str, str] | None = None,
        read_version: int | None = None,
    ) -> int:
        """Atomically replace the rows ``where`` selects with ``frame`` (Polars or Spark); returns the new version.

        Every row of ``frame`` must be selected by ``where``. Rerunning the same replacement gives
        the same table, which is what makes reruns of a batch or a window idempotent. With
        ``read_version`` (the version ``frame`` was computed from), the replace goes in only while
        the table is still at that version, else TableChanged.
        """
        request = write.Write(where=where, metadata=metadata, read_version=read_version)
        return _commit(self, spec_of(table), frame, request)

    def merge(
        self,
        table: str,
        frame: pl.DataFrame | SparkFrame,
        *,
        key: list[str],
        metadata: Mapping[str, str] | None = None,
    ) -> int:
        """Upsert ``frame`` (Polars or Spark: :mod:`driftloop.lake.spark_merge`) into ``table`` by
        ``key``: matching rows are replaced, new rows added."""
        if isinstance(frame, pl.DataFrame):
            return write.merge(self, spec_of(table), frame, key=key, metadata=metadata)
        from driftloop.lake.spark_merge import merge_spark

        return merge_spark(self, spec_of(table), frame, key=key, metadata=metadata)

    def delete(self, table: str, *, where: Where) -> int:
        """Delete the rows ``where`` selects; returns the new version."""
        return write.delete(self, spec_of(table), where)

    # -- reading (driftloop.lake.read) --------------------------------------------------------

    def scan(self, table: str, *, version: int | None = None) -> pl.LazyFrame:
        """Lazy scan of ``table`` (at ``version``, or the latest)."""
        return read.scan(self, spec_of(table), version=version)

    def read(
        self,
        table: str,
        *,
        version: int | None = None,
        since: datetime | date | None = None,
        until: datetime | date | None = None,
        time_column: str | None = None,
        columns: list[str] | None = None,
        keep: pl.Expr | None = None,
    ) -> pl.DataFrame:
        """Read ``table``, optionally at a ``version``, within ``since <= time_column < until``,
        and only the rows ``keep`` (a Polars predicate) holds for."""
        return read.read(
            self, spec_of(table), version=version, since=since, until=until, time_column=time_column,
            columns=columns, keep=keep,
        )  # fmt: skip

    def count(
        self,
        table: str,
        *,
        version: int | None = None,
        since: datetime | date | None = None,
        until: datetime | date | None = None,
        time_column: str | None = None,
    ) -> int:
        """How many rows :meth:`read` would read with the same arguments (one column is scanned)."""
        return read.count(self, spec_of(table), version=version, since=since, until=until, time_column=time_column)

    def scan_spark(
        self, table: str, spark: SparkSession, *, version: int | None = None, where: Where | None = None
    ) -> SparkFrame:
        """``table`` (at ``version``, or the latest; only the rows ``where`` selects when given) as
        a Spark frame, read as ``spark_delta`` says: the files its log lists
        (:mod:`driftloop.lake.spark_files`), or Spark's Delta reader."""
        from driftloop.lake.spark_files import scan_spark
        from driftloop.lake.spark_native import scan_native

        if not self.exists(table):
            raise TableNotFound(f"table '{table}' has not been written yet ({self.uri(table)})")
        read = scan_native if self.spark_delta == "native" else scan_spark
        return read(self, spark, spec_of(table).name, version=version, where=where)

    def any_rows(self, table: str, where: Where) -> bool:
        """Whether any row of ``table`` is selected by ``where``."""
        return read.any_rows(self, spec_of(table), where)

    # -- maintenance (driftloop.lake.maintenance) ---------------------------------------------

    def compact(self, table: str, *, min_files: int = 2) -> Compaction | None:
        """Merge the small files of ``table`` once a partition holds ``min_files`` (see maintenance)."""
        return maintenance.compact(self, spec_of(table), min_files=min_files)

    def history(self, table: str, *, limit: int | None = None, counts: bool = True) -> list[TableVersion]:
        """The table's commits, newest first, with the row count after each (-1 with ``counts=False``)."""
        return maintenance.history(self, spec_of(table), limit=limit, counts=counts)

    def row_count(self, table: str) -> int:
        """Rows in the latest version of ``table`` (0 before its first write)."""
        return maintenance.row_count(self, spec_of(table))


def _commit(lake: Lake, spec: TableSpec, frame: pl.DataFrame | SparkFrame, request: write.Write) -> int:
    """The write path for ``frame``'s kind: Polars writes the files itself and delta-rs commits
    them; Spark's rows are written by Spark, committed by delta-rs or by Spark's own Delta
    writer, as the lake's ``spark_delta`` says (:mod:`driftloop.lake.spark_native`)."""
    if isinstance(frame, pl.DataFrame):
        return write.commit(lake, spec, frame, request)
    from driftloop.lake.spark_files import commit_spark
    from driftloop.lake.spark_native import commit_native

    return (commit_native if lake.spark_delta == "native" else commit_spark)(lake, spec, frame, request)
