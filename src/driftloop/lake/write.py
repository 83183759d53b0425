"""The lake's write paths: append, replace, merge and delete, each one atomic Delta commit.

Rows are first put in their table's shape (:func:`~driftloop.lake.tables.conform`). The common
case, a table whose schema the rows match, is written by Polars and committed by driftloop
(:mod:`driftloop.lake.files` says why): one transaction adding the new files and removing the
replaced ones. A schema change (a contract column added later) goes through ``write_deltalake``
with a schema merge. Delta's optimistic concurrency makes two writers safe: a commit that loses
a race is retried, and since each write is whole or nothing, retrying never duplicates.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import polars as pl
import pyarrow as pa
from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import CommitFailedError, DeltaError
from deltalake.transaction import AddAction, RemoveAction

from driftloop.errors import LakeError, TableChanged
from driftloop.lake import files
from driftloop.lake.tables import TableSpec, conform
from driftloop.lake.where import Where

if TYPE_CHECKING:
    from driftloop.lake.lake import Lake

# A write that loses a commit race is retried this many times (with growing pauses).
COMMIT_ATTEMPTS = 8


@dataclass(frozen=True)
class Write:
    """What a write does besides adding its rows, whichever path writes them: the rows it
    replaces (``where``; none without it), its commit's metadata, the transaction the commit
    records (see :meth:`Lake.committed`), and the version its rows were computed from: when
    given, the commit goes in only while the table is still at it (a TableChanged otherwise)."""

    where: Where | None = None
    metadata: Mapping[str, str] | None = None
    transaction: str | None = None
    read_version: int | None = None

    def still_current(self, table: DeltaTable, name: str) -> None:
        """Raise TableChanged if ``table`` moved past the version this write was computed from."""
        if self.read_version is not None and table.version() != self.read_version:
            raise TableChanged(
                f"table '{name}' moved from version {self.read_version} to {table.version()} while a write "
                "computed from it was prepared; it was not committed"
            )


def commit(lake: Lake, spec: TableSpec, frame: pl.DataFrame, request: Write) -> int:
    """Append ``frame`` to the table as ``request`` says, in one commit; returns the new version."""
    where, metadata, transaction = request.where, request.metadata, request.transaction
    table, partition_by = spec.name, list(spec.partition_by)
    frame = conform(spec, frame)
    uri = lake.uri(table)
    schema = files.delta_schema(frame)
    current = lake.open(table) if lake.exists(table) else None
    if current is not None:
        if not files.same_columns(current.schema(), schema):
            return _write_deltalake(lake, spec, frame, where=where, metadata=metadata, transaction=transaction)
        schema = current.schema()  # the table's column order (files are read by name)
    try:
        actions = files.write_files(uri, frame, partition_by)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise LakeError(f"could not write the files of table '{table}' at {uri}: {exc}") from exc

    def run() -> int | None:
        # Opening a table replays its log (38 ms at 40 commits); a retry only reads what is new.
        read = current
        if read is not None:
            read.update_incremental()
        elif lake.exists(table):  # another writer created it since
            read = lake.open(table)
        removes: list[RemoveAction] = []
        kept: list[AddAction] = []
        if read is not None:
            request.still_current(read, table)
        if read is not None and where is not None:
            removes, kept = unselect(lake, spec, read, where)
        files.commit(
            uri,
            actions + kept,
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

    return retry(lake, spec, run)


def merge(
    lake: Lake, spec: TableSpec, frame: pl.DataFrame, *, key: list[str], metadata: Mapping[str, str] | None
) -> int:
    """Upsert ``frame`` by ``key``: matching rows are replaced, new rows added; returns the version.

    The key must determine the partition (it holds the event time), so only the partitions the
    new rows fall in are read.
    """
    if not key:
        raise LakeError(f"merge into '{spec.name}' needs at least one key column")
    frame = conform(spec, frame)
    if not lake.exists(spec.name):
        return commit(lake, spec, frame, Write(metadata=metadata))
    conditions = [f't."{k}" = s."{k}"' for k in key]
    for column in spec.partition_by:
        values = ", ".join(f"'{v}'" for v in frame.get_column(column).unique().sort().to_list())
        conditions.append(f't."{column}" IN ({values})')
    on = " AND ".join(conditions)

    def run() -> None:
        (
            lake.open(spec.name)
            .merge(
                frame.to_arrow(),
                predicate=on,
                source_alias="s",
                target_alias="t",
                commit_properties=files.commit_properties(metadata),
            )
            .when_matched_update_all()
            .when_not_matched_insert_all()
            .execute()
        )

    return retry(lake, spec, run)


def delete(lake: Lake, spec: TableSpec, where: Where) -> int:
    """Delete the rows ``where`` selects; returns the new version."""

    def run() -> None:
        lake.open(spec.name).delete(where.sql())

    return retry(lake, spec, run)


def unselect(lake: Lake, spec: TableSpec, read: DeltaTable, where: Where) -> tuple[list[RemoveAction], list[AddAction]]:
    """What removes the rows ``where`` selects from the table as ``read``: the files to remove,
    and new files holding the unselected rows of those it selects only partly."""
    partition_by = spec.partition_by
    actions = pl.DataFrame(read.get_add_actions(flatten=True))
    if actions.is_empty():
        return [], []
    every, none = where.file_coverage(actions, partition_by)
    touched = actions.filter(~none)
    removes = [files.remove_action(row, list(partition_by)) for row in touched.iter_rows(named=True)]
    kept: list[AddAction] = []
    schema = pl.DataFrame(pa.schema(read.schema().to_arrow()).empty_table()).schema
    uri = lake.uri(spec.name)
    for row in actions.filter(~none & ~every).iter_rows(named=True):
        rest = files.read_file(uri, row, schema).filter(~where.expr())
        if rest.height:
            kept += files.write_files(uri, rest, list(partition_by))
    return removes, kept


def _write_deltalake(
    lake: Lake,
    spec: TableSpec,
    frame: pl.DataFrame,
    *,
    where: Where | None,
    metadata: Mapping[str, str] | None,
    transaction: str | None = None,
) -> int:
    """Write through delta-rs: the path for a schema change (a contract column added later)."""
    data = frame.to_arrow()
    uri = lake.uri(spec.name)
    options: dict[str, Any] = {
        "partition_by": list(spec.partition_by) or None,
        "commit_properties": files.commit_properties(metadata, transaction),
        "schema_mode": "merge",  # a column added to the contract later joins the table
    }

    def run() -> None:
        if where is None:
            write_deltalake(uri, data, mode="append", **options)
        else:
            write_deltalake(uri, data, mode="overwrite", predicate=where.sql(), **options)

    return retry(lake, spec, run)


def retry(lake: Lake, spec: TableSpec, run: Callable[[], int | None]) -> int:
    """Run one commit, retrying when another writer won the race for the same version; returns
    the version ``run`` reports, or reads it when ``run`` reports none."""
    table = spec.name
    for attempt in range(COMMIT_ATTEMPTS):
        try:
            version = run()
            return lake.open(table).version() if version is None else version
        except CommitFailedError as exc:
            if attempt == COMMIT_ATTEMPTS - 1:
                raise LakeError(
                    f"could not commit to table '{table}' at {lake.uri(table)} after "
                    f"{COMMIT_ATTEMPTS} attempts; other writers kept winning: {exc}"
                ) from exc
            time.sleep(0.05 * 2**attempt)
        except (DeltaError, OSError, ValueError) as exc:
            if _lost_creation_race(exc) and attempt < COMMIT_ATTEMPTS - 1:
                time.sleep(0.05 * 2**attempt)
                continue
            raise LakeError(f"could not write table '{table}' at {lake.uri(table)}: {exc}") from exc
    raise AssertionError("unreachable")  # pragma: no cover


def _lost_creation_race(exc: Exception) -> bool:
    # Two first writes race to create version 0; the loser sees the table already there.
    text = str(exc).lower()
    return "already exists" in text or "version 0" in text
