"""The Polars engine: the stages in this process, on Polars frames.

Its operations are the Polars implementations that live beside their descriptions
(:func:`~driftloop.data.validate.check_batch`, :meth:`~driftloop.features.FeatureSet.apply`,
:func:`~driftloop.profiles.profile`): single requests and the edge runtime use those directly,
with no engine in between, so what a batch and a request compute cannot drift apart.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from driftloop.data.contract import Contract
from driftloop.data.sources import to_polars
from driftloop.data.validate import CheckResult, check_batch
from driftloop.engine.base import Scorer, beside
from driftloop.features import FeatureSet
from driftloop.lake import Lake
from driftloop.profiles import Profile, profile


class PolarsEngine:
    """Every operation on Polars frames (a lazy frame is collected; pandas and Arrow are converted)."""

    name = "polars"

    def from_polars(self, frame: pl.DataFrame) -> pl.DataFrame:
        return frame

    def to_polars(self, frame: Any) -> pl.DataFrame:
        return to_polars(frame)

    def count(self, frame: Any) -> int:
        return to_polars(frame).height

    def scan(self, lake: Lake, table: str) -> pl.LazyFrame:
        return lake.scan(table)

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

    def profile(
        self, frame: Any, numeric: list[str], categorical: list[str], *, like: Profile | None = None
    ) -> Profile:
        return profile(to_polars(frame), numeric, categorical, like=like)
