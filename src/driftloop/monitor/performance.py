"""Performance once labels arrive: predictions joined to ground truth, metrics per target,
residuals, and how much worse than the model's own test metrics the window is.

The join runs on the project's engine; the metrics need each labelled row's prediction and
truth, and only those columns come to this process.

Ground truth for a row is its latest label in the ``labels`` table (corrections win), or
else the target value its features row already carried (:mod:`driftloop.truth`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import partial
from typing import Any

import narwhals as nw
import numpy as np
import polars as pl

from driftloop.data.contract import Contract
from driftloop.data.truth import truth_of
from driftloop.engine import Engine
from driftloop.model.metrics import HIGHER_IS_BETTER, calibration, class_indices, confusion, target_metrics
from driftloop.monitor.logged import key_columns
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


def actuals(contract: Contract, features: Any, labels: Any | None) -> Any:
    """Ground truth per key of ``features`` (a Polars frame or any engine's; ``labels`` of the
    same kind): the latest label, else the row's own target value."""
    rows = nw.from_native(features).select(*contract.key, *contract.targets).to_native()
    truth = nw.from_native(truth_of(rows, labels, contract))
    return truth.select(*contract.key, *(nw.col(t).alias(ACTUAL + t) for t in contract.targets)).to_native()


def labelled_pairs(engine: Engine, predictions: Any, truth: Any, contract: Contract) -> pl.DataFrame:
    """Each prediction that has a truth: its outputs beside the truth of every target. The join
    runs on ``engine`` (where the rows are); only these columns of labelled rows come here."""
    keyed = nw.from_native(engine.map_batches(predictions, partial(_with_keys, contract=contract)))
    outputs = [c for columns in prediction_columns(contract).values() for c in columns]
    known = [ACTUAL + t for t in contract.targets]
    joined = keyed.join(nw.from_native(truth), on=contract.key, how="inner").select(*outputs, *known)
    labelled = joined.filter(nw.any_horizontal(*(~nw.col(c).is_null() for c in known), ignore_nulls=True))
    return engine.to_polars(labelled.to_native())


def _with_keys(predictions: pl.DataFrame, contract: Contract) -> pl.DataFrame:
    return predictions.with_columns(key_columns(contract))


def evaluate(
    pairs: pl.DataFrame,
    contract: Contract,
    test_metrics: dict[str, dict[str, float]],
    promote: PromoteSettings,
) -> list[TargetPerformance]:
    """Metrics of labelled predictions (``pairs``, from :func:`labelled_pairs`); each target's
    worsening is of its decisive metric (``promote.metric`` for a number,
    ``promote.class_metric`` for a label) against ``test_metrics``."""
    results = []
    for target in contract.targets:
        classes = contract.columns[target].classes
        outputs = prediction_columns(contract)[target]
        target_pairs = pairs.select(*outputs, ACTUAL + target).drop_nulls()
        if target_pairs.is_empty():
            continue
        values = target_metrics(target_pairs.get_column(ACTUAL + target), target_pairs.select(outputs), target, classes)
        residuals = (
            target_pairs.get_column(target) - target_pairs.get_column(ACTUAL + target)
            if classes is None
            else pl.Series([0.0])
        )
        test = test_metrics.get(target, {})
        metric = promote.decisive(values)
        results.append(
            TargetPerformance(
                target,
                target_pairs.height,
                values,
                float(residuals.mean() or 0.0),  # type: ignore[arg-type]
                float(residuals.std() or 0.0),  # type: ignore[arg-type]
                test,
                worsening(values[metric], test.get(metric), HIGHER_IS_BETTER[metric]),
                metric,
                *(_label_views(target_pairs, target, classes) if classes is not None else ()),
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


def worsening(value: float, reference: float | None, higher_is_better: bool) -> float:
    """How much worse ``value`` is than ``reference`` (0.2: 20% worse; negative: better); 0 without a reference."""
    if reference is None or value != value:
        return 0.0
    scale = abs(reference) if abs(reference) > 1e-12 else 1.0
    return (reference - value) / scale if higher_is_better else (value - reference) / scale
