"""How the label-free estimates held up in a replay: each tick's estimate of its monitored
window beside the metric realised on the rows of that window labelled by then, for the same
model. The estimate covers the rows whose labels had not come yet as well."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.stats import spearmanr

from driftloop.monitor.verdict import VerdictLevel
from driftloop.replay.run import DayRecord

# Fewer windows than this say nothing about a rank correlation.
MIN_WINDOWS = 3


@dataclass(frozen=True)
class EstimateAgreement:
    """One target's estimates against its realised metric over the replayed ticks."""

    target: str
    metric: str
    windows: int  # ticks with both an estimate and a realised metric
    rank_correlation: float  # Spearman's, over those windows (NaN with too few or constant ones)
    mean_abs_error: float  # of the estimate, in the metric's units
    mean_realised: float
    covered: float  # share of windows whose realised metric is inside the estimate's interval

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def agreement(records: list[DayRecord]) -> list[EstimateAgreement]:
    """Each target's agreement, for the targets that were estimated on some tick."""
    targets = sorted({t for r in records for t in r.estimated})
    found = []
    for target in targets:
        pairs = [(r.estimated[target], r.realised[target]) for r in records
                 if target in r.estimated and target in r.realised
                 and r.estimated[target]["metric"] == r.realised[target]["metric"]]  # fmt: skip
        if not pairs:
            continue
        estimated = np.array([e["value"] for e, _ in pairs], dtype=np.float64)
        realised = np.array([p["value"] for _, p in pairs], dtype=np.float64)
        inside = [e["low"] <= p["value"] <= e["high"] for e, p in pairs]
        enough = len(pairs) >= MIN_WINDOWS and np.ptp(estimated) > 0 and np.ptp(realised) > 0
        found.append(
            EstimateAgreement(
                target, pairs[0][0]["metric"], len(pairs),
                float(spearmanr(estimated, realised).statistic) if enough else float("nan"),
                float(np.mean(np.abs(estimated - realised))), float(np.mean(realised)), float(np.mean(inside)),
            )
        )  # fmt: skip
    return found


def estimated_degraded_days(records: list[DayRecord]) -> int:
    """Ticks whose verdict found the model estimated degraded (before, or without, its labels)."""
    return sum(VerdictLevel.ESTIMATED_DEGRADED in r.signals for r in records)
