"""Regression metrics, per target: MAE, RMSE, SMAPE and R².

SMAPE is the symmetric mean absolute percentage error, in percent, from 0 to 200:

    SMAPE = 100 / n * sum( |y - ŷ| / ((|y| + |ŷ|) / 2) )

with a term taken as 0 where y and ŷ are both 0 (a perfect prediction of zero), so it is
safe for targets that are often zero (the demo's ``lights``). R² is 1 - SS_res / SS_tot;
on a constant target, where it is undefined, it is 1 for exact predictions and 0 otherwise.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

METRICS = ("mae", "rmse", "smape", "r2")
# Whether a higher value of each metric is better.
HIGHER_IS_BETTER = {"mae": False, "rmse": False, "smape": False, "r2": True}


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
