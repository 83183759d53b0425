"""Online traffic as monitoring sees it: the challenger's shadow outputs beside the champion's
(the inputs the server logged are read back by :mod:`driftloop.monitor.logged`).

:func:`compare_shadow` pairs the challenger's outputs with the champion's for the same
requests: how far apart they are, and, where labels exist, which of the two was closer.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import polars as pl

from driftloop.data.contract import Contract
from driftloop.model.metrics import target_metrics
from driftloop.monitor.logged import key_columns
from driftloop.monitor.performance import ACTUAL
from driftloop.runtime.targets import prediction_columns

SHADOW = "shadow_"  # prefix of the challenger's outputs beside the champion's


@dataclass(frozen=True)
class ShadowComparison:
    """The challenger against the champion on the same live requests, for one target."""

    target: str
    challenger_version: str
    rows: int  # requests both scored
    mean_abs_difference: float  # between the two models' outputs
    labelled_rows: int
    champion: dict[str, float]  # metrics on the labelled rows (empty without labels)
    challenger: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def compare_shadow(
    champion: pl.DataFrame, shadow: pl.DataFrame, truth: pl.DataFrame, contract: Contract
) -> list[ShadowComparison]:
    """The challenger's shadow outputs against the champion's for the same predictions (paired
    by prediction id), and both against ``truth`` (from :func:`~driftloop.monitor.performance.actuals`).
    For a label the difference is the share of rows where the two predict another class."""
    if shadow.is_empty() or champion.is_empty():
        return []
    targets = contract.targets
    outputs = prediction_columns(contract)
    every = [c for t in targets for c in outputs[t]]
    pairs = champion.select("prediction_id", *every, *key_columns(contract)).join(
        shadow.select("prediction_id", "model_version", *(pl.col(c).alias(SHADOW + c) for c in every)),
        on="prediction_id",
        how="inner",
    )
    labelled = pairs.join(truth, on=contract.key, how="inner")
    results = []
    for version in sorted(pairs.get_column("model_version").unique().to_list()):
        mine, scored = (
            pairs.filter(pl.col("model_version") == version),
            labelled.filter(pl.col("model_version") == version),
        )
        for target in targets:
            classes = contract.columns[target].classes
            both = mine.select(target, SHADOW + target).drop_nulls()
            theirs_columns = [SHADOW + c for c in outputs[target]]
            known = scored.select(*outputs[target], *theirs_columns, ACTUAL + target).drop_nulls()
            difference = both.get_column(target) != both.get_column(SHADOW + target)
            if classes is None:
                difference = (both.get_column(target) - both.get_column(SHADOW + target)).abs()
            gap = difference.cast(pl.Float64).mean()
            theirs = known.select(pl.col(SHADOW + c).alias(c) for c in outputs[target])
            results.append(
                ShadowComparison(
                    target=target,
                    challenger_version=str(version),
                    rows=both.height,
                    mean_abs_difference=float(gap) if isinstance(gap, int | float) else float("nan"),
                    labelled_rows=known.height,
                    champion=_metrics(known.get_column(ACTUAL + target), known, target, classes),
                    challenger=_metrics(known.get_column(ACTUAL + target), theirs, target, classes),
                )
            )
    return results


def _metrics(actual: pl.Series, predicted: pl.DataFrame, target: str, classes: list[str] | None) -> dict[str, float]:
    return target_metrics(actual, predicted, target, classes) if actual.len() else {}
