"""Batch inference: score a window of the features table with a registered model.

The window is scored on the project's engine. In this process (Polars) rows are scored in
chunks of whole days within the engine's memory budget, so a window larger than memory works;
on a cluster (Spark) the whole window is one job and its rows never come to the driver. Each
chunk is written as one atomic Delta commit that *replaces* the batch predictions of the same
model version over that chunk's time span. A rerun, also after the process was killed
mid-window, therefore ends in the same table, never with duplicates. Each prediction carries a
deterministic id (from entity id, event time and model version), the time it was scored, the
model name, version and run id, the job id and its source: computed by the same Polars code
on every engine, batch by batch, where the rows are.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import partial
from typing import TYPE_CHECKING, Any

import polars as pl

from driftloop.data.clock import EventClock, days_span
from driftloop.data.contract import Contract
from driftloop.engine import Engine
from driftloop.engine.base import Scorer
from driftloop.errors import PredictError
from driftloop.lake import EVENT_DATE, PREDICTION_ID, PredictionSource, Table, Where
from driftloop.project import Project

if TYPE_CHECKING:
    from driftloop.registry import Registry  # imported where used: it needs MLflow and PyTorch

# In-memory width assumed for a value of a variable-width type (a string: its view and text).
VARIABLE_WIDTH = 32
DAY, ROWS = "day", "rows"


@dataclass
class PredictRun:
    """What one batch prediction job did."""

    job_id: str
    model_version: str
    since: datetime
    until: datetime
    rows: int = 0
    days: list[str] = field(default_factory=list)
    table_version: int | None = None


@dataclass(frozen=True)
class Stamp:
    """What every prediction row of one job says about where it came from."""

    model: str
    version: str
    run_id: str
    job_id: str
    scored_at: datetime

    def columns(self, source: PredictionSource = PredictionSource.BATCH) -> list[pl.Expr]:
        """The stamp as the columns of a ``predictions`` row, from ``source``."""
        return [
            pl.lit(self.scored_at).cast(pl.Datetime("us", "UTC")).alias("scored_at"),
            pl.lit(self.model).alias("model_name"),
            pl.lit(self.version).alias("model_version"),
            pl.lit(self.run_id).alias("run_id"),
            pl.lit(self.job_id).alias("job_id"),
            pl.lit(source.value).alias("source"),
        ]


def predict_window(
    project: Project,
    since: datetime,
    until: datetime,
    *,
    version: str | None = None,
    chunk_rows: int | None = None,
    on_chunk: Callable[[list[date], int], None] | None = None,
) -> PredictRun:
    """Score feature rows with ``since <= event time < until`` and write them to ``predictions``.

    Whole consecutive days are scored together, up to ``chunk_rows`` rows a chunk (by default
    as many as fit in the engine's ``chunk_bytes``; a single day larger than that is one chunk;
    an engine that keeps rows off this process scores the window as one chunk), each chunk one
    commit.
    """
    from driftloop.registry import Registry  # here, not at the top: a device scores without MLflow

    registry = Registry(project)
    chosen = scoring_version(registry, since, until, version)
    package = registry.load(chosen)
    run_id = registry.version(chosen).run_id
    events = event_clock(project)
    clock = events.column
    lake, engine = project.lake, project.engine
    run = PredictRun(uuid.uuid4().hex, chosen, since, until)
    # Only the columns the model reads: not the targets, not the lake's bookkeeping. A column
    # the model needs and the table lacks is left to the preprocessor to name in its error.
    wanted = {clock, *project.contract.id_columns, *package.features.table_columns} - set(package.targets)
    schema = lake.scan(Table.FEATURES).collect_schema()
    columns = [c for c in schema.names() if c in wanted]
    if chunk_rows is None and engine.chunk_bytes is not None:
        chunk_rows = max(1, engine.chunk_bytes // row_bytes([schema[c] for c in columns]))
    stamp = Stamp(registry.name, chosen, run_id, run.job_id, datetime.now(UTC))
    rows_of = partial(prediction_rows, scorer=package.predict_valid, contract=project.contract, stamp=stamp)

    def write(start: datetime, end: datetime, days: list[date], rows: int, frame: Any) -> None:
        where = Where(
            equal={"source": PredictionSource.BATCH, "model_name": registry.name, "model_version": chosen},
            between={"event_time": (start, end)},
        )
        run.table_version = lake.replace(
            Table.PREDICTIONS,
            frame,  # the engine's frame: Polars, or Spark's (then scored as Spark writes it)
            where=where,
            metadata={"driftloop.job_id": run.job_id, "driftloop.from": str(start)},
        )
        run.rows += rows
        run.days += [str(d) for d in days]
        if on_chunk:
            on_chunk(days, rows)

    # Each chunk is written while the next is scored: the write (Parquet encoding, in Rust) and
    # the forward pass overlap; one chunk at most waits, which bounds the memory to two chunks.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="driftloop-predict-write") as writer:
        pending: Future[None] | None = None
        for start, end, days, rows in _chunks(project, engine, events, since, until, chunk_rows):
            low, high = events.bounds(start, end)
            frame = engine.map_batches(engine.window(lake, Table.FEATURES, low, high, clock, columns), rows_of)
            if pending is not None:
                pending.result()
            pending = writer.submit(write, start, end, days, rows, frame)
        if pending is not None:
            pending.result()
    return run


def scoring_version(registry: Registry, since: datetime, until: datetime, version: str | None) -> str:
    """The version that scores the window ``[since, until)``: ``version``, else the champion; a
    PredictError when the window is empty or there is no champion to default to."""
    if until <= since:
        raise PredictError(f"the window is empty: --until ({until}) must be after --since ({since})")
    chosen = version or registry.champion()
    if chosen is None:
        raise PredictError(f"model {registry.name!r} has no champion yet; run `driftloop promote`, or pass --version")
    return chosen


def row_bytes(dtypes: list[pl.DataType]) -> int:
    """About the in-memory size of a row of these types: 8 bytes a number or time (at most), 1 a
    boolean, ``VARIABLE_WIDTH`` anything else."""
    return sum(8 if d.is_numeric() or d.is_temporal() else 1 if d == pl.Boolean else VARIABLE_WIDTH for d in dtypes)


def prediction_ids(entity: pl.Expr, event_time: pl.Expr, model_version: str) -> pl.Expr:
    """A deterministic id per (entity, event time, model version): the same row scored again gets the same id.

    Built from the values, not hashed (Polars' hash is only stable within one Polars version,
    and an id must survive upgrades): "sensor-7|1452531600000000|v3", the event time in
    microseconds since the epoch, which is four times cheaper to format than ISO text (0.08 s
    against 0.27 s per million rows) and sits beside the readable ``event_time`` in every row.
    """
    moment = event_time.dt.epoch("us").cast(pl.String)
    return pl.concat_str([entity.fill_null(""), moment, pl.lit(f"v{model_version}")], separator="|")


def prediction_rows(rows: pl.DataFrame, scorer: Scorer, contract: Contract, stamp: Stamp) -> pl.DataFrame:
    """The rows ``predictions`` stores for a batch of feature ``rows``: ``scorer``'s outputs
    with each row's prediction id, entity, event time and ``stamp``."""
    outputs = scorer(rows)
    if outputs.height != rows.height:
        raise PredictError(f"the scorer gave {outputs.height} output rows for {rows.height} input rows")
    clock = contract.clock
    assert clock is not None  # a prediction window is by event time: event_clock checked it
    entity = contract.entity_id()
    event_time = clock.instants()
    bookkeeping = rows.select(
        prediction_ids(entity, event_time, stamp.version).alias(PREDICTION_ID),
        entity.alias("entity_id"),
        event_time.alias("event_time"),
        *stamp.columns(),
        event_time.cast(pl.Date).alias(EVENT_DATE),
    )
    return pl.concat([bookkeeping, outputs], how="horizontal")


