"""The Polars engine: the stages in this process, on Polars frames.

Its operations are the Polars implementations that live beside their descriptions
(:func:`~driftloop.data.validate.check_batch`, :meth:`~driftloop.features.FeatureSet.apply`,
:func:`~driftloop.profiles.profile`): single requests and the edge runtime use those directly,
with no engine in between, so what a batch and a request compute cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from driftloop.data.contract import Contract
from driftloop.data.sources import read_rows, to_polars
from driftloop.data.validate import CheckResult, check_batch
from driftloop.engine.base import BatchFunction, Bound, Scorer, beside
from driftloop.errors import ConfigError
from driftloop.features import FeatureSet
from driftloop.profiles import Profile, profile

if TYPE_CHECKING:
    from driftloop.lake import Lake

# Feature bytes a stage reads per chunk (batch prediction never splits a day); scoring and
# writing a chunk hold about three times this (1M rows x 22 columns, 200 MB by
# ``predict.row_bytes``, peaked 510 MB above the process's start). A budget in bytes, not rows,
# keeps a wide model's chunks in memory, and chunks this large keep the fixed cost of a chunk
# small: each is one more Delta commit and one more scan of the table (1M rows took 1.6 s as one
# chunk, 1.9 s as four).
CHUNK_BYTES = 256 * 2**20


class PolarsEngine:
    """Every operation on Polars frames (a lazy frame is collected; pandas and Arrow are converted)."""

    name = "polars"
    chunk_bytes: int | None = CHUNK_BYTES

    def holds(self, frame: Any) -> bool:
        return isinstance(frame, pl.DataFrame)

    def from_polars(self, frame: pl.DataFrame) -> pl.DataFrame:
        return frame

    def to_polars(self, frame: Any) -> pl.DataFrame:
        return to_polars(frame)

    def count(self, frame: Any) -> int:
        return to_polars(frame).height

    def scan(self, lake: Lake, table: str, *, version: int | None = None) -> pl.LazyFrame:
        return lake.scan(table, version=version)

    def window(
        self, lake: Lake, table: str, since: Bound, until: Bound, time_column: str, columns: list[str] | None
    ) -> pl.DataFrame:
        return lake.read(table, since=since, until=until, time_column=time_column, columns=columns)

    def read_file(self, path: Path) -> pl.DataFrame:
        return read_rows(path)

    def map_batches(self, frame: Any, function: BatchFunction) -> pl.DataFrame:
        return function(to_polars(frame))

    def check(self, frame: Any, contract: Contract, *, seen_keys: Any | None = None) -> CheckResult[pl.DataFrame]:
        if seen_keys is not None and not isinstance(seen_keys, pl.LazyFrame):
            seen_keys = to_polars(seen_keys).lazy()
        return check_batch(to_polars(frame), contract, seen_keys=seen_keys)

    def add_features(self, frame: Any, features: FeatureSet) -> pl.DataFrame:
        added: pl.DataFrame = features.apply(to_polars(frame))
        return added

    def score(self, frame: Any, scorer: Scorer) -> pl.DataFrame:
        rows = to_polars(frame)
        return beside(rows, scorer(rows))

    def distribute(self, function: Callable[[], Any], processes: int) -> Any:
        if processes != 1:
            raise ConfigError(
                f"[train] processes = {processes}: data-parallel training is started by Spark's TorchDistributor; "
                'set [project] engine = "spark", or processes = 1'
            )
        return function()

    def profile(
        self, frame: Any, numeric: list[str], categorical: list[str], *, like: Profile | None = None
    ) -> Profile:
        return profile(to_polars(frame), numeric, categorical, like=like)
