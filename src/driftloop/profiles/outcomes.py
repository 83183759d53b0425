"""How right a model was, as sums that add up: what a device reports of its labelled predictions
instead of the rows.

A number's outcome is its count, absolute and squared errors and the actual values' sum and sum
of squares (MAE, RMSE and R² follow, and two devices' outcomes add exactly); a label's is its
confusion matrix (accuracy and macro F1 follow). Both round-trip through JSON.
"""

from __future__ import annotations

import math
from dataclasses import asdict, astuple, dataclass
from typing import Any

import numpy as np
import polars as pl


@dataclass
class NumberOutcome:
    """Errors of a numeric target's predictions, as sums."""

    count: int
    abs_error: float
    squared_error: float
    actual_total: float
    actual_squares: float

    def merge(self, other: NumberOutcome) -> NumberOutcome:
        return NumberOutcome(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))

    def metrics(self) -> dict[str, float]:
        if not self.count:
            return {}
        spread = self.actual_squares - self.actual_total**2 / self.count  # of the actual values, about their mean
        if spread > 1e-12 * self.actual_squares:  # beyond the sums' rounding
            r2 = 1 - self.squared_error / spread
        else:  # one actual value throughout (to rounding): as training's R² says of it
            r2 = 1.0 if self.squared_error == 0 else 0.0
        return {"mae": self.abs_error / self.count, "rmse": math.sqrt(self.squared_error / self.count), "r2": r2}


@dataclass
class LabelOutcome:
    """A label target's confusion matrix: ``confusion[i][j]`` rows of class i predicted as j."""

    classes: list[str]
    confusion: list[list[int]]

    @property
    def count(self) -> int:
        return sum(map(sum, self.confusion))

    def merge(self, other: LabelOutcome) -> LabelOutcome:
        if self.classes != other.classes:
            raise ValueError(f"outcomes of different classes: {self.classes} vs {other.classes}")
        summed = np.asarray(self.confusion) + np.asarray(other.confusion)
        return LabelOutcome(self.classes, summed.tolist())

    def metrics(self) -> dict[str, float]:
        """Accuracy, balanced accuracy and macro F1, defined as training's metrics define them."""
        matrix = np.asarray(self.confusion, dtype=np.float64)
        if not matrix.sum():
            return {}
        right = np.diag(matrix)
        predicted, actual = matrix.sum(axis=0), matrix.sum(axis=1)
        seen = predicted + actual > 0  # F1 over the classes predicted or present, recall over the present
        return {
            "accuracy": float(right.sum() / matrix.sum()),
            "balanced_accuracy": float(np.mean(right[actual > 0] / actual[actual > 0])),
            "macro_f1": float(np.mean(2 * right[seen] / (predicted[seen] + actual[seen]))),
        }


Outcome = NumberOutcome | LabelOutcome


def outcome(actual: pl.Series, predicted: pl.Series, classes: list[str] | None) -> Outcome:
    """The outcome of ``predicted`` against ``actual`` (rows where both are known); a label's
    values are compared as text, in the order of ``classes``."""
    both = pl.DataFrame({"actual": actual, "predicted": predicted}).drop_nulls()
    if classes is not None:
        index = {c: i for i, c in enumerate(classes)}
        confusion = np.zeros((len(classes), len(classes)), dtype=np.int64)
        for a, p in both.select(pl.all().cast(pl.String)).iter_rows():
            if a in index and p in index:
                confusion[index[a], index[p]] += 1
        return LabelOutcome(list(classes), confusion.tolist())
    values = both.select(pl.all().cast(pl.Float64))
    error = values["predicted"] - values["actual"]
    truth = values["actual"]
    return NumberOutcome(
        values.height,
        float(error.abs().sum()),
        float((error * error).sum()),
        float(truth.sum()),
        float((truth * truth).sum()),
    )


def to_dict(result: Outcome) -> dict[str, Any]:
    return {"kind": "label" if isinstance(result, LabelOutcome) else "number", **asdict(result)}


def from_dict(data: dict[str, Any]) -> Outcome:
    """An outcome from :func:`to_dict`'s JSON; a ValueError naming what is wrong."""
    try:
        if data.get("kind") == "number":
            return NumberOutcome(int(data["count"]), float(data["abs_error"]), float(data["squared_error"]),
                                 float(data["actual_total"]), float(data["actual_squares"]))  # fmt: skip
        if data.get("kind") == "label":
            classes = [str(c) for c in data["classes"]]
            confusion = [[int(n) for n in row] for row in data["confusion"]]
            if len(confusion) != len(classes) or any(len(row) != len(classes) for row in confusion):
                raise ValueError(f"a confusion matrix over {len(classes)} classes is {len(classes)} x {len(classes)}")
            return LabelOutcome(classes, confusion)
    except (KeyError, TypeError) as exc:
        raise ValueError(f"an outcome lacks or mistypes {exc}") from exc
    raise ValueError(f"an outcome's kind is 'number' or 'label', not {data.get('kind')!r}")


__all__ = ["LabelOutcome", "NumberOutcome", "Outcome", "from_dict", "outcome", "to_dict"]
