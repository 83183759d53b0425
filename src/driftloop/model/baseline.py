"""Linear models on the same preprocessed inputs: the floor a network must beat.

A number gets a ridge regression (closed form); a label a multinomial logistic regression with
the same penalty (fitted by L-BFGS); categories enter both as one-hot columns. Their outputs
take the network's form (a scaled number, or logits per class), so they are decoded and scored
the same way. A deep model that cannot beat this is not worth its cost, which is what the
dev -> qa gate checks.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.optimize import minimize

from driftloop.runtime.targets import softmax

RIDGE_PENALTY = 1.0
# Iterations of L-BFGS for a logistic baseline: plenty for a convex problem of this size.
LOGISTIC_ITERATIONS = 200


@dataclass(frozen=True)
class Baseline:
    """Linear weights over [numbers, one-hot categories, 1], a block of columns per head."""

    weights: list[np.ndarray]
    cardinalities: list[int]

    @classmethod
    def fit(
        cls, numbers: np.ndarray, categories: np.ndarray, targets: np.ndarray, cardinalities: list[int],
        head_sizes: list[int],
    ) -> Baseline:  # fmt: skip
        """One model per target, each on its own labelled rows: ``targets`` holds a scaled
        number or a class index per head (NaN where missing)."""
        design = _design(numbers, categories, cardinalities)
        weights = []
        for i, size in enumerate(head_sizes):
            known = ~np.isnan(targets[:, i])
            x, y = design[known], targets[known, i].astype(np.float64)
            weights.append(_ridge(x, y) if size == 1 else _logistic(x, y.astype(np.int64), size))
        return cls(weights, cardinalities)

    def predict(self, numbers: np.ndarray, categories: np.ndarray) -> np.ndarray:
        """Outputs in the network's form: the heads side by side."""
        design = _design(numbers, categories, self.cardinalities)
        return np.hstack([np.asarray(design @ w) for w in self.weights])

    def as_linear(self) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
        """The weights as a network's linear path takes them (float32): the numbers' matrix
        (outputs x numbers), a block per category (levels x outputs) and the bias."""
        every = np.hstack(self.weights).astype(np.float32)  # [numbers, one-hot blocks, 1] x outputs
        numeric = every.shape[0] - sum(self.cardinalities) - 1
        ends = np.cumsum([numeric, *self.cardinalities])
        blocks = [every[start:end] for start, end in itertools.pairwise(ends)]
        return np.ascontiguousarray(every[:numeric].T), blocks, every[-1].copy()


def _ridge(x: sparse.csr_matrix, y: np.ndarray) -> np.ndarray:
    gram = (x.T @ x).toarray() + RIDGE_PENALTY * np.eye(x.shape[1])
    solved: np.ndarray = np.linalg.solve(gram, x.T @ y)
    return solved[:, None]


def _logistic(x: sparse.csr_matrix, y: np.ndarray, classes: int) -> np.ndarray:
    """Multinomial logistic regression with an L2 penalty; its weights give logits."""
    onehot = np.eye(classes)[y]
    rows, width = x.shape

    def loss_and_gradient(flat: np.ndarray) -> tuple[float, np.ndarray]:
        w = flat.reshape(width, classes)
        p = softmax(x @ w)
        loss = -np.sum(onehot * np.log(np.clip(p, 1e-15, 1.0))) / rows + RIDGE_PENALTY * np.sum(w**2) / (2 * rows)
        gradient = x.T @ (p - onehot) / rows + RIDGE_PENALTY * w / rows
        return float(loss), gradient.ravel()

    start = np.zeros(width * classes)
    found = minimize(loss_and_gradient, start, jac=True, method="L-BFGS-B", options={"maxiter": LOGISTIC_ITERATIONS})
    fitted: np.ndarray = found.x.reshape(width, classes)
    return fitted


def _design(numbers: np.ndarray, categories: np.ndarray, cardinalities: list[int]) -> sparse.csr_matrix:
    """[numbers, one-hot categories, 1] as a sparse matrix: a category of 4,000 levels over 235k
    rows was 7.7 GB dense (a 69 s ridge fit peaking at 16 GB); sparse, each row holds one entry
    per category."""
    rows = numbers.shape[0]
    index = np.arange(rows)
    blocks = [sparse.csr_matrix(numbers.astype(np.float64))]
    for i, size in enumerate(cardinalities):
        blocks.append(sparse.csr_matrix((np.ones(rows), (index, categories[:, i])), shape=(rows, size)))
    blocks.append(sparse.csr_matrix(np.ones((rows, 1))))
    return sparse.hstack(blocks, format="csr")
