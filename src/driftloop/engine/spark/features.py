"""Feature materialisation on Spark: the project's definitions applied to each Arrow batch of
each partition by the Polars code a served request runs (:mod:`.batches`).

Why not the definitions compiled to Spark expressions (Narwhals can): Spark's sine and cosine
are the JVM's, Polars' are Rust's, and they differ in the last bit. A cyclic calendar part takes
seven or twenty-four distinct values, which a reference profile's quantile edges sit exactly on;
a value one bit below its edge falls into the bin before, and on the demo's first tick the day of
week read as drifted (PSI 1.18 against 0.008 with Polars' values). Training, batch, online and
edge scoring must compute the same bits, so every engine runs the same code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from driftloop.engine.spark.batches import map_on_spark
from driftloop.features import FeatureSet

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


def with_features(rows: DataFrame, features: FeatureSet) -> DataFrame:
    """``rows`` with the derived columns of ``features``, computed on the executors. The
    definitions are first applied to no rows on the driver (rows may come from a window that
    dedupes keys, which a first row would cost a whole job): that gives the columns' types, and
    a missing input fails there, not in a job."""
    return map_on_spark(rows, features.apply, probe_rows=0)
