"""Feature materialisation on Spark: the project's definitions compiled through Narwhals to
Spark expressions, the same definitions the Polars engine and a served request apply."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyspark.sql.functions as sf

from driftloop.data.clock import UTC_ZONE
from driftloop.data.contract import ColumnType
from driftloop.features import DatetimeFeature, FeatureSet

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


def with_features(rows: DataFrame, features: FeatureSet) -> DataFrame:
    """``rows`` with the derived columns, compiled through Narwhals to Spark.

    A Spark session has one time zone (UTC, driftloop's), so Narwhals cannot read an instant
    on another zone's clock; the calendar parts of a zoned contract are taken instead from the
    instants moved to that zone's wall clock (``from_utc_timestamp``), then the instants come back.
    """
    zone = features.contract.timezone
    zoned = [
        d.column
        for d in features.definitions
        if isinstance(d, DatetimeFeature) and features.contract.columns[d.column].type is ColumnType.DATETIME
    ]
    if zone == UTC_ZONE or not zoned:
        added: DataFrame = features.apply(rows)
        return added
    order = rows.columns
    kept = {c: f"__instant__{c}" for c in dict.fromkeys(zoned)}
    for column, instant in kept.items():
        rows = rows.withColumnRenamed(column, instant)
        wall = sf.from_utc_timestamp(sf.col(f"`{instant}`").cast("timestamp"), zone).cast("timestamp_ntz")
        rows = rows.withColumn(column, wall)
    on_wall = FeatureSet(features.definitions, features.contract.model_copy(update={"timezone": UTC_ZONE}))
    added = on_wall.apply(rows).drop(*kept)
    for column, instant in kept.items():
        added = added.withColumnRenamed(instant, column)
    return added.select(*(sf.col(f"`{c}`") for c in order + [c for c in added.columns if c not in order]))
