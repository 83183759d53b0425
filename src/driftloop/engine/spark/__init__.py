"""The Spark engine: the stages' four operations on Spark frames, on a cluster or ``local[*]``.

``session`` makes the session from ``[spark]``; ``frames`` moves frames between Polars and
Spark; ``check``, ``features``, ``score`` and ``profile`` are the four operations; ``failures``
translates Spark's exceptions. PySpark is imported only when the engine is used (``pip install
'driftloop[spark]'``): the operations' modules import it, and are imported by the methods.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from driftloop.data.contract import Contract
from driftloop.data.validate import CheckResult
from driftloop.engine.base import BatchFunction, Bound, Scorer
from driftloop.engine.spark.failures import spark_failures
from driftloop.engine.spark.session import SparkOptions, spark_session
from driftloop.errors import EngineError
from driftloop.features import FeatureSet
from driftloop.lake import Where
from driftloop.profiles import Profile

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from driftloop.lake import Lake


class SparkEngine:
    """Every operation on Spark frames; a Polars, pandas or Arrow frame given is sent to Spark first."""

    name = "spark"
    chunk_bytes: int | None = None  # rows stay on the executors; a stage's whole window is one job

    def __init__(self, options: SparkOptions | None = None) -> None:
        self.options = options or SparkOptions()
        self._session: SparkSession | None = None

    @property
    def session(self) -> SparkSession:
        """The Spark session, started on first use."""
        if self._session is None:
            self._session = spark_session(self.options)
        return self._session

    def holds(self, frame: Any) -> bool:
        from pyspark.sql import DataFrame as SparkFrame

        return isinstance(frame, SparkFrame)

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

    def scan(self, lake: Lake, table: str, *, version: int | None = None) -> DataFrame:
        with spark_failures(f"reading table {table!r}"):
            return lake.scan_spark(table, self.session, version=version)

    def window(
        self, lake: Lake, table: str, since: Bound, until: Bound, time_column: str, columns: list[str] | None
    ) -> DataFrame:
        where = _window(time_column, since, until)
        with spark_failures(f"reading a window of table {table!r}"):
            rows = lake.scan_spark(table, self.session, where=where)
            return rows if columns is None else rows.select(*(f"`{c}`" for c in columns))

    def map_batches(self, frame: Any, function: BatchFunction) -> DataFrame:
        from driftloop.engine.spark.batches import map_on_spark

        with spark_failures("applying a function to each batch of rows"):
            return map_on_spark(self._spark(frame), function)

    def read_file(self, path: Path) -> DataFrame:
        from driftloop.engine.spark.read import read_on_spark

        with spark_failures(f"reading {path}"):
            return read_on_spark(self.session, path)

    def check(self, frame: Any, contract: Contract, *, seen_keys: Any | None = None) -> CheckResult[DataFrame]:
        from driftloop.engine.spark.check import check_on_spark

        with spark_failures("checking a batch against the contract"):
            seen = None if seen_keys is None else self._spark(_key_columns(seen_keys, contract))
            return check_on_spark(self._spark(frame), contract, seen_keys=seen)

    def add_features(self, frame: Any, features: FeatureSet) -> DataFrame:
        from driftloop.engine.spark.features import with_features

        with spark_failures("computing features"):
            # Kept where computed once a job reads them (a stage counts its rows, then writes
            # them): the definitions run once, not once per job.
            return with_features(self._spark(frame), features).localCheckpoint(eager=False)

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

    def distribute(self, function: Callable[[], Any], processes: int) -> Any:
        if processes == 1:
            return function()
        from pyspark.ml.torch.distributor import TorchDistributor

        # A local master's processes run on the driver; a cluster's, one per task on the executors.
        local = self.options.remote is None and self.options.master.startswith("local")
        with spark_failures(f"training on {processes} processes"):
            self.session  # noqa: B018  (TorchDistributor reads the running session's conf)
            distributor = TorchDistributor(num_processes=processes, local_mode=local, use_gpu=False)
            try:
                return distributor.run(function)
            except RuntimeError as exc:  # torchrun's processes failed: their own error is in its last lines
                lines = [line for line in str(exc).splitlines() if line.strip()]
                raise EngineError(
                    f"data-parallel training on {processes} processes failed: {' | '.join(lines[-6:])}"
                ) from exc

    def _spark(self, frame: Any) -> DataFrame:
        if self.holds(frame):
            return frame  # type: ignore[no-any-return]
        from driftloop.data.sources import to_polars

        return self.from_polars(to_polars(frame))


def _window(column: str, since: Bound, until: Bound) -> Where | None:
    """``since <= column < until`` as a selection (an open end: the other alone; both: none)."""
    if since is not None and until is not None:
        return Where(between={column: (since, until)})
    if since is None and until is None:
        return None
    raise EngineError(f"a window of {column!r} needs both ends on Spark; got [{since}, {until})")


def _key_columns(rows: Any, contract: Contract) -> Any:
    """The key columns of stored rows (a Polars scan is read for those only)."""
    if isinstance(rows, pl.LazyFrame):
        return rows.select(contract.key).collect()
    return rows


__all__ = ["SparkEngine", "SparkOptions", "spark_session"]
