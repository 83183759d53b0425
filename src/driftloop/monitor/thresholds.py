"""A calibrated drift threshold from the statistics of the reference's own windows
(:mod:`driftloop.monitor.calibration` computes them at training time)."""

from __future__ import annotations

from typing import Any

import numpy as np

CALIBRATION = "calibration"  # the key of a package's reference that holds the windows' statistics
# Fewer windows than this say too little about the data's variability: the fixed threshold holds.
MIN_WINDOWS = 8


def threshold(column: dict[str, Any] | None, test: str, false_alarm_rate: float) -> float | None:
    """The calibrated threshold of one column's ``test`` statistic: the ``1 - false_alarm_rate``
    quantile of its windows' statistics. None (keep the fixed threshold) without enough windows,
    or when they were measured with another test."""
    if column is None or column.get("test") != test or len(column.get("statistics", [])) < MIN_WINDOWS:
        return None
    return float(np.quantile(np.asarray(column["statistics"]), 1 - false_alarm_rate, method="higher"))
