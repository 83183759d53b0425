"""Confidence-based performance estimation for a label's head (CBPE): what its metrics will be
when the labels come, from how sure its calibrated probabilities are.

If the probabilities are calibrated, a row given 0.8 for "defect" is a defect four times in
five. So each row's label can be drawn from them: each draw of the window's labels gives
every metric as if those were the labels, and the draws' mean and central 95% are the estimate
and its interval. Any metric the model is judged by is estimated the same way, the class
metrics included, with the definitions of :mod:`driftloop.model.metrics`.

The network's softmax is not calibrated by itself (cross-entropy training makes it
over-confident), so a temperature is fitted at training, on the held-out fit's logits of the
held-out days (temperature scaling: one number, robust on a few hundred rows). It changes
the confidence, never the predicted class. The estimate assumes the relation of label to
inputs holds: a window where it changed (concept drift) with unchanged inputs is found only
once the labels come.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar

from driftloop.model.metrics import CLASSIFICATION_METRICS, SMALLEST_PROBABILITY, classification_metrics
from driftloop.monitor.estimates.interval import Interval, draws_interval
from driftloop.runtime.targets import softmax

KIND = "confidence"
DRAWS = 100  # simulated label sets per window
MAX_ROWS = 20_000  # rows of a window the draws use (evenly sampled beyond)
# Temperatures searched, on a log scale: from ten times sharper to ten times flatter.
LOG_TEMPERATURE_BOUNDS = (-np.log(10.0), np.log(10.0))


def fit(logits: np.ndarray, actual: np.ndarray) -> dict[str, Any]:
    """The temperature that makes ``logits`` best predict the ``actual`` class indices (NaN: unknown)."""
    known = np.isfinite(actual)
    logits, classes = logits[known], actual[known].astype(np.int64)
    if classes.size == 0:
        return {"kind": KIND, "rows": 0, "temperature": 1.0}

    def loss(log_temperature: float) -> float:
        p = softmax(logits / np.exp(log_temperature))[np.arange(classes.size), classes]
        return float(-np.mean(np.log(np.clip(p, SMALLEST_PROBABILITY, 1.0))))

    best = minimize_scalar(loss, bounds=LOG_TEMPERATURE_BOUNDS, method="bounded")
    return {"kind": KIND, "rows": int(classes.size), "temperature": float(np.exp(best.x))}


def estimate(state: dict[str, Any], logits: np.ndarray, *, seed: int = 0) -> dict[str, Interval]:
    """Every label metric of a window whose rows have ``logits``, from labels drawn from the
    calibrated probabilities."""
    if logits.shape[0] > MAX_ROWS:
        logits = logits[np.linspace(0, logits.shape[0] - 1, MAX_ROWS).astype(np.int64)]
    probabilities = softmax(logits)
    calibrated = softmax(logits / state["temperature"])
    rng = np.random.default_rng(seed)
    cumulative = np.cumsum(calibrated, axis=1)
    draws = {metric: np.empty(DRAWS) for metric in CLASSIFICATION_METRICS}
    for d in range(DRAWS):
        u = rng.random((logits.shape[0], 1))
        labels = np.minimum((cumulative < u).sum(axis=1), logits.shape[1] - 1)
        for metric, value in classification_metrics(labels, probabilities).items():
            draws[metric][d] = value
    return {metric: draws_interval(values) for metric, values in draws.items()}
