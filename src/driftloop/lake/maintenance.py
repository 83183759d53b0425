"""Looking after the lake: compaction of the small files a daily loop piles up, the history of a
table's commits, and row counts read from the log alone."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import polars as pl
from deltalake import DeltaTable
from deltalake.exceptions import DeltaError

from driftloop.errors import LakeError, TableNotFound
from driftloop.lake import files
from driftloop.lake.tables import TableSpec

if TYPE_CHECKING:
    from driftloop.lake.lake import Lake

# Spark's Delta writers keep a commit's metadata as one JSON text under this key.
USER_METADATA = "userMetadata"


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


def compact(lake: Lake, spec: TableSpec, *, min_files: int = 2) -> Compaction | None:
    """Rewrite the small files of each partition of the table as a few larger ones, once some
    partition holds ``min_files`` files; None when none does (or the table is not written yet).

    A daily loop adds a file per table per tick, and every open and read of a table pays for
    each file (at 30 files, reads took twice as long as compacted). The rows do not change, and
    nothing is vacuumed: every earlier version, which model lineage may name, stays readable.
    Delta's own OPTIMIZE is the commit, so other engines see what it was.
    """
    table = spec.name
    if min_files < 2:
        raise LakeError(f"compaction needs min_files of at least 2 (a lone file has nothing to merge); got {min_files}")
    if not lake.exists(table):
        return None
    read = lake.open(table)
    if _most_files_in_a_partition(spec, read) < min_files:
        return None
    try:
        metrics = read.optimize.compact(commit_properties=files.commit_properties({"driftloop.operation": "compact"}))
    except (DeltaError, OSError) as exc:
        raise LakeError(
            f"could not compact table '{table}' at {lake.uri(table)}: {exc}; nothing was changed, run it again "
            "when no other write is running"
        ) from exc
    if not int(metrics["numFilesRemoved"]):  # every file was large already: no commit was made
        return None
    read.update_incremental()
    return Compaction(table, read.version(), int(metrics["numFilesRemoved"]), int(metrics["numFilesAdded"]))


def _most_files_in_a_partition(spec: TableSpec, read: DeltaTable) -> int:
    actions = pl.DataFrame(read.get_add_actions(flatten=True))
    if actions.is_empty():
        return 0
    partitions = [f"partition.{c}" for c in spec.partition_by]
    if not partitions:
        return actions.height
    return int(actions.group_by(partitions).len().get_column("len").max())  # type: ignore[arg-type]


def history(lake: Lake, spec: TableSpec, *, limit: int | None = None, counts: bool = True) -> list[TableVersion]:
    """The table's commits, newest first, with the row count after each (-1 with ``counts=False``)."""
    table = spec.name
    if not lake.exists(table):
        raise TableNotFound(f"table '{table}' has not been written yet (looked in {lake.uri(table)})")
    versions = []
    for entry in lake.open(table).history(limit):
        number = int(entry["version"])
        metrics = entry.get("operationMetrics") or {}
        known = {"timestamp", "operation", "operationParameters", "engineInfo", "clientVersion"}
        extra = {k: str(v) for k, v in entry.items() if k not in known | {"operationMetrics", "version"}}
        extra.update(_user_metadata(extra.pop(USER_METADATA, None)))
        versions.append(
            TableVersion(
                version=number,
                timestamp=datetime.fromtimestamp(entry["timestamp"] / 1000, tz=UTC),
                operation=str(entry.get("operation", "")),
                rows_added=_rows_added(metrics, extra),
                rows=row_count(lake, spec, number) if counts else -1,
                metadata=extra,
            )
        )
    return versions


def row_count(lake: Lake, spec: TableSpec, version: int | None = None) -> int:
    """Rows of the table at ``version`` (the latest by default; 0 before its first write)."""
    if not lake.exists(spec.name):
        return 0
    # The log records each file's row count, so this reads no data file.
    actions = pl.DataFrame(DeltaTable(lake.uri(spec.name), version=version).get_add_actions(flatten=True))
    return int(actions.get_column("num_records").sum()) if actions.height else 0


def _user_metadata(text: str | None) -> dict[str, str]:
    """The metadata a Spark Delta writer kept as one JSON text (``userMetadata``), as keys."""
    if not text:
        return {}
    try:
        found = json.loads(text)
    except json.JSONDecodeError:
        return {USER_METADATA: text}
    return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {USER_METADATA: text}


def _rows_added(metrics: Mapping[str, Any], metadata: Mapping[str, str]) -> int | None:
    """Rows a commit added: delta-rs's own metric, or what driftloop's fast append recorded."""
    for value in (
        metrics.get("num_added_rows"),
        metrics.get("num_inserted_rows"),
        metadata.get(files.ROWS_ADDED),
    ):
        if value is not None:
            return int(value)
    return None
