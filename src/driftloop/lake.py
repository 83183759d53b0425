"""The lake: every Delta table driftloop keeps, under one root.

One class, :class:`Lake`, owns reading and writing them. Writes are atomic Delta commits;
``replace`` swaps exactly the rows a predicate selects (so a rerun replaces instead of
duplicating), ``merge`` upserts by key. Delta's optimistic concurrency makes two writers safe:
a commit that loses a race is retried, and since each write is whole or nothing, retrying
never duplicates.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import polars as pl
from deltalake import CommitProperties, DeltaTable, QueryBuilder, write_deltalake
from deltalake.exceptions import CommitFailedError, DeltaError, TableNotFoundError

from driftloop import delta_files
from driftloop.errors import LakeError, TableNotFound

# A write that loses a commit race is retried this many times (with growing pauses).
COMMIT_ATTEMPTS = 8
# Bookkeeping columns the lake adds to data rows (the underscore keeps them apart from user columns).
BATCH_ID = "_batch_id"
SOURCE = "_source"
INGESTED_AT = "_ingested_at"
EVENT_DATE = "_event_date"
INGEST_DATE = "_ingest_date"
# Data tables are partitioned by event month, derived here from _event_date. Daily partitions
# were measured at 1.7x the write time and 2x the memory of monthly ones (1M rows over two
# years), and a day of ten-minute readings is a 20 kB file: too small to be worth a partition.
EVENT_MONTH = "_event_month"


@dataclass(frozen=True)
class TableSpec:
    """A table of the lake: what one row is, and how it is partitioned."""

    name: str
    row: str
    partition_by: tuple[str, ...] = ()


TABLES: dict[str, TableSpec] = {
    spec.name: spec
    for spec in (
        TableSpec("raw", "accepted input row, with its ingest batch id and time", (EVENT_MONTH,)),
        TableSpec("quarantine", "rejected row as text, with the rules and columns it broke", (INGEST_DATE,)),
        TableSpec("batches", "ingest batch: source, digest, counts per rule, outcome"),
        TableSpec("features", "feature row, keyed by entity id and event time", (EVENT_MONTH,)),
        TableSpec("labels", "ground-truth value arriving after the fact", (EVENT_MONTH,)),
        TableSpec("predictions", "prediction with its model version and job", (EVENT_MONTH,)),
        TableSpec("monitoring", "metric of one monitoring window"),
        TableSpec("events", "lifecycle decision: promotion, rejection, rollback, retrain, alert"),
    )
}


@dataclass(frozen=True)
class TableVersion:
    """One commit of a table: what it did and how many rows the table held after it."""

    version: int
    timestamp: datetime
    operation: str
    rows_added: int | None
    rows: int
    metadata: dict[str, str] = field(default_factory=dict)


class Lake:
    """The Delta tables of one project, under ``root`` (a local folder)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"Lake({str(self.root)!r})"

    def uri(self, table: str) -> str:
        """Location of ``table``; raises LakeError for a name that is not a lake table."""
        if table not in TABLES:
            raise LakeError(f"no lake table named {table!r}; the tables are {sorted(TABLES)}")
        return str(self.root / table)

    def exists(self, table: str) -> bool:
        return DeltaTable.is_deltatable(self.uri(table))

    def version(self, table: str) -> int | None:
        """Current version of ``table``, or None before its first write."""
        return self._table(table).version() if self.exists(table) else None

    # -- writing -----------------------------------------------------------------------------

    def append(self, table: str, frame: pl.DataFrame, *, metadata: Mapping[str, str] | None = None) -> int:
        """Append ``frame`` to ``table`` (created on first write); returns the new version."""
        return self._commit(table, frame, predicate=None, metadata=metadata)

    def replace(self, table: str, frame: pl.DataFrame, *, where: str, metadata: Mapping[str, str] | None = None) -> int:
        """Atomically replace the rows matching the SQL predicate ``where`` with ``frame``.

        Predicates are in the SQL of Delta's engine (DataFusion); timestamps as ``sql_timestamp``.

        Every row of ``frame`` must match ``where``. Rerunning the same replacement gives the
        same table, which is what makes reruns of a batch or a window idempotent.
        """
        if not self.exists(table):
            return self.append(table, frame, metadata=metadata)
        return self._commit(table, frame, predicate=where, metadata=metadata)

    def merge(
        self,
        table: str,
        frame: pl.DataFrame,
        *,
        key: list[str],
        metadata: Mapping[str, str] | None = None,
    ) -> int:
        """Upsert ``frame`` into ``table`` by ``key``: matching rows are replaced, new rows added.

        The key must determine the partition (it holds the event time), so only the
        partitions the new rows fall in are read.
        """
        if not key:
            raise LakeError(f"merge into {table!r} needs at least one key column")
        frame = self._partitioned(table, frame)
        if not self.exists(table):
            return self.append(table, frame, metadata=metadata)
        conditions = [f't."{k}" = s."{k}"' for k in key]
        for column in TABLES[table].partition_by:
            values = ", ".join(f"'{v}'" for v in frame.get_column(column).unique().sort().to_list())
            conditions.append(f't."{column}" IN ({values})')
        on = " AND ".join(conditions)

        def run() -> None:
            (
                self._table(table)
                .merge(
                    frame.to_arrow(),
                    predicate=on,
                    source_alias="s",
                    target_alias="t",
                    commit_properties=_commit_properties(metadata),
                )
                .when_matched_update_all()
                .when_not_matched_insert_all()
                .execute()
            )

        return self._retry(table, run)

    def delete(self, table: str, *, where: str) -> int:
        """Delete the rows matching ``where``; returns the new version."""

        def run() -> None:
            self._table(table).delete(where)

        return self._retry(table, run)

    def _commit(
        self,
        table: str,
        frame: pl.DataFrame,
        *,
        predicate: str | None,
        metadata: Mapping[str, str] | None,
    ) -> int:
        spec = TABLES[table]
        frame = self._partitioned(table, frame)
        uri = self.uri(table)
        schema = delta_files.delta_schema(frame)
        # The common case, new rows for an unchanged schema, is written by Polars (delta_files
        # says why); replacing rows or changing the schema goes through write_deltalake.
        if delta_files.matches_table(uri, schema) and (predicate is None or not self.any_rows(table, predicate)):
            try:
                actions = delta_files.write_files(uri, frame, list(spec.partition_by))
            except (OSError, pl.exceptions.PolarsError) as exc:
                raise LakeError(f"could not write the files of table {table!r} at {uri}: {exc}") from exc
            return self._retry(
                table, lambda: delta_files.commit(uri, actions, schema, list(spec.partition_by), metadata)
            )
        data = frame.to_arrow()
        options: dict[str, Any] = {
            "partition_by": list(spec.partition_by) or None,
            "commit_properties": _commit_properties(metadata),
            "schema_mode": "merge",  # a column added to the contract later joins the table
        }

        def run() -> None:
            if predicate is None:
                write_deltalake(self.uri(table), data, mode="append", **options)
            else:
                write_deltalake(self.uri(table), data, mode="overwrite", predicate=predicate, **options)

        return self._retry(table, run)

    def any_rows(self, table: str, where: str) -> bool:
        """Whether any row of ``table`` matches ``where``, read by the same SQL engine (DataFusion,
        inside delta-rs) that applies predicates on write, so both agree on what it selects."""
        if not self.exists(table):
            return False
        query = QueryBuilder().register("t", self._table(table))
        try:
            found = query.execute(f"SELECT 1 AS hit FROM t WHERE {where} LIMIT 1").read_all()
        except DeltaError as exc:
            raise LakeError(f"cannot evaluate {where!r} on table {table!r}: {exc}") from exc
        return int(found.num_rows) > 0

    def _partitioned(self, table: str, frame: pl.DataFrame) -> pl.DataFrame:
        """``frame`` with the table's partition columns, deriving the event month from the event date."""
        spec = TABLES[table]
        if EVENT_MONTH in spec.partition_by and EVENT_MONTH not in frame.columns and EVENT_DATE in frame.columns:
            frame = frame.with_columns(pl.col(EVENT_DATE).dt.strftime("%Y-%m").alias(EVENT_MONTH))
        missing = [c for c in spec.partition_by if c not in frame.columns]
        if missing:
            raise LakeError(f"rows for table {table!r} lack its partition column(s) {missing}")
        return frame

    def _retry(self, table: str, run: Any) -> int:
        """Run one commit, retrying when another writer won the race for the same version."""
        for attempt in range(COMMIT_ATTEMPTS):
            try:
                run()
                return self._table(table).version()
            except CommitFailedError as exc:
                if attempt == COMMIT_ATTEMPTS - 1:
                    raise LakeError(
                        f"could not commit to table {table!r} at {self.uri(table)} after "
                        f"{COMMIT_ATTEMPTS} attempts; other writers kept winning: {exc}"
                    ) from exc
                time.sleep(0.05 * 2**attempt)
            except (DeltaError, OSError, ValueError) as exc:
                if _lost_creation_race(exc) and attempt < COMMIT_ATTEMPTS - 1:
                    time.sleep(0.05 * 2**attempt)
                    continue
                raise LakeError(f"could not write table {table!r} at {self.uri(table)}: {exc}") from exc
        raise AssertionError("unreachable")  # pragma: no cover

    # -- reading -----------------------------------------------------------------------------

    def scan(self, table: str, *, version: int | None = None) -> pl.LazyFrame:
        """Lazy scan of ``table`` (at ``version``, or the latest)."""
        if not self.exists(table):
            raise TableNotFound(
                f"table {table!r} has not been written yet (looked in {self.uri(table)}); "
                "run the step that writes it first (e.g. `driftloop ingest` for raw)"
            )
        try:
            return pl.scan_delta(self.uri(table), version=version)
        except Exception as exc:  # delta-rs and polars raise several types for a bad version
            raise LakeError(f"cannot read table {table!r} at version {version}: {exc}") from exc

    def read(
        self,
        table: str,
        *,
        version: int | None = None,
        since: datetime | date | None = None,
        until: datetime | date | None = None,
        time_column: str | None = None,
        columns: list[str] | None = None,
    ) -> pl.DataFrame:
        """Read ``table``, optionally at a ``version`` and within ``since <= time < until``.

        ``time_column`` is the column the window applies to; the event-date partition is
        pruned too when the table has one, so a narrow window reads only its own files.
        """
        frame = self.scan(table, version=version)
        if since is not None or until is not None:
            if time_column is None:
                raise LakeError(f"reading {table!r} by time range needs the time column to filter on")
            frame = frame.filter(_window(frame, time_column, since, until))
        if columns is not None:
            frame = frame.select(columns)
        try:
            return frame.collect()
        except Exception as exc:
            raise LakeError(f"cannot read table {table!r}: {exc}") from exc

    def history(self, table: str, *, limit: int | None = None, counts: bool = True) -> list[TableVersion]:
        """The table's commits, newest first, with the row count after each (-1 with ``counts=False``)."""
        if not self.exists(table):
            raise TableNotFound(f"table {table!r} has not been written yet (looked in {self.uri(table)})")
        versions = []
        for entry in self._table(table).history(limit):
            number = int(entry["version"])
            metrics = entry.get("operationMetrics") or {}
            known = {"timestamp", "operation", "operationParameters", "engineInfo", "clientVersion"}
            extra = {k: str(v) for k, v in entry.items() if k not in known | {"operationMetrics", "version"}}
            versions.append(
                TableVersion(
                    version=number,
                    timestamp=datetime.fromtimestamp(entry["timestamp"] / 1000, tz=UTC),
                    operation=str(entry.get("operation", "")),
                    rows_added=_rows_added(metrics, extra),
                    rows=self._row_count(table, number) if counts else -1,
                    metadata=extra,
                )
            )
        return versions

    def row_count(self, table: str) -> int:
        """Rows in the latest version of ``table`` (0 before its first write)."""
        return self._row_count(table, None) if self.exists(table) else 0

    def _row_count(self, table: str, version: int | None) -> int:
        # The log records each file's row count, so this reads no data file.
        actions = pl.DataFrame(DeltaTable(self.uri(table), version=version).get_add_actions(flatten=True))
        return int(actions.get_column("num_records").sum()) if actions.height else 0

    def _table(self, table: str) -> DeltaTable:
        try:
            return DeltaTable(self.uri(table))
        except TableNotFoundError as exc:
            raise TableNotFound(f"table {table!r} has not been written yet ({self.uri(table)})") from exc


