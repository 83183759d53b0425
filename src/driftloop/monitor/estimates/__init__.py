"""Performance without labels: each head's metric estimated for a window before its labels come.

A number's head gets direct loss estimation (:mod:`.loss`), a label's head confidence-based
estimation (:mod:`.confidence`); a new kind of estimator is a module with the same ``fit`` and
``estimate``. Both are fitted at training, on the held-out days, and kept in the package's
reference (``estimates``), so every window, batch or online, is estimated by the model's own
estimators. Each estimator sees a row as the network does (its preprocessed inputs) beside
what the network predicted for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from driftloop.model.metrics import HIGHER_IS_BETTER
from driftloop.monitor.estimates import confidence, loss
from driftloop.monitor.estimates.interval import Interval
from driftloop.monitor.performance import worsening
from driftloop.runtime.package import ModelPackage
from driftloop.settings.monitor import MonitorSettings
from driftloop.settings.promote import PromoteSettings

ESTIMATES = "estimates"  # the key of the package's reference that holds the estimators
# Held-out rows the estimators learn from, sampled beyond: the trees learn no more from a
# hundred thousand flights than from twenty thousand, and take seconds each on them.
MAX_FIT_ROWS = 20_000


@dataclass(frozen=True)
class TargetEstimate:
    """One target's estimated metrics on a window, and how much worse than expected they read."""

    target: str
    rows: int  # the window's rows the estimate is over, labelled or not
    metric: str  # the decisive metric
    metrics: dict[str, Interval]
    expected: float | None  # the decisive metric the model is expected at (its test window's)
    worsening: float  # of the estimate of the decisive metric, relative to expected
    # Of the interval's better end: the window is estimated at least this much worse.
    sure_worsening: float

    @property
    def estimate(self) -> Interval:
        return self.metrics[self.metric]

    def degraded(self, settings: MonitorSettings) -> bool:
        """Whether the window is estimated degraded: over enough rows, even the interval's
        better end is worse than expected by more than ``degradation``."""
        return self.rows >= settings.min_labelled_rows and self.sure_worsening > settings.degradation


def fit_estimators(
    serving: ModelPackage, held_out: ModelPackage, rows: pl.DataFrame, promote: PromoteSettings, *, seed: int = 0
) -> dict[str, Any]:
    """Estimators of each target, learnt on ``rows`` (held-out days, with their labels) from
    ``held_out``'s predictions: the fit that never saw them, whose errors there are honest. The
    rows are described as ``serving`` (which may be that fit refitted on every row) sees them."""
    if rows.is_empty():
        return {}
    if rows.height > MAX_FIT_ROWS:
        rows = rows.sample(MAX_FIT_ROWS, seed=seed)
    raw = held_out.predict_raw(rows)
    design = np.hstack([_design(*_network_inputs(serving, rows)), _outputs(held_out, raw)])
    heads, encoded = held_out.heads, held_out.heads.encode(rows)
    blocks = _blocks(heads.head_sizes)
    metrics = list(dict.fromkeys(["mae", promote.metric]))
    days, predicted = _days(held_out, rows), heads.split(raw)
    found = {}
    for i, target in enumerate(heads.names):
        if target in heads.classes:
            found[target] = confidence.fit(raw[:, blocks[i]], encoded[:, i].astype(np.float64))
        else:
            actual = rows.get_column(target).cast(pl.Float64).fill_null(float("nan")).to_numpy()
            found[target] = loss.fit(design, actual, predicted[target], days, metrics, seed)
    return found


def estimate_window(
    package: ModelPackage,
    rows: pl.DataFrame,
    expected: dict[str, dict[str, float]],
    promote: PromoteSettings,
    *,
    rows_in_window: int | None = None,
) -> list[TargetEstimate]:
    """Each target's estimated metrics on ``rows`` (a window's inputs, or a uniform sample of
    its ``rows_in_window``), beside ``expected`` (per target and metric); none when the package
    has no estimators (trained before them)."""
    states = package.reference.get(ESTIMATES) or {}
    if not states or rows.is_empty():
        return []
    numbers, categories = _network_inputs(package, rows)
    raw = np.asarray(package.network(numbers, categories), dtype=np.float64)
    design = np.hstack([_design(numbers, categories), _outputs(package, raw)])
    blocks = _blocks(package.heads.head_sizes)
    days = int(np.unique(_days(package, rows)).size)
    results = []
    for i, target in enumerate(package.heads.names):
        state = states.get(target)
        if state is None:
            continue
        target_expected = expected.get(target, {})
        if state["kind"] == confidence.KIND:
            metrics = confidence.estimate(state, raw[:, blocks[i]])
        else:
            metrics = loss.estimate(state, design, days, target_expected)
        if not metrics:  # its held-out days had too few labels to learn from
            continue
        metric = promote.decisive(metrics)
        if metric not in metrics:  # e.g. r2, which no loss per row adds up to: judged by mae
            metric = "mae"
        reference = target_expected.get(metric)
        higher = HIGHER_IS_BETTER[metric]
        interval = metrics[metric]
        results.append(
            TargetEstimate(
                target, rows_in_window or rows.height, metric, metrics, reference,
                worsening(interval.value, reference, higher),
                worsening(interval.high if higher else interval.low, reference, higher),
            )
        )  # fmt: skip
    return results


def _days(package: ModelPackage, rows: pl.DataFrame) -> np.ndarray:
    """Each row's day as a number (the loop's days of the contract's clock); one day without a clock."""
    clock = package.contract.clock
    if clock is None:
        return np.zeros(rows.height, dtype=np.int64)
    return rows.select(clock.days().to_physical()).to_series().fill_null(-1).to_numpy().astype(np.int64)


def _network_inputs(package: ModelPackage, rows: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The rows as ``package``'s network sees them: preprocessed numbers and category indexes."""
    return package.preprocessor.transform(package.features.apply(rows))


def _design(numbers: np.ndarray, categories: np.ndarray) -> np.ndarray:
    """Numbers, then category indexes, side by side: what the estimators see of a row's inputs."""
    return np.hstack([numbers, categories.astype(np.float32)])


def _outputs(package: ModelPackage, raw: np.ndarray) -> np.ndarray:
    """What the network predicts, heads side by side: a number in its units, a label's probabilities."""
    parts = package.heads.split(raw)
    return np.hstack([parts[t].reshape(raw.shape[0], -1) for t in package.heads.names])


def _blocks(sizes: list[int]) -> list[slice]:
    ends = np.cumsum(sizes)
    return [slice(int(end - size), int(end)) for size, end in zip(sizes, ends, strict=True)]
