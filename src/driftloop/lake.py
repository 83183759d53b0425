"""The lake: every Delta table driftloop keeps, under one root.

One class, :class:`Lake`, owns reading and writing them. Writes are atomic Delta commits;
``replace`` swaps exactly the rows a :class:`Where` selects (so a rerun replaces instead of
duplicating): whole files by their statistics in the log, and the files it cuts through
rewritten without the selected rows, in one commit. ``merge`` upserts by key. Delta's
optimistic concurrency makes two writers safe: a commit that loses a race is retried, and
since each write is whole or nothing, retrying never duplicates.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import CommitFailedError, DeltaError, TableNotFoundError
from deltalake.transaction import AddAction, RemoveAction

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


@dataclass(frozen=True)
class Compaction:
    """What compacting one table did: its new version and the files it replaced."""

    table: str
    version: int
    files_removed: int
    files_added: int


@dataclass(frozen=True)
class Where:
    """A selection of rows: columns equal to a value (``equal``), equal to one of several values
    (``one_of``), and within half-open ``[low, high)`` ranges (``between``), all at once.

    Structured rather than SQL text so the lake can tell from each file's statistics in the
    Delta log whether all, none or some of its rows are selected: a replace then drops whole
    files unread and rewrites only the files it cuts through.
    """

    equal: Mapping[str, Any] = field(default_factory=dict)
    one_of: Mapping[str, Collection[Any]] = field(default_factory=dict)
    between: Mapping[str, tuple[Any, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not (self.equal or self.one_of or self.between):
            raise LakeError("a row selection needs at least one condition (equal=, one_of= or between=)")
        for column, values in self._values().items():
            if not values or any(v is None for v in values):
                raise LakeError(f"selection on {column!r} needs values that are not None; no row equals a missing one")
        for column, (low, high) in self.between.items():
            if low is None or high is None:
                raise LakeError(f"range on {column!r} needs both ends; got [{low}, {high})")

    def _values(self) -> dict[str, list[Any]]:
        return {**{c: [v] for c, v in self.equal.items()}, **{c: sorted(set(v)) for c, v in self.one_of.items()}}

    def expr(self) -> pl.Expr:
        """The selection as a Polars predicate (a null never matches)."""
        conditions = [pl.col(c).is_in(v) for c, v in self._values().items()]
        conditions += [(pl.col(c) >= pl.lit(lo)) & (pl.col(c) < pl.lit(hi)) for c, (lo, hi) in self.between.items()]
        return pl.all_horizontal(conditions).fill_null(False)

    def sql(self) -> str:
        """The selection in the SQL of Delta's engine (DataFusion)."""
        conditions = [
            f'"{c}" = {_sql_literal(v[0])}' if len(v) == 1 else f'"{c}" IN ({", ".join(map(_sql_literal, v))})'
            for c, v in self._values().items()
        ]
        conditions += [
            f'"{c}" >= {_sql_literal(lo)} AND "{c}" < {_sql_literal(hi)}' for c, (lo, hi) in self.between.items()
        ]
        return " AND ".join(conditions)

    def __str__(self) -> str:
        return self.sql()

    def file_coverage(self, files: pl.DataFrame, partition_by: tuple[str, ...]) -> tuple[pl.Series, pl.Series]:
        """For each file of ``get_add_actions(flatten=True)``: whether every row is selected, and
        whether none is, decided from its statistics (a file without them is neither)."""
        verdicts = [_values_coverage(files, c, v, partition_by) for c, v in self._values().items()]
        verdicts += [_range_coverage(files, c, lo, hi, partition_by) for c, (lo, hi) in self.between.items()]
        every = pl.all_horizontal(e for e, _ in verdicts).fill_null(False)
        none = pl.any_horizontal(n for _, n in verdicts).fill_null(False)
        verdict = files.select((every & ~none).alias("every"), none.alias("none"))
        return verdict.get_column("every"), verdict.get_column("none")


def _values_coverage(
    files: pl.DataFrame, column: str, values: list[Any], partition_by: tuple[str, ...]
) -> tuple[pl.Expr, pl.Expr]:
    """(every row of each file has one of ``values`` in ``column``, no row has); null where the log cannot tell."""
    if column in partition_by:
        inside = pl.col(f"partition.{column}").is_in(values)
        return inside, ~inside
    low, high, nulls = _stats(files, column)
    if low is None or high is None or nulls is None:
        return pl.lit(None, pl.Boolean), pl.lit(None, pl.Boolean)
    every = (low == high) & low.is_in(values) & (nulls == 0)
    none = (high < pl.lit(values[0])) | (low > pl.lit(values[-1]))  # values are sorted
    return every, none


def _range_coverage(
    files: pl.DataFrame, column: str, low_value: Any, high_value: Any, partition_by: tuple[str, ...]
) -> tuple[pl.Expr, pl.Expr]:
    """(every row of each file has ``low_value <= column < high_value``, no row has)."""
    if column in partition_by:
        value = pl.col(f"partition.{column}")
        inside = (value >= pl.lit(low_value)) & (value < pl.lit(high_value))
        return inside, ~inside
    low, high, nulls = _stats(files, column)
    if low is None or high is None or nulls is None:
        return pl.lit(None, pl.Boolean), pl.lit(None, pl.Boolean)
    every = (low >= pl.lit(low_value)) & (high < pl.lit(high_value)) & (nulls == 0)
    none = (high < pl.lit(low_value)) | (low >= pl.lit(high_value))
    return every, none


