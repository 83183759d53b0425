"""What the stages need from a dataframe engine, as one small interface.

Four operations, each given the same descriptions whatever the engine: the contract check (the
contract's rules), feature materialisation (the feature definitions), batch scoring (the
package's scoring function, applied batch by batch) and profiles (the reference's bins). An
engine compiles them to its own frames: Polars in this process, or a cluster's (Spark). The
stages never ask which engine they run on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import polars as pl

from driftloop.data.contract import Contract
from driftloop.data.validate import CheckResult
from driftloop.errors import PredictError
from driftloop.features import FeatureSet
from driftloop.lake import Lake
from driftloop.profiles import Profile

# A batch of typed rows in, one output column per target out, row for row (a package's
# ``predict_valid``). Engines apply it to the batches they hold; it always sees a Polars frame.
Scorer = Callable[[pl.DataFrame], pl.DataFrame]


class Engine(Protocol):
    """A dataframe engine as the stages use it; ``frame`` is the engine's own kind of frame."""

    name: str

    def from_polars(self, frame: pl.DataFrame) -> Any:
        """``frame`` as this engine's kind of frame."""
        ...

    def to_polars(self, frame: Any) -> pl.DataFrame:
        """One of this engine's frames, small enough for one process, as Polars."""
        ...

    def count(self, frame: Any) -> int:
        """The rows of one of this engine's frames."""
        ...

    def scan(self, lake: Lake, table: str) -> Any:
        """The latest version of a lake table as this engine's (lazy) frame."""
        ...

    def check(self, frame: Any, contract: Contract, *, seen_keys: Any | None = None) -> CheckResult[Any]:
        """Split ``frame`` by the contract: valid rows typed, rejected rows as text with their rules,
        batch-level problems; ``seen_keys`` holds rows already stored, for key duplicates."""
        ...

    def add_features(self, frame: Any, features: FeatureSet) -> Any:
        """``frame`` with the columns ``features`` derive, computed row by row."""
        ...

    def score(self, frame: Any, scorer: Scorer) -> Any:
        """``frame`` with the outputs ``scorer`` gives for its rows beside them, row for row."""
        ...

    def profile(
        self, frame: Any, numeric: list[str], categorical: list[str], *, like: Profile | None = None
    ) -> Profile:
        """The profile of the columns of ``frame`` (numeric ones on ``like``'s bins when given)."""
        ...


def beside(rows: pl.DataFrame, outputs: pl.DataFrame) -> pl.DataFrame:
    """``rows`` with a scorer's ``outputs`` beside them, checked to be one per row and not named
    as an input (what every engine's ``score`` gives)."""
    if outputs.height != rows.height:
        raise PredictError(f"the scorer gave {outputs.height} output rows for {rows.height} input rows")
    clash = sorted(set(outputs.columns) & set(rows.columns))
    if clash:
        raise PredictError(f"the scorer's outputs {clash} have the names of input columns")
    return pl.concat([rows, outputs], how="horizontal")
