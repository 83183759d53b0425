"""Reading the lake: lazy scans of a table at a version, and windows of event time that read only
the partitions they span."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING

import polars as pl

from driftloop.errors import LakeError, TableNotFound
from driftloop.lake.tables import EVENT_MONTH, TableSpec
from driftloop.lake.where import Where

if TYPE_CHECKING:
    from driftloop.lake.lake import Lake


def scan(lake: Lake, spec: TableSpec, *, version: int | None = None) -> pl.LazyFrame:
    """Lazy scan of the table (at ``version``, or the latest)."""
    table = spec.name
    if not lake.exists(table):
        raise TableNotFound(
            f"table '{table}' has not been written yet (looked in {lake.uri(table)}); "
            "run the step that writes it first (e.g. `driftloop ingest` for raw)"
        )
    try:
        return pl.scan_delta(lake.uri(table), version=version)
    except Exception as exc:  # delta-rs and polars raise several types for a bad version
        raise LakeError(f"cannot read table '{table}' at version {version}: {exc}") from exc


def read(
    lake: Lake,
    spec: TableSpec,
    *,
    version: int | None = None,
    since: datetime | date | None = None,
    until: datetime | date | None = None,
    time_column: str | None = None,
    columns: list[str] | None = None,
    keep: pl.Expr | None = None,
) -> pl.DataFrame:
    """The table (at ``version``), optionally only ``since <= time_column < until``, the rows
    ``keep`` holds for, and ``columns``.

    The event-month partition is pruned too when the table has one, so a narrow window reads
    only its own files.
    """
    frame = _selected(lake, spec, version, since, until, time_column, keep)
    if columns is not None:
        frame = frame.select(columns)
    try:
        return frame.collect()
    except Exception as exc:  # delta-rs and polars raise several types for a file they cannot read
        raise LakeError(f"cannot read table '{spec.name}': {exc}") from exc


def count(
    lake: Lake,
    spec: TableSpec,
    *,
    version: int | None = None,
    since: datetime | date | None = None,
    until: datetime | date | None = None,
    time_column: str | None = None,
) -> int:
    """How many rows :func:`read` would read (one column is scanned)."""
    frame = _selected(lake, spec, version, since, until, time_column, None)
    try:
        return int(frame.select(pl.len()).collect().item())
    except Exception as exc:
        raise LakeError(f"cannot count the rows of table '{spec.name}': {exc}") from exc


def _selected(
    lake: Lake,
    spec: TableSpec,
    version: int | None,
    since: datetime | date | None,
    until: datetime | date | None,
    time_column: str | None,
    keep: pl.Expr | None,
) -> pl.LazyFrame:
    frame = scan(lake, spec, version=version)
    if since is not None or until is not None:
        if time_column is None:
            raise LakeError(f"reading '{spec.name}' by time range needs the time column to filter on")
        frame = frame.filter(window(frame, time_column, since, until))
    return frame if keep is None else frame.filter(keep)


def any_rows(lake: Lake, spec: TableSpec, where: Where) -> bool:
    """Whether any row of the table is selected by ``where`` (False before its first write)."""
    if not lake.exists(spec.name):
        return False
    try:
        return bool(scan(lake, spec).filter(where.expr()).select(pl.len()).collect().item() > 0)
    except pl.exceptions.PolarsError as exc:
        raise LakeError(f"cannot evaluate {where} on table '{spec.name}': {exc}") from exc


def window(frame: pl.LazyFrame, column: str, since: datetime | date | None, until: datetime | date | None) -> pl.Expr:
    """``since <= column < until`` (either end open), with the event months it spans when the
    table is partitioned by them, so the scan skips the other partitions unread."""
    names = frame.collect_schema().names()
    conditions = []
    if since is not None:
        conditions.append(pl.col(column) >= since)
        if EVENT_MONTH in names:
            conditions.append(pl.col(EVENT_MONTH) >= f"{since:%Y-%m}")
    if until is not None:
        conditions.append(pl.col(column) < until)
        if EVENT_MONTH in names:
            conditions.append(pl.col(EVENT_MONTH) <= f"{until:%Y-%m}")
    return pl.all_horizontal(conditions)
