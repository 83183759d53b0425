"""What the network's heads predict, and how their outputs become predictions.

A regression target gets one output, trained on the standardised value and scaled back after.
A classification target gets one output per class (logits, trained with cross-entropy); its
prediction is the most probable class, in the target's own type, beside one probability column
per class (``{target}__p_{class}``). All state is plain numbers and strings, saved as JSON in
the package.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Self

import numpy as np
import polars as pl

from driftloop.data.contract import Contract
from driftloop.errors import PreprocessError

PROBABILITY = "__p_"
# Characters a Delta column name may not hold without column mapping, and a space.
UNSAFE = re.compile(r"[^0-9A-Za-z_.-]+")


def probability_column(target: str, label: str) -> str:
    """The column holding the probability of ``label`` for ``target``."""
    return f"{target}{PROBABILITY}{UNSAFE.sub('_', label)}"


def prediction_columns(contract: Contract) -> dict[str, list[str]]:
    """Each target's prediction columns: itself, and for a label one probability per class."""
    return {t: [t, *(probability_column(t, c) for c in contract.columns[t].classes or ())] for t in contract.targets}


@dataclass(frozen=True)
class Targets:
    """The targets in head order: regression ones with their scale, classification ones with
    their classes (as text, in the contract's order) and the type labels come back in."""

    names: list[str]
    mean: dict[str, float] = field(default_factory=dict)
    std: dict[str, float] = field(default_factory=dict)
    classes: dict[str, list[str]] = field(default_factory=dict)
    label_types: dict[str, str] = field(default_factory=dict)

    @classmethod
    def fit(cls, frame: pl.DataFrame, contract: Contract) -> Self:
        """Scales of the regression targets from ``frame``; classes from the contract."""
        names = contract.targets
        _require(frame, names)
        regression = [t for t in names if not contract.columns[t].is_classification]
        stats = frame.select(
            *(pl.col(t).cast(pl.Float64).mean().alias(f"{t}__mean") for t in regression),
            *(pl.col(t).cast(pl.Float64).std().alias(f"{t}__std") for t in regression),
        ).row(0, named=True) if regression else {}  # fmt: skip
        std = {t: float(stats[f"{t}__std"] or 0.0) for t in regression}
        return cls(
            names,
            {t: float(stats[f"{t}__mean"] or 0.0) for t in regression},
            {t: s if s > 1e-12 else 1.0 for t, s in std.items()},
            {t: list(contract.columns[t].classes or []) for t in contract.class_targets},
            {t: contract.columns[t].type.value for t in contract.class_targets},
        )

    @property
    def head_sizes(self) -> list[int]:
        """Outputs of each target's head: 1 for a number, one per class for a label."""
        return [len(self.classes[t]) if t in self.classes else 1 for t in self.names]

    def columns(self, target: str) -> list[str]:
        """The prediction columns of ``target``: itself, and a probability per class for a label."""
        return [target, *(probability_column(target, c) for c in self.classes.get(target, []))]

    @property
    def output_columns(self) -> list[str]:
        return [c for t in self.names for c in self.columns(t)]

    def encode(self, frame: pl.DataFrame) -> np.ndarray:
        """Training targets, one column per target: a number standardised, a label its class
        index; NaN where missing."""
        exprs = []
        for t in self.names:
            if t in self.classes:
                index = (
                    pl.col(t)
                    .cast(pl.String)
                    .replace_strict(
                        self.classes[t], list(range(len(self.classes[t]))), default=None, return_dtype=pl.Float64
                    )
                )
                exprs.append(index.alias(t))
            else:
                exprs.append(((pl.col(t).cast(pl.Float64) - self.mean[t]) / self.std[t]).alias(t))
        return frame.select(exprs).fill_null(float("nan")).to_numpy().astype(np.float32)

    def split(self, outputs: np.ndarray) -> dict[str, np.ndarray]:
        """The network's outputs per target: a column of numbers in the target's own units, or
        a matrix of class probabilities (softmax of the logits)."""
        parts, start = {}, 0
        for t, size in zip(self.names, self.head_sizes, strict=True):
            block = outputs[:, start : start + size].astype(np.float64)
            parts[t] = softmax(block) if t in self.classes else block[:, 0] * self.std[t] + self.mean[t]
            start += size
        return parts

    def decode(self, outputs: np.ndarray) -> pl.DataFrame:
        """Predictions for the network's outputs: a number per regression target; the most
        probable class (in the target's type) and each class's probability per label."""
        columns: list[pl.Series] = []
        for t, values in self.split(outputs).items():
            if t not in self.classes:
                columns.append(pl.Series(t, values, pl.Float64))
                continue
            labels = pl.Series(t, np.array(self.classes[t], dtype=object)[values.argmax(axis=1)], pl.String)
            columns.append(as_label_type(labels, self.label_types[t]))
            columns += [pl.Series(probability_column(t, c), values[:, i]) for i, c in enumerate(self.classes[t])]
        return pl.DataFrame(columns)

    def to_dict(self) -> dict[str, Any]:
        return {
            "names": self.names,
            "mean": self.mean,
            "std": self.std,
            "classes": self.classes,
            "label_types": self.label_types,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Read :meth:`to_dict`'s output, or a package from before classification (regression only)."""
        names = list(data.get("names") or data["mean"])
        return cls(
            names,
            dict(data["mean"]),
            dict(data["std"]),
            {t: list(c) for t, c in data.get("classes", {}).items()},
            dict(data.get("label_types", {})),
        )


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise probabilities of logits (shifted by the row maximum, so large logits cannot overflow)."""
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities: np.ndarray = shifted / shifted.sum(axis=1, keepdims=True)
    return probabilities


def as_label_type(labels: pl.Series, type_name: str) -> pl.Series:
    """Class labels (text) in the type of their target column: "3" as 3, "true" as True."""
    if type_name == "int":
        return labels.cast(pl.Int64)
    if type_name == "bool":
        return labels == "true"
    return labels


def _require(frame: pl.DataFrame, columns: list[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise PreprocessError(f"input lacks column(s) {missing} the model needs")
