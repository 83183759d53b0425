"""Batch scoring on Spark: the package's scoring function applied to each Arrow batch of each
partition (:mod:`.batches`), its outputs beside the rows."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

import polars as pl

from driftloop.engine.base import Scorer, beside
from driftloop.engine.spark.batches import map_on_spark

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


def score_on_spark(frame: DataFrame, scorer: Scorer) -> DataFrame:
    """``frame`` with ``scorer``'s outputs beside each row. The first row is scored on the
    driver first: it gives the outputs' types, and a scorer that cannot run fails there, before
    a job is started."""
    return map_on_spark(frame, partial(_scored, scorer=scorer), probe_rows=1)


def _scored(rows: pl.DataFrame, scorer: Scorer) -> pl.DataFrame:
    return beside(rows, scorer(rows))
