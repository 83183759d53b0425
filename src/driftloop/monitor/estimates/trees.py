"""Boosted regression trees kept as plain numbers: fitted by scikit-learn, stored as JSON in the
model package, evaluated with NumPy.

A package loads without pickle, so the fitted scikit-learn object is not kept: each tree's
arrays (the documented ``tree_`` structure: split feature, threshold, children, leaf value) are.
Evaluating them needs only NumPy, a few vectorised steps per level of depth.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

# Small on purpose: the estimator learns how the loss varies with inputs and prediction from a
# few thousand held-out rows, at training time and in a fraction of a second.
TREES = 50
DEPTH = 3
RATE = 0.1
LEAF_ROWS = 20
LEAF = -1  # scikit-learn's child index of a leaf


@dataclass(frozen=True)
class TreeEnsemble:
    """``base + rate * sum(tree(x))`` over regression trees of at most ``depth`` levels."""

    base: float
    rate: float
    depth: int
    trees: list[dict[str, list[float]]]  # each: feature, threshold, left, right, value

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray, *, seed: int = 0) -> TreeEnsemble:
        """Gradient-boosted trees of ``y`` on ``x`` (squared loss, so they estimate the mean of ``y``)."""
        from sklearn.ensemble import GradientBoostingRegressor  # only where a model is trained

        base = float(np.mean(y))
        booster = GradientBoostingRegressor(
            n_estimators=TREES,
            max_depth=DEPTH,
            learning_rate=RATE,
            subsample=0.5,
            max_features=0.5,
            min_samples_leaf=LEAF_ROWS,
            init="zero",
            random_state=seed,
        ).fit(_float32(x), y - base)
        trees = []
        for (estimator,) in booster.estimators_:
            tree = estimator.tree_
            trees.append(
                {
                    "feature": tree.feature.tolist(),
                    "threshold": tree.threshold.tolist(),
                    "left": tree.children_left.tolist(),
                    "right": tree.children_right.tolist(),
                    "value": tree.value[:, 0, 0].tolist(),
                }
            )
        return cls(base, RATE, DEPTH, trees)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The ensemble's value for each row of ``x``."""
        values = _float32(x)
        rows = np.arange(values.shape[0])
        total = np.full(values.shape[0], self.base, dtype=np.float64)
        for feature, threshold, left, right, leaf_value in self._arrays:
            node = np.zeros(values.shape[0], dtype=np.int64)
            for _ in range(self.depth):
                split = feature[node]
                inner = left[node] != LEAF
                goes_left = values[rows, np.maximum(split, 0)] <= threshold[node]
                node = np.where(inner, np.where(goes_left, left[node], right[node]), node)
            total += self.rate * leaf_value[node]
        return total

    @cached_property
    def _arrays(self) -> list[tuple[np.ndarray, ...]]:
        return [
            (
                np.asarray(t["feature"], np.int64),
                np.asarray(t["threshold"], np.float64),
                np.asarray(t["left"], np.int64),
                np.asarray(t["right"], np.int64),
                np.asarray(t["value"], np.float64),
            )
            for t in self.trees
        ]

    def to_dict(self) -> dict[str, Any]:
        return {"base": self.base, "rate": self.rate, "depth": self.depth, "trees": self.trees}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TreeEnsemble:
        return cls(float(data["base"]), float(data["rate"]), int(data["depth"]), list(data["trees"]))


def _float32(x: np.ndarray) -> np.ndarray:
    """scikit-learn's trees compare float32 values with their thresholds; so does ``predict``."""
    return np.nan_to_num(np.asarray(x, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
