"""A ridge regression on the same preprocessed inputs: the floor a network must beat.

Closed form (numpy), one fit for all targets; categories enter as one-hot columns. A deep
model that cannot beat this is not worth its cost, which is what the dev -> qa gate checks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RIDGE_PENALTY = 1.0


@dataclass(frozen=True)
class Ridge:
    """Linear weights per target over [numbers, one-hot categories, 1]."""

    weights: np.ndarray
    cardinalities: list[int]

    @classmethod
    def fit(cls, numbers: np.ndarray, categories: np.ndarray, targets: np.ndarray, cardinalities: list[int]) -> Ridge:
        design = _design(numbers, categories, cardinalities)
        weights = np.zeros((design.shape[1], targets.shape[1]))
        for i in range(targets.shape[1]):  # each target on its own labelled rows
            known = ~np.isnan(targets[:, i])
            x, y = design[known], targets[known, i].astype(np.float64)
            gram = x.T @ x + RIDGE_PENALTY * np.eye(x.shape[1])
            weights[:, i] = np.linalg.solve(gram, x.T @ y)
        return cls(weights, cardinalities)

    def predict(self, numbers: np.ndarray, categories: np.ndarray) -> np.ndarray:
        predicted: np.ndarray = _design(numbers, categories, self.cardinalities) @ self.weights
        return predicted


def _design(numbers: np.ndarray, categories: np.ndarray, cardinalities: list[int]) -> np.ndarray:
    blocks = [numbers.astype(np.float64)]
    blocks += [np.eye(size)[categories[:, i]] for i, size in enumerate(cardinalities)]
    blocks.append(np.ones((numbers.shape[0], 1)))
    return np.hstack(blocks)
