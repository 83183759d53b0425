"""Every table of the lake, described once as data: what a row is, its columns, how it is
partitioned and what identifies a row.

A table's schema is its fixed columns (the lake's bookkeeping, named with a leading underscore
where they sit beside a user's own columns) plus, for the data tables, the project's own columns
that the contract defines (``TableSpec.data`` says which). Writers hand the lake their rows and
:func:`conform` makes them the table's shape: a fixed column a writer does not know of (the
request of an online prediction, for a batch one) is added as null, a column of the wrong type
is cast or refused. Every writer of a table therefore writes the same schema, which is what keeps
appends on the fast path (a commit of Polars-written files) instead of a schema merge.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

import polars as pl

from driftloop.errors import LakeError


class Table(StrEnum):
    """The tables of the lake, by name (also the name of each table's folder under the root)."""

    RAW = "raw"
    QUARANTINE = "quarantine"
    BATCHES = "batches"
    FEATURES = "features"
    LABELS = "labels"
    PREDICTIONS = "predictions"
    MONITORING = "monitoring"
    EVENTS = "events"
    IMAGES = "images"
    IMAGE_QUARANTINE = "image_quarantine"
    DEVICE_REPORTS = "device_reports"
    ROLLOUTS = "rollouts"


# Bookkeeping columns of the data tables (the underscore keeps them apart from user columns).
ROW = "_row"  # 1-based position of the row in the batch it came in
RULES = "_rules"  # the "column:rule" names a quarantined row broke
COLUMNS = "_columns"  # the columns those rules are about
BATCH_ID = "_batch_id"
SOURCE = "_source"
INGESTED_AT = "_ingested_at"
EVENT_DATE = "_event_date"
INGEST_DATE = "_ingest_date"
# Data tables are partitioned by event month, derived by the lake from _event_date. Daily
# partitions were measured at 1.7x the write time and 2x the memory of monthly ones (1M rows over
# two years), and a day of ten-minute readings is a 20 kB file: too small to be worth a partition.
EVENT_MONTH = "_event_month"
PREDICTION_ID = "prediction_id"

UTC_TIME = pl.Datetime("us", "UTC")
# What an image project's rows are named and timed by, and labelled with (its contract's columns).
IMAGE_ID = "image_id"
CAPTURED_AT = "captured_at"
IMAGE_LABEL = "label"
# Per-image statistics, measured at ingest (``driftloop.images.stats``).
IMAGE_STATS = ("brightness", "contrast", "sharpness", "red", "green", "blue")


class PredictionSource(StrEnum):
    """Who made a row of ``predictions``: batch scoring, the server's answer, or a shadow model."""

    BATCH = "batch"
    ONLINE = "online"
    SHADOW = "shadow"
    CANARY = "canary"  # the candidate's answers to its share of a rollout's traffic


@dataclass(frozen=True)
class TableSpec:
    """One table: what a row is, its fixed columns, the project's columns beside them, its
    partitioning and the columns that identify a row (``key``; empty: the contract's key)."""

    name: Table
    row: str
    columns: Mapping[str, pl.DataType]
    data: str | None = None  # the project's own columns the table also holds; None: no others
    partition_by: tuple[str, ...] = ()
    key: tuple[str, ...] = ()
    month_of: str | None = None  # the date column the event-month partition is derived from

    def describe(self) -> str:
        """One line for people: the row, and the project's columns when there are any."""
        return self.row if self.data is None else f"{self.row}; with {self.data}"


_INGESTED = {ROW: pl.Int64(), BATCH_ID: pl.String(), SOURCE: pl.String(), INGESTED_AT: UTC_TIME}
_BY_EVENT_MONTH = {EVENT_DATE: pl.Date(), EVENT_MONTH: pl.String()}

TABLES: dict[Table, TableSpec] = {
    spec.name: spec
    for spec in (
        TableSpec(
            Table.RAW,
            "accepted input row, with its ingest batch id and time",
            {**_INGESTED, **_BY_EVENT_MONTH},
            data="the contract's stored columns, typed",
            partition_by=(EVENT_MONTH,),
            key=(BATCH_ID, ROW),
            month_of=EVENT_DATE,
        ),
        TableSpec(
            Table.QUARANTINE,
            "rejected row as text, with the rules and columns it broke",
            {
                ROW: pl.Int64(),
                RULES: pl.List(pl.String()),
                COLUMNS: pl.List(pl.String()),
                BATCH_ID: pl.String(),
                SOURCE: pl.String(),
                INGESTED_AT: UTC_TIME,
                INGEST_DATE: pl.Date(),
            },
            data="the contract's stored columns, as the text that came in",
            partition_by=(INGEST_DATE,),
            key=(BATCH_ID, ROW),
        ),
        TableSpec(
            Table.BATCHES,
            "ingest batch: source, digest, counts per rule, outcome",
            {
                "batch_id": pl.String(),
                "source": pl.String(),
                "status": pl.String(),
                "ingested_at": UTC_TIME,
                "rows_in": pl.Int64(),
                "rows_raw": pl.Int64(),
                "rows_quarantined": pl.Int64(),
                "rules": pl.String(),
                "problems": pl.String(),
                "ignored_columns": pl.List(pl.String()),
                "raw_version": pl.Int64(),
                "quarantine_version": pl.Int64(),
            },
            key=("batch_id", "ingested_at"),
        ),
        TableSpec(
            Table.FEATURES,
            "feature row, keyed by entity id and event time",
            {BATCH_ID: pl.String(), **_BY_EVENT_MONTH},
            data="the contract's key, features, segments and targets, and the derived features",
            partition_by=(EVENT_MONTH,),
            month_of=EVENT_DATE,
        ),
        TableSpec(
            Table.LABELS,
            "ground-truth value arriving after the fact",
            {**_INGESTED, **_BY_EVENT_MONTH},
            data="the contract's key and targets, typed",
            partition_by=(EVENT_MONTH,),
            month_of=EVENT_DATE,
        ),
        TableSpec(
            Table.PREDICTIONS,
            "prediction with its model version and job, from batch scoring, the server or a shadow",
            {
                PREDICTION_ID: pl.String(),
                "entity_id": pl.String(),
                "event_time": pl.Datetime("us"),
                "scored_at": UTC_TIME,
                "model_name": pl.String(),
                "model_version": pl.String(),
                "run_id": pl.String(),
                "job_id": pl.String(),
                "source": pl.String(),
                "request_id": pl.String(),
                "inputs": pl.String(),
                **_BY_EVENT_MONTH,
            },
            data="one Float64 column per target",
            partition_by=(EVENT_MONTH,),
            key=(PREDICTION_ID, "source"),
            month_of=EVENT_DATE,
        ),
        TableSpec(
            Table.MONITORING,
            "metric of one monitoring window",
            {
                "window_start": pl.Datetime("us"),
                "window_end": pl.Datetime("us"),
                "computed_at": UTC_TIME,
                "model_name": pl.String(),
                "model_version": pl.String(),
                "section": pl.String(),
                "column": pl.String(),
                "statistic": pl.String(),
                "value": pl.Float64(),
                "threshold": pl.Float64(),
                "flagged": pl.Boolean(),
                "detail": pl.String(),
            },
            key=("model_name", "model_version", "window_start", "window_end", "section", "column", "statistic"),
        ),
        TableSpec(
            Table.IMAGES,
            "accepted image, once per content: its bytes, header facts, statistics and label when known",
            {
                IMAGE_ID: pl.String(),
                CAPTURED_AT: pl.Datetime("us"),
                IMAGE_LABEL: pl.String(),
                "content": pl.Binary(),
                "format": pl.String(),
                "width": pl.Int64(),
                "height": pl.Int64(),
                "mode": pl.String(),
                "size_bytes": pl.Int64(),
                **{stat: pl.Float64() for stat in IMAGE_STATS},
                **_INGESTED,
                **_BY_EVENT_MONTH,
            },
            partition_by=(EVENT_MONTH,),
            key=(IMAGE_ID,),
            month_of=EVENT_DATE,
        ),
        TableSpec(
            Table.IMAGE_QUARANTINE,
            "refused image file, bytes kept, with the rules it broke",
            {
                ROW: pl.Int64(),
                RULES: pl.List(pl.String()),
                "detail": pl.String(),
                IMAGE_ID: pl.String(),
                IMAGE_LABEL: pl.String(),
                "content": pl.Binary(),
                "size_bytes": pl.Int64(),
                BATCH_ID: pl.String(),
                SOURCE: pl.String(),
                INGESTED_AT: UTC_TIME,
                INGEST_DATE: pl.Date(),
            },
            partition_by=(INGEST_DATE,),
            key=(BATCH_ID, ROW),
        ),
        TableSpec(
            Table.DEVICE_REPORTS,
            "a device's report on one model version: profiles and outcomes of what it served, never rows",
            {
                "report_id": pl.String(),
                "device": pl.String(),
                "model_name": pl.String(),
                "model_version": pl.String(),
                "made_at": UTC_TIME,
                "received_at": UTC_TIME,
                "since": UTC_TIME,
                "until": UTC_TIME,
                "rows": pl.Int64(),
                "labelled": pl.Int64(),
                "report": pl.String(),
            },
            key=("report_id",),
        ),
        TableSpec(
            Table.ROLLOUTS,
            "a change of a rollout's state (a canary's or an A/B test's): started, stepped, rolled back, decided",
            {
                "rollout_id": pl.String(),
                "model_name": pl.String(),
                "candidate": pl.String(),
                "champion": pl.String(),
                "steps": pl.List(pl.Float64()),
                "step": pl.Int64(),
                "status": pl.String(),
                "reason": pl.String(),
                "at": UTC_TIME,
                "details": pl.String(),
                "kind": pl.String(),
                "candidates": pl.List(pl.String()),  # an A/B test's every candidate; "candidate" is the first
            },
            key=("rollout_id", "at"),
        ),
        TableSpec(
            Table.EVENTS,
            "lifecycle decision: promotion, rejection, rollback, retrain, alert",
            {
                "event_id": pl.String(),
                "at": UTC_TIME,
                "kind": pl.String(),
                "model": pl.String(),
                "version": pl.String(),
                "stage_before": pl.String(),
                "stage_after": pl.String(),
                "champion_before": pl.String(),
                "champion_after": pl.String(),
                "reason": pl.String(),
                "details": pl.String(),
            },
            key=("event_id",),
        ),
    )
}


def spec_of(table: str) -> TableSpec:
    """The spec of ``table``; a LakeError for a name that is not a lake table."""
    try:
        return TABLES[Table(table)]
    except ValueError:
        raise LakeError(f"no lake table named '{table}'; the tables are {sorted(TABLES)}") from None


def empty(table: Table) -> pl.DataFrame:
    """A table with no rows, of ``table``'s fixed columns: what a reader gets before its first write."""
    return pl.DataFrame(schema=dict(TABLES[table].columns))


def conform(spec: TableSpec, frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` in the shape of ``spec``'s table: its event month derived, every fixed column
    there (null where the writer had none) and of its declared type.

    A column that cannot be cast is refused, naming it, as is a column a table without project
    columns does not have: the lake never stores a row in a shape its readers do not expect.
    """
    frame = _derive(spec, frame)
    if spec.data is None:
        unknown = [c for c in frame.columns if c not in spec.columns]
        if unknown:
            raise LakeError(f"table '{spec.name}' has no column(s) {unknown}; its columns are {list(spec.columns)}")
    schema = frame.schema
    fixes = [
        pl.lit(None, dtype).alias(name) if name not in schema else pl.col(name).cast(dtype)
        for name, dtype in spec.columns.items()
        if schema.get(name) != dtype
    ]
    if not fixes:
        return frame
    try:
        return frame.with_columns(fixes)
    except pl.exceptions.PolarsError as exc:
        wrong = {n: str(schema[n]) for n, d in spec.columns.items() if n in schema and schema[n] != d}
        raise LakeError(
            f"rows for table '{spec.name}' have column(s) of the wrong type {wrong}; the table stores "
            f"{ {n: str(spec.columns[n]) for n in wrong} }: {exc}"
        ) from exc


def _derive(spec: TableSpec, frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with its table's event month, from the event date, when the writer left it out."""
    source = spec.month_of
    if source is None or EVENT_MONTH in frame.columns:
        return frame
    if source not in frame.columns:
        raise LakeError(
            f"rows for table '{spec.name}' lack its partition column {EVENT_MONTH!r} and the {source!r} it comes from"
        )
    # Formatted once per distinct date, not per row (strftime of 1M rows took 0.12 s).
    dates = frame.get_column(source).unique()
    months = pl.col(source).replace_strict(dates, dates.dt.strftime("%Y-%m"), return_dtype=pl.String)
    return frame.with_columns(months.alias(EVENT_MONTH))
