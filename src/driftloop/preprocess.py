"""Preprocessing fitted on training rows only, applied identically everywhere after.

Numbers (ints, floats, bools and derived features): clipped to the training quantiles
(0.1% and 99.9% by default, so one wild value cannot dominate), missing values imputed with
the training median plus a 0/1 indicator column when the column can be missing, then
standardised. Strings: an index into the training vocabulary, 0 for missing or unseen.
Targets are standardised too, so per-target losses are on one scale. All state is plain
numbers and strings, saved as JSON inside the model package.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import cached_property
from typing import Any, Self

import numpy as np
import polars as pl

from driftloop.errors import PreprocessError

CLIP_QUANTILES = (0.001, 0.999)
UNKNOWN = 0  # the index of a missing or unseen category


@dataclass(frozen=True)
class NumericState:
    """How one numeric column is transformed."""

    low: float
    high: float
    fill: float
    mean: float
    std: float
    indicator: bool


@dataclass(frozen=True)
class Preprocessor:
    """Fitted transforms for the model's input columns."""

    numeric: dict[str, NumericState]
    categorical: dict[str, list[str]]

    @classmethod
    def fit(cls, frame: pl.DataFrame, numeric: list[str], categorical: list[str], *, nullable: set[str]) -> Self:
        """Learn the transforms from the training rows ``frame``.

        ``nullable`` names the columns that may be missing at prediction time; they get a
        missing-value indicator even if training had no gap.
        """
        if frame.height == 0:
            raise PreprocessError("cannot fit preprocessing on zero training rows")
        _require(frame, [*numeric, *categorical])
        states = {}
        for name in numeric:
            values = frame.get_column(name).cast(pl.Float64).fill_nan(None)
            present = values.drop_nulls()
            if present.is_empty():
                raise PreprocessError(f"column {name!r} has no value in the training rows; drop it or widen the window")
            array = present.to_numpy()
            low, high = (float(q) for q in np.quantile(array, CLIP_QUANTILES))
            clipped = np.clip(array, low, high)
            std = float(clipped.std(ddof=1)) if array.size > 1 else 0.0
            states[name] = NumericState(
                low=low,
                high=high,
                fill=float(np.median(array)),
                mean=float(clipped.mean()),
                std=std if std > 1e-12 else 1.0,  # a constant column stays 0, not inf
                indicator=name in nullable or values.null_count() > 0,
            )
        vocab = {
            name: frame.get_column(name).drop_nulls().value_counts(sort=True).get_column(name).cast(pl.String).to_list()
            for name in categorical
        }
        return cls(states, vocab)

    @property
    def numeric_names(self) -> list[str]:
        """Names of the numeric matrix's columns, indicators included."""
        names = []
        for name, state in self.numeric.items():
            names.append(name)
            if state.indicator:
                names.append(f"{name}__missing")
        return names

    @property
    def cardinalities(self) -> list[int]:
        """Categories per string column, the unknown bucket included."""
        return [len(v) + 1 for v in self.categorical.values()]

    def transform(self, frame: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """The numeric matrix (float32) and the category index matrix (int64) for ``frame``."""
        _require(frame, [*self.numeric, *self.categorical])
        numeric, codes = self._expressions
        numbers = frame.select(numeric).to_numpy(writable=True) if numeric else np.zeros((frame.height, 0), np.float32)
        categories = frame.select(codes).to_numpy(writable=True) if codes else np.zeros((frame.height, 0), np.int64)
        return numbers.astype(np.float32, copy=False), categories.astype(np.int64, copy=False)

    @cached_property
    def _expressions(self) -> tuple[list[pl.Expr], list[pl.Expr]]:
        """The transforms as Polars expressions, built once: a one-row request should not pay for them."""
        numeric = []
        for name, s in self.numeric.items():
            value = pl.col(name).cast(pl.Float64).fill_nan(None)
            # Float32 inside the expression: the matrix comes out in the network's type, no copy to convert.
            scaled = (value.clip(s.low, s.high).fill_null(s.fill) - s.mean) / s.std
            numeric.append(scaled.cast(pl.Float32).alias(name))
            if s.indicator:
                numeric.append(value.is_null().cast(pl.Float32).alias(f"{name}__missing"))
        codes = [
            pl.col(name)
            .cast(pl.String)
            .replace_strict(vocab, list(range(1, len(vocab) + 1)), default=UNKNOWN, return_dtype=pl.Int64)
            for name, vocab in self.categorical.items()
        ]
        return numeric, codes

    def to_dict(self) -> dict[str, Any]:
        return {"numeric": {n: asdict(s) for n, s in self.numeric.items()}, "categorical": self.categorical}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        return cls({n: NumericState(**s) for n, s in data["numeric"].items()}, dict(data["categorical"]))


@dataclass(frozen=True)
class TargetScaler:
    """Standardises targets for training and restores their scale for predictions."""

    mean: dict[str, float]
    std: dict[str, float]

    @classmethod
    def fit(cls, frame: pl.DataFrame, targets: list[str]) -> Self:
        _require(frame, targets)
        stats = frame.select(
            *(pl.col(t).cast(pl.Float64).mean().alias(f"{t}__mean") for t in targets),
            *(pl.col(t).cast(pl.Float64).std().alias(f"{t}__std") for t in targets),
        ).row(0, named=True)
        std = {t: float(stats[f"{t}__std"] or 0.0) for t in targets}
        return cls(
            {t: float(stats[f"{t}__mean"] or 0.0) for t in targets},
            {t: s if s > 1e-12 else 1.0 for t, s in std.items()},
        )

    def scale(self, frame: pl.DataFrame) -> np.ndarray:
        """Targets of ``frame`` standardised, one column per target (NaN where missing)."""
        exprs = [((pl.col(t).cast(pl.Float64) - self.mean[t]) / self.std[t]).alias(t) for t in self.mean]
        return frame.select(exprs).fill_null(float("nan")).to_numpy().astype(np.float32)

    def unscale(self, values: np.ndarray) -> np.ndarray:
        """Model outputs back in each target's own units."""
        mean = np.array(list(self.mean.values()), dtype=np.float64)
        std = np.array(list(self.std.values()), dtype=np.float64)
        return values.astype(np.float64) * std + mean

    def to_dict(self) -> dict[str, Any]:
        return {"mean": self.mean, "std": self.std}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        return cls(dict(data["mean"]), dict(data["std"]))


def _require(frame: pl.DataFrame, columns: list[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise PreprocessError(f"input lacks column(s) {missing} the model needs")
