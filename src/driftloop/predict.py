"""Batch inference: score a window of the features table with a registered model.

Rows are scored in chunks of whole days (so a window larger than memory works) and each chunk
is written as one atomic Delta commit that *replaces* the batch predictions of the same model
version over that chunk's time span. A rerun, also after the process was killed mid-window, therefore ends in the
same table, never with duplicates. Each prediction carries a deterministic id (from entity
id, event time and model version), the time it was scored, the model name, version and run
id, the job id and its source.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import polars as pl

from driftloop.data.clock import EventClock, days_span
from driftloop.errors import PredictError
from driftloop.lake import EVENT_DATE, PREDICTION_ID, PredictionSource, Table, Where
from driftloop.project import Project
from driftloop.registry import Registry

# Feature bytes read per chunk (whole days are never split); scoring and writing a chunk hold
# about three times this (1M rows x 22 columns, 200 MB by ``row_bytes``, peaked 510 MB above
# the process's start). A budget in bytes, not rows, keeps a wide model's chunks in memory,
# and chunks this large keep the fixed cost of a chunk small: each is one more Delta commit and
# one more scan of the table (1M rows took 1.6 s as one chunk, 1.9 s as four).
CHUNK_BYTES = 256 * 2**20
# In-memory width assumed for a value of a variable-width type (a string: its view and text).
VARIABLE_WIDTH = 32


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
    as many as fit in ``CHUNK_BYTES``; a single day larger than that is one chunk), each chunk
    one commit.
    """
    if until <= since:
        raise PredictError(f"the window is empty: --until ({until}) must be after --since ({since})")
    registry = Registry(project)
    chosen = version or registry.champion()
    if chosen is None:
        raise PredictError(f"model {registry.name!r} has no champion yet; run `driftloop promote`, or pass --version")
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
    if chunk_rows is None:
        chunk_rows = max(1, CHUNK_BYTES // row_bytes([schema[c] for c in columns]))

    def write(start: datetime, end: datetime, days: list[date], frame: pl.DataFrame) -> None:
        where = Where(
            equal={"source": PredictionSource.BATCH, "model_name": registry.name, "model_version": chosen},
            between={"event_time": (start, end)},
        )
        run.table_version = lake.replace(
            Table.PREDICTIONS,
            frame,
            where=where,
            metadata={"driftloop.job_id": run.job_id, "driftloop.from": str(start)},
        )
        run.rows += frame.height
        run.days += [str(d) for d in days]
        if on_chunk:
            on_chunk(days, frame.height)

    # Each chunk is written while the next is scored: the write (Parquet encoding, in Rust) and
    # the forward pass overlap; one chunk at most waits, which bounds the memory to two chunks.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="driftloop-predict-write") as writer:
        pending: Future[None] | None = None
        for start, end, days in _chunks(project, events, since, until, chunk_rows):
            low, high = events.bounds(start, end)
            rows = lake.read(Table.FEATURES, since=low, until=high, time_column=clock, columns=columns)
            scored = engine.to_polars(engine.score(rows, package.predict_valid))  # written from this process
            frame = _prediction_rows(
                scored, package.heads.output_columns, project, registry.name, chosen, run_id, run.job_id
            )
            if pending is not None:
                pending.result()
            pending = writer.submit(write, start, end, days, frame)
        if pending is not None:
            pending.result()
    return run


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


def _prediction_rows(
    scored: pl.DataFrame,
    outputs: list[str],
    project: Project,
    model: str,
    version: str,
    run_id: str,
    job_id: str,
) -> pl.DataFrame:
    """The rows ``predictions`` stores for ``scored`` (feature rows with their outputs beside them)."""
    contract = project.contract
    entity = contract.entity_id()
    event_time = event_clock(project).instants()
    return scored.select(
        prediction_ids(entity, event_time, version).alias(PREDICTION_ID),
        entity.alias("entity_id"),
        event_time.alias("event_time"),
        pl.lit(datetime.now(UTC)).cast(pl.Datetime("us", "UTC")).alias("scored_at"),
        pl.lit(model).alias("model_name"),
        pl.lit(version).alias("model_version"),
        pl.lit(run_id).alias("run_id"),
        pl.lit(job_id).alias("job_id"),
        pl.lit(PredictionSource.BATCH.value).alias("source"),
        event_time.cast(pl.Date).alias(EVENT_DATE),
        *outputs,
    )


def event_clock(project: Project) -> EventClock:
    """The project's event clock; batch prediction windows are by event time."""
    clock = project.contract.clock
    if clock is None:
        raise PredictError("batch prediction windows are by event time; the contract has no event_time column")
    return clock


def _chunks(
    project: Project, events: EventClock, since: datetime, until: datetime, chunk_rows: int
) -> list[tuple[datetime, datetime, list[date]]]:
    """Consecutive days of the window (in the contract's zone) packed into [start, end) spans of
    about ``chunk_rows`` rows."""
    low, high = events.bounds(since, until)
    per_day = (
        project.lake.scan(Table.FEATURES)
        .filter((pl.col(events.column) >= low) & (pl.col(events.column) < high))
        .group_by(events.days().alias("day"))
        .len()
        .sort("day")
        .collect()
    )
    if per_day.is_empty():
        raise PredictError(f"no feature rows between {since} and {until}; run `driftloop features` or widen the window")
    chunks: list[tuple[datetime, datetime, list[date]]] = []
    days: list[date] = []
    rows = 0
    for day, count in per_day.iter_rows():
        if days and rows + count > chunk_rows:
            chunks.append(_span(days, since, until, events.zone))
            days, rows = [], 0
        days.append(day)
        rows += count
    chunks.append(_span(days, since, until, events.zone))
    return chunks


def _span(days: list[date], since: datetime, until: datetime, zone_name: str) -> tuple[datetime, datetime, list[date]]:
    start, end = days_span(days[0], days[-1], zone_name)
    return max(since, start), min(until, end), days
