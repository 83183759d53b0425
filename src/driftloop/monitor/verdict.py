"""The monitoring policy: from drift and performance results to one verdict with reasons.

Verdicts, from worst: ``degraded`` (a target's decisive metric is worse than the model's
test window by more than ``degradation``), ``estimated_degraded`` (its estimate, made without
labels, is: even the interval's better end is that much worse), ``drift`` (the inputs drift as
a dataset, or the predictions do with ``prediction_drift = "drift"``), ``warn`` (some input
drifts, a number is stuck, a null rate rose, a category is new, the predictions drift), ``ok``.
The verdict is the worst level found; every level found is kept in ``signals``, so a policy
acting on one of them is not blinded by a worse one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from driftloop.monitor.drift import DriftReport
from driftloop.monitor.estimates import TargetEstimate
from driftloop.monitor.performance import TargetPerformance
from driftloop.settings.monitor import MonitorSettings

# How the share of drifted inputs reads when it counts each by the model's reliance on it.
RELIANCE = " of the model's reliance"


class VerdictLevel(StrEnum):
    """A window's verdict, from best to worst (the order :attr:`rank` gives)."""

    OK = "ok"
    WARN = "warn"
    DRIFT = "drift"
    ESTIMATED_DEGRADED = "estimated_degraded"
    DEGRADED = "degraded"

    @property
    def rank(self) -> int:
        return list(VerdictLevel).index(self)

    @property
    def signals_retrain(self) -> bool:
        """Whether this level is one a retrain policy may act on."""
        return self in (VerdictLevel.DRIFT, VerdictLevel.ESTIMATED_DEGRADED, VerdictLevel.DEGRADED)


@dataclass(frozen=True)
class Verdict:
    """The window's verdict and every reason behind it."""

    level: VerdictLevel
    reasons: list[str] = field(default_factory=list)
    signals: frozenset[VerdictLevel] = frozenset()  # every level found but ok, the worst (level) included

    @property
    def retrain_signal(self) -> bool:
        return any(signal.signals_retrain for signal in self.signals)


def decide(
    inputs: DriftReport,
    predictions: DriftReport | None,
    performance: list[TargetPerformance],
    settings: MonitorSettings,
    estimates: Sequence[TargetEstimate] = (),
) -> Verdict:
    """The window's verdict from its drift, realised performance and estimated performance."""
    levels, reasons = [VerdictLevel.OK], []
    for result in performance:
        if result.rows >= settings.min_labelled_rows and result.worsening > settings.degradation:
            metric = result.metric
            levels.append(VerdictLevel.DEGRADED)
            reasons.append(
                f"{result.target}: {metric} {result.metrics[metric]:.4g} is {result.worsening:.0%} worse than on "
                f"the model's test window ({result.test_metrics.get(metric, float('nan')):.4g}), "
                f"limit {settings.degradation:.0%}"
            )
    for estimate in estimates:
        if estimate.degraded(settings):
            levels.append(VerdictLevel.ESTIMATED_DEGRADED)
            reasons.append(_estimated(estimate, settings.degradation))
    if inputs.dataset_drift:
        levels.append(VerdictLevel.DRIFT)
        reasons.append(
            f"{len(inputs.drifted)} of {len(inputs.columns)} inputs drifted ({inputs.drift_share:.0%}"
            f"{RELIANCE if inputs.weighted else ''}, limit "
            f"{settings.drift_share:.0%}): {', '.join(inputs.drifted[:10])}"
        )
    elif inputs.drifted:
        levels.append(VerdictLevel.WARN)
        reasons.append(f"inputs drifting: {', '.join(inputs.drifted[:10])}")
    if predictions is not None and predictions.drifted:
        levels.append(VerdictLevel.DRIFT if settings.prediction_drift == "drift" else VerdictLevel.WARN)
        reasons.append(f"predictions drifted: {', '.join(predictions.drifted)}")
    for column in inputs.columns:
        rise = column.null_rate_current - column.null_rate_reference
        if rise > settings.null_rate_change:
            levels.append(VerdictLevel.WARN)
            reasons.append(
                f"{column.column}: null rate up from {column.null_rate_reference:.1%} to {column.null_rate_current:.1%}"
            )
        if column.stuck_at is not None:
            levels.append(VerdictLevel.WARN)
            reasons.append(f"{column.column}: stuck at {column.stuck_at:.6g} through the window (a broken sensor?)")
        if column.new_categories:
            levels.append(VerdictLevel.WARN)
            reasons.append(f"{column.column}: new categories {column.new_categories[:5]}")
    return Verdict(max(levels, key=lambda level: level.rank), reasons, frozenset(levels) - {VerdictLevel.OK})


def _estimated(estimate: TargetEstimate, limit: float) -> str:
    interval, metric = estimate.estimate, estimate.metric
    return (
        f"{estimate.target}: estimated {metric} {interval.value:.4g} (95% {interval.low:.4g} to {interval.high:.4g}, "
        f"no labels needed) is {estimate.worsening:.0%} worse than expected ({estimate.expected:.4g}), "
        f"limit {limit:.0%}"
    )
