"""Metrics per target: MAE, RMSE, SMAPE and R² for a number; accuracy, balanced accuracy,
macro F1, ROC AUC, log loss and Brier score for a label.

SMAPE is the symmetric mean absolute percentage error, in percent, from 0 to 200:

    SMAPE = 100 / n * sum( |y - ŷ| / ((|y| + |ŷ|) / 2) )

with a term taken as 0 where y and ŷ are both 0 (a perfect prediction of zero), so it is
safe for targets that are often zero (the demo's ``lights``). R² is 1 - SS_res / SS_tot;
on a constant target, where it is undefined, it is 1 for exact predictions and 0 otherwise.

For labels, ROC AUC is the positive class's for two classes and the mean one-vs-rest AUC over
the classes present otherwise (NaN with a single class present); log loss clips probabilities
to [1e-15, 1]; the Brier score is the mean squared distance of the probability vector from the
one-hot truth (0 is perfect, 2 the worst).
"""

from __future__ import annotations

import numpy as np
import polars as pl
from numpy.typing import ArrayLike
from scipy.stats import rankdata

from driftloop.runtime.targets import probability_column

REGRESSION_METRICS = ("mae", "rmse", "smape", "r2")
CLASSIFICATION_METRICS = ("accuracy", "balanced_accuracy", "macro_f1", "roc_auc", "log_loss", "brier")
METRICS = REGRESSION_METRICS + CLASSIFICATION_METRICS
# Whether a higher value of each metric is better.
HIGHER_IS_BETTER = {
    "mae": False, "rmse": False, "smape": False, "r2": True,
    "accuracy": True, "balanced_accuracy": True, "macro_f1": True, "roc_auc": True, "log_loss": False, "brier": False,
}  # fmt: skip
SMALLEST_PROBABILITY = 1e-15
# Equal-width bins of predicted probability in a calibration curve.
CALIBRATION_BINS = 10


def regression_metrics(actual: ArrayLike, predicted: ArrayLike) -> dict[str, float]:
    """MAE, RMSE, SMAPE (%) and R² of ``predicted`` against ``actual``, ignoring pairs with a NaN."""
    y = np.asarray(actual, dtype=np.float64).ravel()
    p = np.asarray(predicted, dtype=np.float64).ravel()
    if y.shape != p.shape:
        raise ValueError(f"actual and predicted differ in length: {y.shape[0]} vs {p.shape[0]}")
    keep = np.isfinite(y) & np.isfinite(p)
    y, p = y[keep], p[keep]
    if y.size == 0:
        return dict.fromkeys(METRICS, float("nan"))
    error = p - y
    scale = (np.abs(y) + np.abs(p)) / 2
    ratio = np.divide(np.abs(error), scale, out=np.zeros_like(scale), where=scale > 0)
    total = float(np.sum((y - y.mean()) ** 2))
    residual = float(np.sum(error**2))
    r2 = 1.0 - residual / total if total > 0 else (1.0 if residual == 0 else 0.0)
    return {
        "mae": float(np.mean(np.abs(error))),
        "rmse": float(np.sqrt(np.mean(error**2))),
        "smape": float(100 * np.mean(ratio)),
        "r2": r2,
    }


