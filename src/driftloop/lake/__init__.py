"""The lake: every Delta table of a project under one root, versioned and readable by Polars,
DuckDB, pandas and Spark.

``tables`` describes each table once, as data (its rows, columns, partitioning and key);
``where`` is a selection of rows; ``write`` holds the write paths (a commit of Polars-written
files through ``files``, or ``write_deltalake`` for a schema change), ``read`` the scans and
windows, ``maintenance`` compaction and history; ``lake`` the :class:`Lake` a project works on.

The tables' descriptions load with the package; the Delta-backed parts (:class:`Lake`, the
maintenance types) on first use, so what only names tables and columns (a device scoring a
bundle) needs no Delta library.
"""

from typing import TYPE_CHECKING

from driftloop.lake.tables import (
    BATCH_ID,
    CAPTURED_AT,
    COLUMNS,
    EVENT_DATE,
    EVENT_MONTH,
    IMAGE_ID,
    IMAGE_LABEL,
    IMAGE_STATS,
    INGEST_DATE,
    INGESTED_AT,
    PREDICTION_ID,
    ROW,
    RULES,
    SOURCE,
    TABLES,
    PredictionSource,
    Table,
    TableSpec,
    conform,
    empty,
)
from driftloop.lake.where import Where
from driftloop.lazy import lazy_names

if TYPE_CHECKING:
    from driftloop.lake.lake import Lake
    from driftloop.lake.maintenance import Compaction, TableVersion

_LAZY = {
    "Lake": "driftloop.lake.lake",
    "Compaction": "driftloop.lake.maintenance",
    "TableVersion": "driftloop.lake.maintenance",
}


__getattr__ = lazy_names(__name__, _LAZY)

__all__ = [
    "BATCH_ID",
    "CAPTURED_AT",
    "COLUMNS",
    "EVENT_DATE",
    "EVENT_MONTH",
    "IMAGE_ID",
    "IMAGE_LABEL",
    "IMAGE_STATS",
    "INGESTED_AT",
    "INGEST_DATE",
    "PREDICTION_ID",
    "ROW",
    "RULES",
    "SOURCE",
    "TABLES",
    "Compaction",
    "Lake",
    "PredictionSource",
    "Table",
    "TableSpec",
    "TableVersion",
    "Where",
    "conform",
    "empty",
]
