"""The history to replay, cut into days, and what the project's inbox receives on each of them.

On a replayed day the inbox gets that day's rows *without* their targets (as production
receives inputs), and ``inbox/labels/`` gets the ground truth of every row whose event time is
at least ``label_delay`` before the end of the day (as labels arrive later). The days before
the replay's start are the history the first model learns from: they arrive with their targets,
in one file. Rows whose event time cannot be read go with the history, so ingest quarantines
them with their reason instead of the replay dropping them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from driftloop.data.clock import day_start, local_days
from driftloop.data.contract import Contract
from driftloop.data.parse import cast_typed, clean_text, parse_column
from driftloop.data.sources import from_frame, read_paths
from driftloop.data.validate import with_assembled_times
from driftloop.errors import ReplayError

EVENT = "__replay_event_time"
LABELS_FOLDER = "labels"


@dataclass(frozen=True)
class History:
    """The rows to replay, as read, with their event time parsed (null where it cannot be)."""

    rows: pl.DataFrame
    contract: Contract

    @property
    def days(self) -> list[date]:
        """The calendar days the rows fall on, in order."""
        days = self.rows.select(local_days(pl.col(EVENT), self.contract.timezone).alias(EVENT)).get_column(EVENT)
        return list(days.drop_nulls().unique().sort().to_list())

    def data_file(self, day: date, folder: Path) -> Path:
        """Write the inputs of ``day`` (without their targets) into ``folder``."""
        on_day = local_days(pl.col(EVENT), self.contract.timezone) == day
        rows = self.rows.filter(on_day).drop(EVENT, *self.contract.targets, strict=False)
        return _write(rows, folder / f"replay_{day}.parquet")

    def history_file(self, before: date, folder: Path) -> Path:
        """Write every row before ``before`` with its targets, in one file: the history the first
        model learns from (with the rows whose event time is unreadable, so ingest quarantines them)."""
        start = day_start(before, self.contract.timezone)
        rows = self.rows.filter((pl.col(EVENT) < start) | pl.col(EVENT).is_null()).drop(EVENT)
        return _write(rows, folder / f"history_before_{before}.parquet")

    def labels_file(self, after: datetime, before: datetime, folder: Path, name: str) -> Path | None:
        """Write the key and targets of rows with ``after <= event time < before``; None if there are none."""
        contract = self.contract
        when = pl.col(EVENT)
        rows = self.rows.filter((when >= after) & (when < before)).select(*contract.key, *contract.targets)
        if rows.is_empty():
            return None
        return _write(rows, folder / LABELS_FOLDER / f"labels_{name}.parquet")


def read_history(data: str | Path | Any, contract: Contract) -> History:
    """Read the files (or the frame) to replay and parse their event time with the contract's rules."""
    clock = contract.event_time_column
    if clock is None:
        raise ReplayError("a replay goes day by day: give one date or datetime column the role 'event_time'")
    if not contract.targets:
        raise ReplayError("a replay scores every strategy against the truth: the contract names no target")
    required = [t for t in contract.targets if contract.columns[t].required]
    if required:
        raise ReplayError(
            f"target(s) {required} are required in the contract, but a replay sends each day's rows without their "
            "targets (labels come later); set `required = false` for them in driftloop.toml"
        )
    paths = isinstance(data, str | Path)
    frames = [batch.frame for batch in read_paths([data])] if paths else [from_frame(data).frame]
    rows = pl.concat(frames, how="diagonal_relaxed") if len(frames) > 1 else frames[0]
    rows = with_assembled_times(rows, contract)
    missing = [c for c in [clock, *contract.targets] if c not in rows.columns]
    if missing:
        raise ReplayError(f"the data to replay lacks column(s) {missing}; it has {rows.columns[:20]}")
    rows = rows.with_columns(_event_time(rows.get_column(clock), contract).alias(EVENT))
    if rows.get_column(EVENT).is_null().all():
        raise ReplayError(f"no value of the event time column {clock!r} could be read; check its formats")
    return History(rows, contract)


def _event_time(values: pl.Series, contract: Contract) -> pl.Series:
    """The event time as naive UTC instants (a date is its local midnight), null where unreadable."""
    column = contract.columns[str(contract.event_time_column)]
    cast = cast_typed(pl.col(values.name), values.dtype, column, contract.timezone)
    if cast is not None:
        typed = values.to_frame().select(cast).to_series()
    else:
        typed = parse_column(clean_text(values), column, contract.timezone)
    assert contract.clock is not None  # read_history refuses a contract without an event time
    return typed.to_frame().select(contract.clock.instants(pl.col(values.name))).to_series()


def _write(rows: pl.DataFrame, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")  # the inbox never sees half a file
    rows.write_parquet(partial)
    partial.replace(path)
    return path


def parse_delay(text: str) -> timedelta:
    """``"1d"``, ``"12h"``, ``"90m"`` or ``"0"`` as a duration."""
    units = {"d": "days", "h": "hours", "m": "minutes"}
    raw = text.strip().lower()
    if raw == "0":
        return timedelta(0)
    try:
        amount, unit = float(raw[:-1]), units[raw[-1]]
    except (KeyError, ValueError, IndexError):
        raise ReplayError(f"label delay {text!r} is not a duration like 1d, 12h or 90m") from None
    if amount < 0:
        raise ReplayError(f"label delay {text!r} is negative; labels cannot arrive before the rows they label")
    return timedelta(**{unit: amount})
