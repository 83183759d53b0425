"""The Spark engine: the stages' four operations on Spark frames, on a cluster or ``local[*]``.

``session`` makes the session from ``[spark]``; ``frames`` moves frames between Polars and
Spark; ``check``, ``features``, ``score`` and ``profile`` are the four operations; ``failures``
translates Spark's exceptions. PySpark is imported only when the engine is used (``pip install
'driftloop[spark]'``): the operations' modules import it, and are imported by the methods.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import polars as pl

from driftloop.data.contract import Contract
from driftloop.data.validate import CheckResult
from driftloop.engine.base import Scorer
from driftloop.engine.spark.failures import spark_failures
from driftloop.engine.spark.session import SparkOptions, spark_session
from driftloop.features import FeatureSet
from driftloop.lake import Lake
from driftloop.profiles import Profile

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


class SparkEngine:
    """Every operation on Spark frames; a Polars, pandas or Arrow frame given is sent to Spark first."""

    name = "spark"

    def __init__(self, options: SparkOptions | None = None) -> None:
        self.options = options or SparkOptions()
        self._session: SparkSession | None = None

    @property
    def session(self) -> SparkSession:
        """The Spark session, started on first use."""
        if self._session is None:
            self._session = spark_session(self.options)
        return self._session

    def from_polars(self, frame: pl.DataFrame) -> DataFrame:
        from driftloop.engine.spark.frames import to_spark

        with spark_failures("sending rows to Spark"):
            return to_spark(self.session, frame)

    def to_polars(self, frame: Any) -> pl.DataFrame:
        from driftloop.engine.spark.frames import to_polars

        if isinstance(frame, pl.DataFrame):
            return frame
        with spark_failures("collecting rows"):
            return to_polars(frame)

    def count(self, frame: Any) -> int:
        with spark_failures("counting rows"):
            return self._spark(frame).count()

    def scan(self, lake: Lake, table: str) -> DataFrame:
        with spark_failures(f"reading table {table!r}"):
            return lake.scan_spark(table, self.session)

    def check(self, frame: Any, contract: Contract, *, seen_keys: Any | None = None) -> CheckResult[DataFrame]:
        from driftloop.engine.spark.check import check_on_spark

        with spark_failures("checking a batch against the contract"):
            seen = None if seen_keys is None else self._spark(_key_columns(seen_keys, contract))
            return check_on_spark(self._spark(frame), contract, seen_keys=seen)

    def add_features(self, frame: Any, features: FeatureSet) -> DataFrame:
        from driftloop.engine.spark.features import with_features

        with spark_failures("computing features"):
            return with_features(self._spark(frame), features)

    def score(self, frame: Any, scorer: Scorer) -> DataFrame:
        from driftloop.engine.spark.score import score_on_spark

        with spark_failures("scoring rows"):
            return score_on_spark(self._spark(frame), scorer)

    def profile(
        self, frame: Any, numeric: list[str], categorical: list[str], *, like: Profile | None = None
    ) -> Profile:
        from driftloop.engine.spark.profile import profile_on_spark

        with spark_failures("profiling columns"):
            return profile_on_spark(self._spark(frame), numeric, categorical, like=like)

    def _spark(self, frame: Any) -> DataFrame:
        from pyspark.sql import DataFrame as SparkFrame

        if isinstance(frame, SparkFrame):
            return frame
        from driftloop.data.sources import to_polars

        return self.from_polars(to_polars(frame))


def _key_columns(rows: Any, contract: Contract) -> Any:
    """The key columns of stored rows (a Polars scan is read for those only)."""
    if isinstance(rows, pl.LazyFrame):
        return rows.select(contract.key).collect()
    return rows


__all__ = ["SparkEngine", "SparkOptions", "spark_session"]
