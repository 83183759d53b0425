"""Performance once labels arrive: predictions joined to ground truth, metrics per target,
residuals, and how much worse than the model's own test metrics the window is.

Ground truth for a row is its latest label in the ``labels`` table (corrections win), or
else the target value its features row already carried (:mod:`driftloop.truth`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import polars as pl

from driftloop.data.contract import Contract
from driftloop.data.truth import with_truth
from driftloop.model.metrics import HIGHER_IS_BETTER, calibration, class_indices, confusion, target_metrics
from driftloop.runtime.targets import prediction_columns, probability_column
from driftloop.settings.promote import PromoteSettings

ACTUAL = "__actual_"


@dataclass(frozen=True)
class TargetPerformance:
    """How one target did on the window's labelled rows, beside the model's test metrics."""

    target: str
    rows: int
    metrics: dict[str, float]
    residual_mean: float
    residual_std: float
    test_metrics: dict[str, float]
    worsening: float  # of the decisive metric, relative to the test window (0.2 = 20% worse)
    metric: str = "mae"  # the decisive metric of this target
    # A label's classes, its confusion counts (actual rows, predicted columns) and calibration
    # curve per class (see driftloop.model.metrics.calibration); None for a number.
    classes: list[str] | None = None
    confusion: list[list[int]] | None = None
    calibration: dict[str, list[list[float]]] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def actuals(contract: Contract, features: pl.DataFrame, labels: pl.DataFrame | None) -> pl.DataFrame:
    """Ground truth per key of ``features``: the latest label, else the row's own target value."""
    truth = with_truth(features.select(*contract.key, *contract.targets), labels, contract)
    return truth.select(*contract.key, *(pl.col(t).alias(ACTUAL + t) for t in contract.targets))


def evaluate(
    predictions: pl.DataFrame,
    truth: pl.DataFrame,
    contract: Contract,
    test_metrics: dict[str, dict[str, float]],
    promote: PromoteSettings,
) -> list[TargetPerformance]:
    """Metrics of the window's predictions against ``truth`` (from :func:`actuals`); each
    target's worsening is of its decisive metric (``promote.metric`` for a number,
    ``promote.class_metric`` for a label)."""
    keyed = predictions.with_columns(key_columns(contract))
    joined = keyed.join(truth, on=contract.key, how="inner")
    results = []
    for target in contract.targets:
        classes = contract.columns[target].classes
        outputs = prediction_columns(contract)[target]
        pairs = joined.select(*outputs, ACTUAL + target).drop_nulls()
        if pairs.is_empty():
            continue
        values = target_metrics(pairs.get_column(ACTUAL + target), pairs.select(outputs), target, classes)
        residuals = (
            pairs.get_column(target) - pairs.get_column(ACTUAL + target) if classes is None else pl.Series([0.0])
        )
        test = test_metrics.get(target, {})
        metric = promote.decisive(values)
        results.append(
            TargetPerformance(
                target,
                pairs.height,
                values,
                float(residuals.mean() or 0.0),  # type: ignore[arg-type]
                float(residuals.std() or 0.0),  # type: ignore[arg-type]
                test,
                worsening(values[metric], test.get(metric), HIGHER_IS_BETTER[metric]),
                metric,
                *(_label_views(pairs, target, classes) if classes is not None else ()),
            )
        )
    return results


def _label_views(
    pairs: pl.DataFrame, target: str, classes: list[str]
) -> tuple[list[str], list[list[int]], dict[str, list[list[float]]]]:
    """A label's classes, confusion counts and calibration curves on the window's pairs."""
    actual = class_indices(pairs.get_column(ACTUAL + target), classes)
    known = ~np.isnan(actual)
    probabilities = pairs.select(probability_column(target, c) for c in classes).to_numpy()[known]
    counts = confusion(actual[known], probabilities).tolist()
    return classes, counts, calibration(actual[known], probabilities, classes)


def key_columns(contract: Contract) -> list[pl.Expr]:
    """The contract's key columns rebuilt from a prediction row's entity id and event time."""
    columns = contract.ids_from_entity(pl.col("entity_id"))
    if contract.clock is not None:
        columns.append(contract.clock.from_instants(pl.col("event_time")))
    return columns


def worsening(value: float, reference: float | None, higher_is_better: bool) -> float:
    """How much worse ``value`` is than ``reference`` (0.2: 20% worse; negative: better); 0 without a reference."""
    if reference is None or value != value:
        return 0.0
    scale = abs(reference) if abs(reference) > 1e-12 else 1.0
    return (reference - value) / scale if higher_is_better else (value - reference) / scale
