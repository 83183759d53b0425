"""Training data: the features table at a known version, split by event time.

Windows never overlap in time: every row of the validation window is later than every
training row, and every test row later than every validation row, so nothing from the future
leaks into what the model learns from.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import polars as pl

from driftloop.data.contract import Contract
from driftloop.data.truth import is_labelled, with_truth
from driftloop.errors import TrainingError
from driftloop.features import FeatureSet
from driftloop.lake import Lake, Table

# Hash values a sample's share is taken of.
SAMPLE_SPAN = 2**32


@dataclass(frozen=True)
class Splits:
    """Training, validation and test rows, and the times that separate them."""

    train: pl.DataFrame
    validation: pl.DataFrame
    test: pl.DataFrame
    validation_start: datetime
    test_start: datetime


def training_rows(
    lake: Lake,
    features: FeatureSet,
    *,
    version: int | None = None,
    labels_version: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    labels: bool = True,
    sample: Sample | None = None,
    empty_ok: bool = False,
) -> tuple[pl.DataFrame, int]:
    """Rows of the features table (at ``version``, default the latest) with their ground truth
    (:mod:`driftloop.truth`: labels that arrived later win, read at ``labels_version``, default
    the latest; none with ``labels=False``) and at least one target value, optionally only those with
    ``since <= event time < until``, and only ``sample``'s rows of them when given (only those
    are read into memory). None labelled is an error, unless ``empty_ok``."""
    contract = features.contract
    if not contract.targets:
        raise TrainingError("the contract names no target column; give one the role 'target' in driftloop.toml")
    read_version = _version(lake, version)
    low, high, column = _bounds(contract, since, until)
    keep = sample.kept(contract) if sample is not None and sample.share < 1 else None
    rows = lake.read(Table.FEATURES, version=read_version, since=low, until=high, time_column=column, keep=keep)
    late = (
        lake.read(Table.LABELS, version=labels_version, since=low, until=high, time_column=column)
        if labels and lake.exists(Table.LABELS)
        else None
    )
    labelled = with_truth(rows, late, contract).filter(is_labelled(contract))
    if labelled.is_empty() and not empty_ok:
        raise TrainingError(f"no row of the features table has a value for any target {contract.targets}")
    # In time, then key, order: the table's own order is its writers' (Spark's tasks, a merge),
    # and the same seed must give the same model whatever wrote the table.
    order = [c for c in [contract.event_time_column, *contract.id_columns] if c is not None]
    return (labelled.sort(order, maintain_order=True) if order else labelled), read_version


@dataclass(frozen=True)
class Sample:
    """About ``share`` of a window's rows, spread evenly over its time: each row kept or not by a
    hash of its key and the seed, so the same rows are chosen again (at the same Polars version,
    which the run records) and every day keeps about the same share of its rows."""

    share: float
    seed: int = 0

    def kept(self, contract: Contract) -> pl.Expr:
        """True for the rows the sample keeps."""
        hashed = pl.struct(contract.key).hash(self.seed) % SAMPLE_SPAN
        return hashed < int(self.share * SAMPLE_SPAN)

    @classmethod
    def of(
        cls, lake: Lake, features: FeatureSet, max_rows: int | None, *, version: int | None = None,
        since: datetime | None = None, until: datetime | None = None, seed: int = 0,
    ) -> Sample:  # fmt: skip
        """The sample of the window that holds about ``max_rows`` rows (all of them when it holds
        no more, or without a limit); the window's rows are counted from one column."""
        if max_rows is None:
            return cls(1.0, seed)
        low, high, column = _bounds(features.contract, since, until)
        rows = lake.count(Table.FEATURES, version=_version(lake, version), since=low, until=high, time_column=column)
        return cls(min(1.0, max_rows / rows) if rows else 1.0, seed)


def _version(lake: Lake, version: int | None) -> int:
    read_version = lake.version(Table.FEATURES) if version is None else version
    if read_version is None:
        raise TrainingError("the features table is empty: run `driftloop ingest` then `driftloop features` first")
    return read_version


def _bounds(contract: Contract, since: datetime | None, until: datetime | None) -> tuple[Any, Any, str | None]:
    """A window of event time as the features table's time column compares (open without one)."""
    clock = contract.clock if since or until else None
    low, high = clock.bounds(since, until) if clock else (None, None)
    return low, high, clock.column if clock else None


def newest_labelled_time(lake: Lake, contract: Contract) -> datetime | None:
    """The latest event time with a known target (an instant, naive UTC), in the features table
    or among the labels.

    Lazy scans of one column each, so the cost does not grow with the table's history.
    """
    clock = contract.clock
    if clock is None:
        raise TrainingError("a recent window is by event time; the contract has no event_time column")
    newest = clock.instants(pl.col(clock.column).max())
    times = [lake.scan(Table.FEATURES).filter(is_labelled(contract)).select(newest).collect().item()]
    if lake.exists(Table.LABELS):
        times.append(lake.scan(Table.LABELS).filter(is_labelled(contract)).select(newest).collect().item())
    known = [t for t in times if t is not None]
    return max(known) if known else None


