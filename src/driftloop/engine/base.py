"""What the stages need from a dataframe engine, as one small interface.

Four operations, each given the same descriptions whatever the engine: the contract check (the
contract's rules), feature materialisation (the feature definitions), batch scoring (the
package's scoring function, applied batch by batch) and profiles (the reference's bins). Around
them, the engine reads a batch file and the lake's tables into its own frames, and runs any
Polars function batch by batch (``map_batches``: how a prediction's bookkeeping is computed
where its rows are). An engine compiles them to its own frames: Polars in this process, or a
cluster's (Spark). The stages never ask which engine they run on; they ask how many bytes of
rows the engine lets them hold in this process at once (``chunk_bytes``), which only an
in-process engine bounds.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import polars as pl

from driftloop.data.contract import Contract
from driftloop.data.validate import CheckResult
from driftloop.errors import PredictError
from driftloop.features import FeatureSet
from driftloop.profiles import Profile

if TYPE_CHECKING:
    from driftloop.lake import Lake

# A batch of typed rows in, one output column per target out, row for row (a package's
# ``predict_valid``). Engines apply it to the batches they hold; it always sees a Polars frame.
Scorer = Callable[[pl.DataFrame], pl.DataFrame]
# Any function of a batch of rows whose result depends on that batch alone (a batch's rows in,
# rows out: the same rows with columns added, or a summary of them).
BatchFunction = Callable[[pl.DataFrame], pl.DataFrame]
# One end of a window of event time, as the time column's values compare: an instant, or a day
# for a date column (None: that end is open).
Bound = datetime | date | None


class Engine(Protocol):
    """A dataframe engine as the stages use it; ``frame`` is the engine's own kind of frame."""

    name: str
    # Bytes of rows a stage may hold in this process at once (it reads and writes in chunks of
    # about this size); None when the engine's rows never come to this process (a cluster's).
    chunk_bytes: int | None

    def holds(self, frame: Any) -> bool:
        """Whether ``frame`` is already this engine's kind of frame (a Spark one for Spark)."""
        ...

    def from_polars(self, frame: pl.DataFrame) -> Any:
        """``frame`` as this engine's kind of frame."""
        ...

    def to_polars(self, frame: Any) -> pl.DataFrame:
        """One of this engine's frames, small enough for one process, as Polars."""
        ...

    def count(self, frame: Any) -> int:
        """The rows of one of this engine's frames."""
        ...

    def scan(self, lake: Lake, table: str, *, version: int | None = None) -> Any:
        """A lake table (at ``version``, or the latest) as this engine's lazy frame."""
        ...

    def window(
        self, lake: Lake, table: str, since: Bound, until: Bound, time_column: str, columns: list[str] | None
    ) -> Any:
        """The rows of a lake table with ``since <= time_column < until`` (only ``columns`` when
        given), reading only the partitions the window spans."""
        ...

    def read_file(self, path: Path) -> Any:
        """A batch file (:data:`~driftloop.data.sources.READERS`) as this engine's frame: CSV as
        text, Parquet and NDJSON with their own types; a SourceError names a file it cannot read."""
        ...

    def map_batches(self, frame: Any, function: BatchFunction) -> Any:
        """``function`` applied to each batch of ``frame``'s rows, the results as one frame."""
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

    def distribute(self, function: Callable[[], Any], processes: int) -> Any:
        """``function`` run on ``processes`` processes at once, each with PyTorch's distributed
        environment set (its rank, the world's size, where to meet), as data-parallel training
        needs; what rank 0 returns."""
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