def _rows_added(metrics: Mapping[str, Any], metadata: Mapping[str, str]) -> int | None:
    """Rows a commit added: delta-rs's own metric, or what driftloop's fast append recorded."""
    for value in (
        metrics.get("num_added_rows"),
        metrics.get("num_inserted_rows"),
        metadata.get(delta_files.ROWS_ADDED),
    ):
        if value is not None:
            return int(value)
    return None


def sql_timestamp(value: datetime) -> str:
    """A naive timestamp as a literal Delta's SQL engine compares with a timestamp column."""
    return f"'{value:%Y-%m-%dT%H:%M:%S.%f}'"


def _commit_properties(metadata: Mapping[str, str] | None) -> CommitProperties | None:
    return CommitProperties(custom_metadata=dict(metadata)) if metadata else None


def _lost_creation_race(exc: Exception) -> bool:
    # Two first writes race to create version 0; the loser sees the table already there.
    text = str(exc).lower()
    return "already exists" in text or "version 0" in text


def _window(frame: pl.LazyFrame, column: str, since: datetime | date | None, until: datetime | date | None) -> pl.Expr:
    names = frame.collect_schema().names()
    conditions = []
    if since is not None:
        conditions.append(pl.col(column) >= since)
        if EVENT_MONTH in names:  # lets the scan skip whole partitions
            conditions.append(pl.col(EVENT_MONTH) >= f"{since:%Y-%m}")
    if until is not None:
        conditions.append(pl.col(column) < until)
        if EVENT_MONTH in names:
            conditions.append(pl.col(EVENT_MONTH) <= f"{until:%Y-%m}")
    return pl.all_horizontal(conditions)