def recent_labelled_rows(lake: Lake, features: FeatureSet, days: float) -> pl.DataFrame:
    """The labelled rows of the last ``days`` days before the newest labelled event time."""
    newest = newest_labelled_time(lake, features.contract)
    if newest is None:
        raise TrainingError("no row of the features table has a target value yet")
    rows, _ = training_rows(lake, features, since=newest - timedelta(days=days))
    return rows


def rows_after(lake: Lake, features: FeatureSet, since: datetime, days: float) -> tuple[pl.DataFrame, int]:
    """The labelled rows of the ``days`` days after the instant ``since`` (``since < event time <=
    since + days``), and how many rows the features table holds there, labelled or not."""
    start, end = since + timedelta(microseconds=1), since + timedelta(days=days, microseconds=1)
    low, high, column = _bounds(features.contract, start, end)
    total = lake.count(Table.FEATURES, since=low, until=high, time_column=column) if lake.exists(Table.FEATURES) else 0
    if not total:
        return pl.DataFrame(), 0
    rows, _ = training_rows(lake, features, since=start, until=end, empty_ok=True)
    return rows, total


def split_by_time(
    frame: pl.DataFrame,
    time_column: str,
    validation: float,
    test: float,
    *,
    validation_days: float | None = None,
    test_days: float | None = None,
) -> Splits:
    """Split ``frame`` into consecutive time windows: the test window at the end, the validation
    window before it, training before that.

    Each window holds about the given share of rows, or, where ``validation_days`` or
    ``test_days`` is set, the rows of that many days (the test days ending with the newest row,
    the validation days ending where the test window starts). A boundary never falls inside a
    timestamp: all rows with the same event time land in the same window.
    """
    times = frame.get_column(time_column).cast(pl.Datetime("us")).sort()
    if times.null_count():
        raise TrainingError(f"event time column {time_column!r} has missing values")
    n = times.len()
    test_start = (
        _first(times, times > times[-1] - timedelta(days=test_days), times[-1])
        if test_days
        else times[min(n - 1, int(n * (1 - test)))]
    )
    validation_start = (
        _first(times, (times >= test_start - timedelta(days=validation_days)) & (times < test_start), test_start)
        if validation_days
        else times[min(n - 1, int(n * (1 - validation - test)))]
    )
    clock = split_clock(time_column)
    splits = Splits(
        frame.filter(clock < validation_start),
        frame.filter((clock >= validation_start) & (clock < test_start)),
        frame.filter(clock >= test_start),
        validation_start,
        test_start,
    )
    sizes = "validation_days/test_days" if validation_days or test_days else "validation_fraction/test_fraction"
    for name, part in (("training", splits.train), ("validation", splits.validation), ("test", splits.test)):
        if part.height == 0:
            raise TrainingError(
                f"the {name} window is empty ({n} labelled rows in all, from {times[0]} to {times[-1]}); "
                f"ingest more data or change {sizes} in [train]"
            )
    return splits


def split_clock(time_column: str) -> pl.Expr:
    """The event time as :func:`split_by_time` compares it with the windows' boundaries."""
    return pl.col(time_column).cast(pl.Datetime("us"))


def _first(times: pl.Series, where: pl.Series, otherwise: datetime) -> datetime:
    """The first of the sorted ``times`` ``where`` holds; ``otherwise`` when it holds for none
    (which leaves the window starting there empty)."""
    chosen = times.filter(where)
    first: datetime = chosen[0] if chosen.len() else otherwise
    return first


def held_out_rows(lake: Lake, features: FeatureSet, lineage: dict[str, Any]) -> pl.DataFrame:
    """The rows of a package's test window exactly as its training split them: the features and
    labels at the versions it was trained on, its window, and its ``test_start``."""
    clock = features.contract.clock
    if clock is None:
        raise TrainingError("a test window is by event time; the contract has no event_time column")
    since, until = (datetime.fromisoformat(t) if t else None for t in lineage["window"])
    labels_version = lineage.get("labels_version")
    sampled = lineage.get("sample") or {"share": 1.0}
    rows, _ = training_rows(
        lake,
        features,
        version=int(lineage["features_version"]),
        labels_version=labels_version,
        labels=labels_version is not None,  # trained before any label arrived: none taken now
        since=since,
        until=until,
        sample=Sample(float(sampled["share"]), int(lineage.get("seed", 0))),  # the rows it was trained on
    )
    return rows.filter(split_clock(clock.column) >= datetime.fromisoformat(str(lineage["test_start"])))
