"""Direct loss estimation for a number's head: how large its errors are, before the labels come.

At training, boosted trees (:mod:`.trees`) learn each row's loss (the absolute error for MAE,
the squared error for RMSE, the SMAPE term) from the row's inputs and the model's prediction.
They learn it on held-out days: the held-out fit's rows of validation and test, where the
errors are honest. On a monitoring window the metric is estimated from the mean predicted
loss, scaled so that the held-out rows' own mean reads as the metric the serving model is
expected at (its refit saw those days too, so it is judged against ``expected``, not the
held-out fit's error). A window is then estimated ``k`` times as bad as the held-out rows when
its predicted losses are ``k`` times theirs.

The interval adds two uncertainties. One is the sampling interval of a mean: the
estimator's residual spread over the square root of the window's rows. The other is how wrong
the estimate of a whole day can be, measured by cross-fitting at training: trees fitted on
every other held-out day estimate the days in between, and the spread of those days' relative
errors, over the square root of the window's days, widens the interval. Days are taken as
independent; a run of days the estimator misreads alike (the world moved where it never saw
an error) falls outside, as it should be caught by the drift tests and, later, the labels.

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
from driftloop.monitor.estimates.trees import LEAF_ROWS, TreeEnsemble

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


# Held-out days needed to measure how wrong a day's estimate can be (two folds of at least two).
MIN_DAYS = 4
# Labelled held-out rows needed to learn a loss from: fewer, and the head gets no estimator.
MIN_ROWS = LEAF_ROWS


def fit(
    design: np.ndarray,
    actual: np.ndarray,
    predicted: np.ndarray,
    days: np.ndarray,
    metrics: Sequence[str],
    seed: int,
) -> dict[str, Any]:
    """Loss estimators of ``metrics`` (those of LOSSES) from held-out rows: ``design`` (each row
    as the estimators see it), the rows' values, the model's predictions and each row's day."""
    known = np.isfinite(actual) & np.isfinite(predicted)
    design, actual, predicted, days = design[known], actual[known], predicted[known], days[known]
    fitted = {}
    for metric in (m for m in metrics if m in LOSSES and design.shape[0] >= MIN_ROWS):
        loss = LOSSES[metric](actual, predicted)
        trees = TreeEnsemble.fit(design, loss, seed=seed)
        fitted[metric] = {
            "trees": trees.to_dict(),
            "reference": float(np.mean(loss)),  # the held-out rows' mean loss
            "residual_std": float(np.std(loss - trees.predict(design))),
            "day_error_std": _day_error_std(design, loss, days, seed),
        }
    return {"kind": KIND, "rows": int(design.shape[0]), "metrics": fitted}


def _day_error_std(design: np.ndarray, loss: np.ndarray, days: np.ndarray, seed: int) -> float:
    """The spread of a day's relative error (``realised / estimated - 1``) when trees fitted on
    the other fold of days (every other day) estimate it; 0 with too few days to tell."""
    unique, day_index = np.unique(days, return_inverse=True)
    if unique.size < MIN_DAYS:
        return 0.0
    estimated = np.empty_like(loss)
    for fold in (0, 1):
        held = day_index % 2 == fold
        estimated[held] = TreeEnsemble.fit(design[~held], loss[~held], seed=seed).predict(design[held])
    counts = np.bincount(day_index)
    realised_by_day = np.bincount(day_index, weights=loss) / counts
    estimated_by_day = np.maximum(np.bincount(day_index, weights=estimated) / counts, 1e-12)
    return float(np.std(realised_by_day / estimated_by_day - 1, ddof=1))


def estimate(state: dict[str, Any], design: np.ndarray, days: int, expected: dict[str, float]) -> dict[str, Interval]:
    """Each estimable metric of a window of ``days`` days whose rows are ``design``, on the
    scale of ``expected``."""
    found = {}
    for metric, fitted in state["metrics"].items():
        losses = np.maximum(TreeEnsemble.from_dict(fitted["trees"]).predict(design), 0.0)
        mean_loss = float(np.mean(losses))
        # The spreads of the window's mean loss: its rows' sampling, and its days' estimation error.
        sampling = fitted["residual_std"] / np.sqrt(max(design.shape[0], 1))
        daily = mean_loss * fitted.get("day_error_std", 0.0) / np.sqrt(max(days, 1))
        mean = normal_interval(mean_loss, float(np.hypot(sampling, daily)), 1)
        reference = fitted["reference"]
        if metric in ROOTED:
            mean, reference = mean.map(_root), float(np.sqrt(reference))
        target = expected.get(metric)
        scale = target / reference if target is not None and np.isfinite(target) and reference > 0 else 1.0
        found[metric] = Interval(mean.value * scale, mean.low * scale, mean.high * scale)
    return found


def _root(value: float) -> float:
    return float(np.sqrt(max(value, 0.0)))
