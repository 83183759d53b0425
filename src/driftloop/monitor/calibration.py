"""Drift thresholds calibrated to the data: how far the reference period's own windows move.

A daily window of autocorrelated data (a week of a house's sensors) is not an independent
sample of the months a model was fitted on, so a fixed threshold (Evidently's 0.1 Wasserstein,
p < 0.05) flags most inputs of most weeks, even right after training. Here, windows as long
as the monitored ones slide a day at a time over the rows the model was fitted on; each is
profiled on the reference's bins and compared with the whole reference by the column's own
test. Monitoring then calls a window drifted when its statistic is beyond the
``1 - false_alarm_rate`` quantile of those: when it moves more than the data usually moves.

The statistics, not a threshold, are stored in the package (a few dozen numbers a column), so
a different rate needs no retraining (:mod:`driftloop.monitor.thresholds` reads them).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from driftloop.monitor.drift import choose_test, is_single_valued
from driftloop.monitor.thresholds import CALIBRATION, MIN_WINDOWS
from driftloop.profiles import NumericProfile, Profile, profile
from driftloop.project import Project
from driftloop.settings.monitor import MonitorSettings

if TYPE_CHECKING:  # the trainer brings torch, which monitoring itself never needs
    from driftloop.model.trainer import TrainedModel

# More than this add little and cost time at training: evenly spaced ones are kept.
MAX_WINDOWS = 60


def calibrate(trained: TrainedModel, project: Project) -> dict[str, Any] | None:
    """Window-to-window statistics of the inputs and predictions of the rows ``trained`` was
    fitted on, stored in its package's reference (and returned); None when the rows span too
    few windows of ``[loop] monitor_days``."""
    package, rows = trained.package, trained.fitted_on
    clock = package.contract.clock
    if clock is None or rows is None:
        return None
    days = project.settings.loop.monitor_days
    starts = _window_starts(rows.select(clock.instants().alias("t")).get_column("t"), days)
    if len(starts) < MIN_WINDOWS:
        return None
    times = rows.select(clock.instants()).to_series()
    inputs = Profile.from_dict(package.reference["inputs"])
    predictions = Profile.from_dict(package.reference["predictions"])
    features, predicted = package.features.apply(rows), package.predict_valid(rows)
    found: dict[str, Any] = {"window_days": days, "windows": len(starts), "inputs": {}, "predictions": {}}
    for part, reference, frame in (("inputs", inputs, features), ("predictions", predictions, predicted)):
        numeric = [n for n, c in reference.columns.items() if isinstance(c, NumericProfile)]
        categorical = [n for n in reference.columns if n not in numeric]
        # The fitted rows are in this process already (the network trained on them): profiled
        # here, not sent to the project's engine (on Spark, 2 x 60 windows were 45 s of jobs).
        windows = [
            profile(frame.filter((times >= start) & (times < start + timedelta(days=days))), numeric, categorical,
                    like=reference)
            for start in starts
        ]  # fmt: skip
        found[part] = window_statistics(reference, windows, project.settings.monitor)
    package.reference[CALIBRATION] = found
    return found


def window_statistics(reference: Profile, windows: list[Profile], settings: MonitorSettings) -> dict[str, Any]:
    """Per column: the test ``settings`` pick for it and its statistic in each window; for a
    number, also how many windows held a single value (a calendar feature does, a sensor not)."""
    columns: dict[str, Any] = {}
    for name, ref in reference.columns.items():
        kind = "numeric" if isinstance(ref, NumericProfile) else "category"
        test = choose_test(kind, ref.count, settings)
        present = [w.columns[name] for w in windows if name in w.columns and w.columns[name].count]
        values = [test(ref, current, test.default_threshold).statistic for current in present]
        columns[name] = {"test": test.name, "statistics": sorted(float(v) for v in values if np.isfinite(v))}
        if kind == "numeric":
            columns[name]["single_valued"] = sum(is_single_valued(c) for c in present)
    return columns


def _window_starts(times: pl.Series, days: float) -> list[datetime]:
    """Starts of the full windows of ``days`` inside ``times``, a day apart (at most MAX_WINDOWS)."""
    first, last = times.min(), times.max()
    if not isinstance(first, datetime) or not isinstance(last, datetime):
        return []
    span = (last - first).total_seconds() / 86400
    count = int(span - days) + 1
    if count < 1:
        return []
    chosen = np.unique(np.linspace(0, count - 1, min(count, MAX_WINDOWS)).round().astype(int))
    return [first + timedelta(days=int(k)) for k in chosen]
