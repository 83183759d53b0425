"""Direct loss estimation for a number's head: how large its errors are, before the labels come.

At training, boosted trees (:mod:`.trees`) learn each row's loss (the absolute error for MAE,
the squared error for RMSE, the SMAPE term) from the row's inputs and the model's prediction.
They learn it on held-out days: the held-out fit's rows of validation and test, where the
errors are honest. On a monitoring window the metric is estimated from the mean predicted
loss, scaled so that the held-out rows' own mean reads as the metric the serving model is
expected at (its refit saw those days too, so it is judged against ``expected``, not the
held-out fit's error). A window is then estimated ``k`` times as bad as the held-out rows when
its predicted losses are ``k`` times theirs.

The interval is the sampling interval of a mean: the estimator's residual spread on the
held-out rows over the square root of the window's rows. It says how sure the mean is, not
how wrong the estimator may be when the world has moved where it never saw an error.

What it can and cannot see: more rows in regions where the model errs more (a busier hour,
a harder class of flights) raise the estimate. Inputs beyond anything in the training data
are clipped by the preprocessing before the network sees them, and trees do not extrapolate,
so such a window reads like the edge of the reference: the drift tests are what flag it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from driftloop.monitor.estimates.interval import Interval, normal_interval
from driftloop.monitor.estimates.trees import TreeEnsemble

KIND = "loss"


def _absolute(actual: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    return np.asarray(np.abs(predicted - actual), dtype=np.float64)


def _squared(actual: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    return np.asarray((predicted - actual) ** 2, dtype=np.float64)


def _smape_term(actual: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """100 times each row's SMAPE term (0 where both are 0), as :mod:`driftloop.model.metrics` sums it."""
    scale = (np.abs(actual) + np.abs(predicted)) / 2
    ratio = np.divide(np.abs(predicted - actual), scale, out=np.zeros_like(scale), where=scale > 0)
    return np.asarray(100 * ratio, dtype=np.float64)


# Each estimable metric: its loss per row; the metric is the mean loss (RMSE: its square root).
LOSSES: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "mae": _absolute,
    "rmse": _squared,
    "smape": _smape_term,
}
ROOTED = {"rmse"}


def fit(
    design: np.ndarray, actual: np.ndarray, predicted: np.ndarray, metrics: Sequence[str], seed: int
) -> dict[str, Any]:
    """Loss estimators of ``metrics`` (those of LOSSES) from held-out rows: ``design`` (one row
    each, :func:`driftloop.monitor.estimates.design`), their values and the model's predictions."""
    known = np.isfinite(actual) & np.isfinite(predicted)
    design, actual, predicted = design[known], actual[known], predicted[known]
    fitted = {}
    for metric in (m for m in metrics if m in LOSSES):
        loss = LOSSES[metric](actual, predicted)
        trees = TreeEnsemble.fit(design, loss, seed=seed)
        residual = loss - trees.predict(design)
        fitted[metric] = {
            "trees": trees.to_dict(),
            "reference": float(np.mean(loss)),  # the held-out rows' mean loss
            "residual_std": float(np.std(residual)),
        }
    return {"kind": KIND, "rows": int(design.shape[0]), "metrics": fitted}


def estimate(state: dict[str, Any], design: np.ndarray, expected: dict[str, float]) -> dict[str, Interval]:
    """Each estimable metric of a window whose rows are ``design``, on the scale of ``expected``."""
    found = {}
    rows = design.shape[0]
    for metric, fitted in state["metrics"].items():
        losses = np.maximum(TreeEnsemble.from_dict(fitted["trees"]).predict(design), 0.0)
        mean = normal_interval(float(np.mean(losses)), fitted["residual_std"], rows)
        reference = fitted["reference"]
        if metric in ROOTED:
            mean, reference = mean.map(_root), float(np.sqrt(reference))
        target = expected.get(metric)
        scale = target / reference if target is not None and np.isfinite(target) and reference > 0 else 1.0
        found[metric] = Interval(mean.value * scale, mean.low * scale, mean.high * scale)
    return found


def _root(value: float) -> float:
    return float(np.sqrt(max(value, 0.0)))
