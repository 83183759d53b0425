"""The ``[promote]`` section of driftloop.toml: when a model may move dev -> qa -> prod."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class PromoteSettings(BaseModel):
    """The ``[promote]`` section: when a model may move dev -> qa -> prod."""

    model_config = ConfigDict(extra="forbid")

    metric: Literal["mae", "rmse", "smape", "r2"] = Field("mae", description="The metric that decides for a number.")
    class_metric: Literal["accuracy", "balanced_accuracy", "macro_f1", "roc_auc", "log_loss", "brier"] = Field(
        "log_loss", description="The metric that decides for a label."
    )
    margin: float = Field(0.01, ge=0, description="Relative improvement over the champion required to replace it.")
    tolerance: float = Field(0.05, ge=0, description="Relative worsening any target may show and still be promoted.")
    window_days: float = Field(
        7, gt=0, description="The most recent labelled days the qa gates' sample rows are drawn from."
    )
    judge_days: float | None = Field(
        None,
        gt=0,
        description="Judge a challenger against the champion on this many days after its training data ends, "
        "scored by both and fitted by neither, once their labels are in: it waits in qa as the challenger "
        "until then, so a refit that learnt from the newest days is judged as it will serve. None: judge it at "
        "once on its held-out test window (the fit that left those days out).",
    )
    judge_wait_days: float = Field(
        7,
        ge=0,
        description="How long after the judge_days a challenger waits for their last labels; then it is judged on "
        "the labelled rows there are, and rejected if there are none.",
    )
    baseline_margin: float = Field(
        0.005,
        ge=0,
        description="At the qa gate, how far (relative) the network's test metric may fall short of the linear "
        "baseline's and still hold it: a network started from the baseline that finds nothing more to learn "
        "differs from it by noise. Set 0 to require a strict gain.",
    )
    latency_budget_ms: float = Field(50.0, gt=0, description="p99 single-row latency allowed at the qa gate.")
    floors: dict[str, float] = Field(
        default_factory=dict,
        description='Minimum test metrics, e.g. {"Appliances.r2" = 0.1}; error metrics are maxima.',
    )

    def decisive(self, metrics: Mapping[str, object]) -> str:
        """The metric that decides for a target with these ``metrics``: ``metric`` for a number,
        ``class_metric`` for a label."""
        return self.metric if self.metric in metrics else self.class_metric