def classification_metrics(actual: ArrayLike, probabilities: ArrayLike) -> dict[str, float]:
    """Label metrics of class ``probabilities`` (rows of one probability per class) against the
    ``actual`` class indices, ignoring rows whose class is NaN."""
    y = np.asarray(actual, dtype=np.float64).ravel()
    p = np.asarray(probabilities, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] != y.shape[0]:
        raise ValueError(f"probabilities must be one row per label: {p.shape} for {y.shape[0]} labels")
    keep = np.isfinite(y) & np.isfinite(p).all(axis=1)
    y, p = y[keep].astype(np.int64), p[keep]
    if y.size == 0:
        return dict.fromkeys(CLASSIFICATION_METRICS, float("nan"))
    classes = p.shape[1]
    predicted = p.argmax(axis=1)
    present = np.unique(y)
    recalls = [np.mean(predicted[y == c] == c) for c in present]
    f1s = []
    for c in range(classes):
        hits = np.sum((predicted == c) & (y == c))
        guessed, actual_count = np.sum(predicted == c), np.sum(y == c)
        if guessed or actual_count:
            f1s.append(2 * hits / (guessed + actual_count))
    onehot = np.eye(classes)[y]
    return {
        "accuracy": float(np.mean(predicted == y)),
        "balanced_accuracy": float(np.mean(recalls)),
        "macro_f1": float(np.mean(f1s)),
        "roc_auc": _roc_auc(y, p, present),
        "log_loss": float(-np.mean(np.log(np.clip(p[np.arange(y.size), y], SMALLEST_PROBABILITY, 1.0)))),
        "brier": float(np.mean(np.sum((p - onehot) ** 2, axis=1))),
    }


def _roc_auc(y: np.ndarray, p: np.ndarray, present: np.ndarray) -> float:
    if present.size < 2:
        return float("nan")
    if p.shape[1] == 2:
        return _binary_auc(y == 1, p[:, 1])
    return float(np.mean([_binary_auc(y == c, p[:, c]) for c in present]))


def _binary_auc(positive: np.ndarray, score: np.ndarray) -> float:
    """The probability that a positive row scores above a negative one (ties count half),
    from the ranks of the scores (Mann-Whitney U)."""
    ranks = rankdata(score)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def target_metrics(
    actual: pl.Series, predicted: pl.DataFrame, target: str, classes: list[str] | None
) -> dict[str, float]:
    """The metrics of one target: ``predicted`` holds its prediction columns (the value, and a
    probability per class for a label), row for row with the ``actual`` values."""
    if classes is None:
        return regression_metrics(actual.cast(pl.Float64), predicted.get_column(target).cast(pl.Float64))
    probabilities = predicted.select(probability_column(target, c) for c in classes).to_numpy()
    return classification_metrics(class_indices(actual, classes), probabilities)


def class_indices(labels: pl.Series, classes: list[str]) -> np.ndarray:
    """Each label's position among ``classes`` (NaN for a missing or unknown label)."""
    text = labels.cast(pl.String)
    index = text.replace_strict(classes, list(range(len(classes))), default=None, return_dtype=pl.Float64)
    return index.fill_null(float("nan")).to_numpy()


def confusion(actual: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """Counts of rows by actual class (rows) and predicted, most probable, class (columns);
    ``actual`` holds class indices."""
    size = probabilities.shape[1]
    counts = np.zeros((size, size), dtype=np.int64)
    np.add.at(counts, (actual.astype(np.int64), probabilities.argmax(axis=1)), 1)
    return counts


def calibration(actual: np.ndarray, probabilities: np.ndarray, classes: list[str]) -> dict[str, list[list[float]]]:
    """Per class (only the positive one of two), ``[mean predicted probability, observed share,
    rows]`` in each used bin of :data:`CALIBRATION_BINS`: on the diagonal, a probability of 0.7 is
    right 70% of the time."""
    edges = np.linspace(0, 1, CALIBRATION_BINS + 1)
    curves = {}
    for name in classes[1:] if len(classes) == 2 else classes:
        index = classes.index(name)
        p, hit = probabilities[:, index], actual == index
        bins = np.clip(np.digitize(p, edges) - 1, 0, CALIBRATION_BINS - 1)
        curves[name] = [
            [float(p[bins == b].mean()), float(hit[bins == b].mean()), float((bins == b).sum())]
            for b in range(CALIBRATION_BINS)
            if np.any(bins == b)
        ]
    return curves


def metric_names(classification: bool) -> tuple[str, ...]:
    """The metrics a target of this kind is scored with."""
    return CLASSIFICATION_METRICS if classification else REGRESSION_METRICS
