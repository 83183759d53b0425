"""The ``[monitor]`` section of driftloop.toml: which drift tests, which thresholds."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class MonitorSettings(BaseModel):
    """How drift is measured and when a window counts as drifted (Evidently-compatible defaults)."""

    model_config = ConfigDict(extra="forbid")

    numeric_test: Literal["auto", "ks", "wasserstein", "psi"] = Field(
        "auto", description="auto: normalised Wasserstein above large_reference rows, else KS."
    )
    category_test: Literal["auto", "chisquare", "jensenshannon"] = Field(
        "auto", description="auto: Jensen-Shannon above large_reference rows, else chi-square."
    )
    large_reference: int = Field(1000, ge=1, description="Reference rows above which distances replace p-values.")
    thresholds: dict[str, float] = Field(
        default_factory=dict, description="Per test, e.g. {wasserstein = 0.1, ks = 0.05, psi = 0.25}."
    )
    drift_thresholds: Literal["calibrated", "fixed"] = Field(
        "calibrated",
        description="calibrated: each column's threshold is how far windows of monitor_days inside the training "
        "data move (its statistic's 1 - false_alarm_rate quantile); fixed: the thresholds above for every column "
        "(Evidently's). A model without the windows' statistics keeps the fixed ones.",
    )
    false_alarm_rate: float = Field(
        0.02, gt=0, lt=0.5, description="Share of the training data's own windows a calibrated threshold flags."
    )
    drift_share: float = Field(0.5, gt=0, le=1, description="Share of drifted columns that makes the dataset drift.")
    weigh_by_importance: bool = Field(
        True,
        description="Count each input in drift_share by its permutation importance to the model (measured at "
        "training), so a drifting input the model ignores does not make the dataset drift.",
    )
    prediction_drift: Literal["warn", "drift"] = Field(
        "warn",
        description="What a drift of the model's outputs alone makes the verdict. warn: reported, not a retrain "
        "signal (outputs follow every seasonal move of the inputs, while the model may be as good as ever; "
        "benchmarks/bench_alarms.py measured 86-100% of untouched windows flagged so); drift: a retrain signal.",
    )
    null_rate_change: float = Field(0.1, ge=0, le=1, description="Rise in a column's null rate that is reported.")
    degradation: float = Field(
        0.25, ge=0, description="Relative worsening of the decisive metric vs the model's test window: degraded."
    )
    min_labelled_rows: int = Field(30, ge=1, description="Labelled rows a window needs before performance counts.")