def _stats(files: pl.DataFrame, column: str) -> tuple[pl.Expr | None, pl.Expr | None, pl.Expr | None]:
    """The log's minimum, maximum and null count of ``column`` per file (None when not recorded)."""
    names = set(files.columns)
    return tuple(  # type: ignore[return-value]
        pl.col(f"{kind}.{column}") if f"{kind}.{column}" in names else None for kind in ("min", "max", "null_count")
    )


def _sql_literal(value: Any) -> str:
    if isinstance(value, datetime):
        return _sql_timestamp(value)
    if isinstance(value, date):
        return f"'{value.isoformat()}'"
    if isinstance(value, bool | int | float):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


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

    def append(
        self,
        table: str,
        frame: pl.DataFrame,
        *,
        metadata: Mapping[str, str] | None = None,
        transaction: str | None = None,
    ) -> int:
        """Append ``frame`` to ``table`` (created on first write); returns the new version.

        A ``transaction`` name is recorded with the commit, and :meth:`committed` then tells
        whether that append is in the table: a writer killed after its commit and before its
        own bookkeeping can find out on restart instead of appending the rows twice.
        """
        return self._commit(table, frame, where=None, metadata=metadata, transaction=transaction)

    def committed(self, table: str, transaction: str) -> bool:
        """Whether an append recorded as ``transaction`` is in ``table``."""
        if not self.exists(table):
            return False
        try:
            return self._table(table).transaction_version(transaction) is not None
        except (DeltaError, OSError) as exc:
            raise LakeError(f"cannot read the transactions of table {table!r} at {self.uri(table)}: {exc}") from exc

    def replace(
        self, table: str, frame: pl.DataFrame, *, where: Where, metadata: Mapping[str, str] | None = None
    ) -> int:
        """Atomically replace the rows ``where`` selects with ``frame``; returns the new version.

        Every row of ``frame`` must be selected by ``where``. Rerunning the same replacement gives
        the same table, which is what makes reruns of a batch or a window idempotent.
        """
        return self._commit(table, frame, where=where, metadata=metadata)

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
                    commit_properties=delta_files.commit_properties(metadata),
                )
                .when_matched_update_all()
                .when_not_matched_insert_all()
                .execute()
            )

        return self._retry(table, run)

    def delete(self, table: str, *, where: Where) -> int:
        """Delete the rows ``where`` selects; returns the new version."""

        def run() -> None:
            self._table(table).delete(where.sql())

        return self._retry(table, run)

    def _commit(
        self,
        table: str,
        frame: pl.DataFrame,
        *,
        where: Where | None,
        metadata: Mapping[str, str] | None,
        transaction: str | None = None,
    ) -> int:
        spec = TABLES[table]
        partition_by = list(spec.partition_by)
        frame = self._partitioned(table, frame)
        uri = self.uri(table)
        schema = delta_files.delta_schema(frame)
        current = self._table(table) if self.exists(table) else None
        if current is not None:
            if not delta_files.same_columns(current.schema(), schema):
                return self._write_deltalake(table, frame, where=where, metadata=metadata, transaction=transaction)
            schema = current.schema()  # the table's column order (files are read by name)
        # The common case, an unchanged schema, is written by Polars (delta_files says why) and
        # committed by us: one transaction adding the new files and removing the replaced ones.
        try:
            actions = delta_files.write_files(uri, frame, partition_by)
        except (OSError, pl.exceptions.PolarsError) as exc:
            raise LakeError(f"could not write the files of table {table!r} at {uri}: {exc}") from exc

        def run() -> int | None:
            # Opening a table replays its log (38 ms at 40 commits); a retry only reads what is new.
            read = current
            if read is not None:
                read.update_incremental()
            elif self.exists(table):  # another writer created it since
                read = self._table(table)
            removes: list[RemoveAction] = []
            kept: list[AddAction] = []
            if read is not None and where is not None:
                removes, kept = self._unselect(table, read, where)
            added = actions + kept
            delta_files.commit(
                uri,
                added,
                schema,
                partition_by,
                metadata,
                table=read,
                removes=removes,
                rows_added=frame.height,
                transaction=transaction,
            )
            if read is None:
                return None
            read.update_incremental()
            return read.version()

        return self._retry(table, run)

    def _unselect(self, table: str, read: DeltaTable, where: Where) -> tuple[list[RemoveAction], list[AddAction]]:
        """What removes the rows ``where`` selects from the table as ``read``: the files to remove,
        and new files holding the unselected rows of those it selects only partly."""
        partition_by = TABLES[table].partition_by
        files = pl.DataFrame(read.get_add_actions(flatten=True))
        if files.is_empty():
            return [], []
        every, none = where.file_coverage(files, partition_by)
        touched = files.filter(~none)
        removes = [delta_files.remove_action(row, list(partition_by)) for row in touched.iter_rows(named=True)]
        kept: list[AddAction] = []
        schema = pl.DataFrame(pa.schema(read.schema().to_arrow()).empty_table()).schema
        for row in files.filter(~none & ~every).iter_rows(named=True):
            rest = delta_files.read_file(self.uri(table), row, schema).filter(~where.expr())
            if rest.height:
                kept += delta_files.write_files(self.uri(table), rest, list(partition_by))
        return removes, kept

    def _write_deltalake(
        self,
        table: str,
        frame: pl.DataFrame,
        *,
        where: Where | None,
        metadata: Mapping[str, str] | None,
        transaction: str | None = None,
    ) -> int:
        """Write through delta-rs: the path for a schema change (a contract column added later)."""
        data = frame.to_arrow()
        options: dict[str, Any] = {
            "partition_by": list(TABLES[table].partition_by) or None,
            "commit_properties": delta_files.commit_properties(metadata, transaction),
            "schema_mode": "merge",  # a column added to the contract later joins the table
        }

        def run() -> None:
            if where is None:
                write_deltalake(self.uri(table), data, mode="append", **options)
            else:
                write_deltalake(self.uri(table), data, mode="overwrite", predicate=where.sql(), **options)

        return self._retry(table, run)

    def any_rows(self, table: str, where: Where) -> bool:
        """Whether any row of ``table`` is selected by ``where``."""
        if not self.exists(table):
            return False
        try:
            return bool(self.scan(table).filter(where.expr()).select(pl.len()).collect().item() > 0)
        except pl.exceptions.PolarsError as exc:
            raise LakeError(f"cannot evaluate {where} on table {table!r}: {exc}") from exc

    def _partitioned(self, table: str, frame: pl.DataFrame) -> pl.DataFrame:
        """``frame`` with the table's partition columns, deriving the event month from the event date."""
        spec = TABLES[table]
        if EVENT_MONTH in spec.partition_by and EVENT_MONTH not in frame.columns and EVENT_DATE in frame.columns:
            # Formatted once per distinct date, not per row (strftime of 1M rows took 0.12 s).
            dates = frame.get_column(EVENT_DATE).unique()
            months = pl.col(EVENT_DATE).replace_strict(dates, dates.dt.strftime("%Y-%m"), return_dtype=pl.String)
            frame = frame.with_columns(months.alias(EVENT_MONTH))
        missing = [c for c in spec.partition_by if c not in frame.columns]
        if missing:
            raise LakeError(f"rows for table {table!r} lack its partition column(s) {missing}")
        return frame

    def _retry(self, table: str, run: Callable[[], int | None]) -> int:
        """Run one commit, retrying when another writer won the race for the same version; returns
        the version ``run`` reports, or reads it when ``run`` reports none."""
        for attempt in range(COMMIT_ATTEMPTS):
            try:
                version = run()
                return self._table(table).version() if version is None else version
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

    def compact(self, table: str, *, min_files: int = 2) -> Compaction | None:
        """Rewrite the small files of each partition of ``table`` as a few larger ones, once some
        partition holds ``min_files`` files; None when none does (or the table is not written yet).

        A daily loop adds a file per table per tick, and every open and read of a table pays for
        each file (at 30 files, reads took twice as long as compacted). The rows do not change,
        and nothing is vacuumed: every earlier version, which model lineage may name, stays
        readable. Delta's own OPTIMIZE is the commit, so other engines see what it was.
        """
        if min_files < 2:
            raise LakeError(
                f"compaction needs min_files of at least 2 (a lone file has nothing to merge); got {min_files}"
            )
        if not self.exists(table):
            return None
        read = self._table(table)
        if self._most_files_in_a_partition(table, read) < min_files:
            return None
        try:
            metrics = read.optimize.compact(
                commit_properties=delta_files.commit_properties({"driftloop.operation": "compact"})
            )
        except (DeltaError, OSError) as exc:
            raise LakeError(
                f"could not compact table {table!r} at {self.uri(table)}: {exc}; nothing was changed, run it again "
                "when no other write is running"
            ) from exc
        if not int(metrics["numFilesRemoved"]):  # every file was large already: no commit was made
            return None
        read.update_incremental()
        return Compaction(table, read.version(), int(metrics["numFilesRemoved"]), int(metrics["numFilesAdded"]))

    def _most_files_in_a_partition(self, table: str, read: DeltaTable) -> int:
        files = pl.DataFrame(read.get_add_actions(flatten=True))
        if files.is_empty():
            return 0
        partitions = [f"partition.{c}" for c in TABLES[table].partition_by]
        if not partitions:
            return files.height
        return int(files.group_by(partitions).len().get_column("len").max())  # type: ignore[arg-type]

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


def _sql_timestamp(value: datetime) -> str:
    """A naive timestamp as a literal Delta's SQL engine compares with a timestamp column."""
    return f"'{value:%Y-%m-%dT%H:%M:%S.%f}'"


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
