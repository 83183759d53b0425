"""Drift between a reference profile and a current one: per column, and for the whole dataset.

The test for a column is chosen by its type and the reference's size, as Evidently does by
default: above ``large_reference`` rows a distance (normalised Wasserstein for numbers,
Jensen–Shannon for categories, threshold 0.1), below it a hypothesis test (KS, chi-square,
p < 0.05). Numbers also get PSI and KS as extra statistics; every column reports a rise in
its null rate and categories it never had. A number that holds one value through a window,
when none of the training data's windows ever did, is stuck (a broken sensor repeating its
last reading) and counts as drifted whatever its test says: a stuck value can sit where the
data usually is. The dataset drifts when at least ``drift_share``
of its columns do (counted by the model's reliance on each, when that is known). Results are
plain data; what to do about them is the policy's business.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from driftloop.monitor.stattests import DriftTest, TestResult, tests
from driftloop.monitor.thresholds import threshold
from driftloop.profiles import CategoryProfile, NumericProfile, Profile
from driftloop.settings.monitor import MonitorSettings


@dataclass(frozen=True)
class ColumnDrift:
    """What the drift tests say about one column."""

    column: str
    kind: str  # "numeric" or "category"
    result: TestResult
    extra: dict[str, float] = field(default_factory=dict)
    null_rate_reference: float = 0.0
    null_rate_current: float = 0.0
    new_categories: list[str] = field(default_factory=list)
    stuck_at: float | None = None  # the one value a number held through the window, never seen so in training

    @property
    def drifted(self) -> bool:
        return self.result.drifted or self.stuck_at is not None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DriftReport:
    """Drift of every compared column, and the dataset-level verdict."""

    columns: list[ColumnDrift]
    drift_share: float
    dataset_drift: bool
    reference_rows: int
    current_rows: int
    weighted: bool = False  # drift_share counts each column by the model's reliance on it

    @property
    def drifted(self) -> list[str]:
        return [c.column for c in self.columns if c.drifted]


def choose_test(kind: str, reference_rows: int, settings: MonitorSettings) -> DriftTest:
    """The test the settings pick for a column of ``kind`` with a reference of ``reference_rows``."""
    large = reference_rows > settings.large_reference
    if kind == "numeric":
        auto, chosen = ("wasserstein" if large else "ks"), str(settings.numeric_test)
    else:
        auto, chosen = ("jensenshannon" if large else "chisquare"), str(settings.category_test)
    return tests()[auto if chosen == "auto" else chosen]


def compare(
    reference: Profile,
    current: Profile,
    settings: MonitorSettings,
    calibration: dict[str, Any] | None = None,
    importance: dict[str, float] | None = None,
) -> DriftReport:
    """Drift of every column both profiles have (current profiled with ``like=reference``), by the
    tests and thresholds of ``settings`` (the project's ``[monitor]``: never silently the defaults).

    ``calibration`` holds each column's statistics over the reference's own windows
    (:mod:`driftloop.monitor.calibration`); with ``drift_thresholds = "calibrated"`` a column
    that has them drifts when its statistic is beyond their ``1 - false_alarm_rate`` quantile.
    With ``importance`` (each column's share of the model's reliance) and ``weigh_by_importance``,
    the dataset's drift share counts each column by it."""
    available = tests()
    results = []
    for name, ref in reference.columns.items():
        cur = current.columns.get(name)
        if cur is None or type(cur) is not type(ref):
            continue
        kind = "numeric" if isinstance(ref, NumericProfile) else "category"
        test = choose_test(kind, ref.count, settings)
        result = test(ref, cur, settings.thresholds.get(test.name, test.default_threshold))
        if settings.drift_thresholds == "calibrated" and calibration:
            limit = threshold(calibration.get(name), test.name, settings.false_alarm_rate)
            if limit is not None:
                drifted = result.statistic > limit + 1e-12  # a column constant in training drifts on any change
                result = replace(result, threshold=limit, drifted=drifted, calibrated=True)
        extra: dict[str, float] = {}
        if kind == "numeric":
            for other in ("psi", "ks"):
                if other != test.name:
                    side = available[other](ref, cur, available[other].default_threshold)
                    extra[other] = side.p_value if other == "ks" and side.p_value is not None else side.statistic
        results.append(
            ColumnDrift(
                name,
                kind,
                result,
                extra,
                _null_rate(ref),
                _null_rate(cur),
                _new_categories(ref, cur),
                _stuck_at(cur, (calibration or {}).get(name)),
            )
        )
    weights = {c.column: importance.get(c.column, 0.0) for c in results} if importance else {}
    weighted = settings.weigh_by_importance and sum(weights.values()) > 0
    if weighted:
        share = sum(weights[c.column] for c in results if c.drifted) / sum(weights.values())
    else:
        share = sum(c.drifted for c in results) / len(results) if results else 0.0
    dataset = share >= settings.drift_share and bool(results)
    return DriftReport(results, share, dataset, reference.rows, current.rows, weighted)


# Rows a window needs before holding one value means a stuck reading rather than a quiet hour.
STUCK_ROWS = 10


def is_single_valued(profile: NumericProfile | CategoryProfile) -> bool:
    """Whether a number's profile holds one value, over enough rows to tell."""
    return isinstance(profile, NumericProfile) and profile.count >= STUCK_ROWS and profile.minimum == profile.maximum


def _stuck_at(current: NumericProfile | CategoryProfile, calibration: dict[str, Any] | None) -> float | None:
    """The value a number is stuck at: single-valued now, and in none of the training data's
    windows (without them, calibration's windows unknown, nothing is called stuck)."""
    if calibration is None or calibration.get("single_valued", 1) > 0 or not is_single_valued(current):
        return None
    assert isinstance(current, NumericProfile)
    return current.minimum


def _null_rate(profile: NumericProfile | CategoryProfile) -> float:
    total = profile.count + profile.nulls
    return profile.nulls / total if total else 0.0


def _new_categories(
    reference: NumericProfile | CategoryProfile, current: NumericProfile | CategoryProfile
) -> list[str]:
    if isinstance(reference, CategoryProfile) and isinstance(current, CategoryProfile):
        return sorted(set(current.counts) - set(reference.counts))
    return []