def event_clock(project: Project) -> EventClock:
    """The project's event clock; batch prediction windows are by event time."""
    clock = project.contract.clock
    if clock is None:
        raise PredictError("batch prediction windows are by event time; the contract has no event_time column")
    return clock


def _chunks(
    project: Project, engine: Engine, events: EventClock, since: datetime, until: datetime, chunk_rows: int | None
) -> list[tuple[datetime, datetime, list[date], int]]:
    """Consecutive days of the window (in the contract's zone) packed into [start, end) spans of
    about ``chunk_rows`` rows (one span for None), each with its days and rows."""
    low, high = events.bounds(since, until)
    times = engine.window(project.lake, Table.FEATURES, low, high, events.column, [events.column])
    counted = engine.to_polars(engine.map_batches(times, partial(day_counts, events=events)))
    per_day = counted.group_by(DAY).agg(pl.col(ROWS).sum()).sort(DAY)
    if per_day.is_empty():
        raise PredictError(f"no feature rows between {since} and {until}; run `driftloop features` or widen the window")
    chunks: list[tuple[datetime, datetime, list[date], int]] = []
    days: list[date] = []
    rows = 0
    for day, count in per_day.iter_rows():
        if days and chunk_rows is not None and rows + count > chunk_rows:
            chunks.append((*_span(days, since, until, events.zone), days, rows))
            days, rows = [], 0
        days.append(day)
        rows += count
    chunks.append((*_span(days, since, until, events.zone), days, rows))
    return chunks


def day_counts(rows: pl.DataFrame, events: EventClock) -> pl.DataFrame:
    """How many of ``rows`` fall on each day of the event clock's zone (one batch's part of a count)."""
    return rows.group_by(events.days().alias(DAY)).agg(pl.len().cast(pl.Int64).alias(ROWS))


def _span(days: list[date], since: datetime, until: datetime, zone_name: str) -> tuple[datetime, datetime]:
    start, end = days_span(days[0], days[-1], zone_name)
    return max(since, start), min(until, end)
