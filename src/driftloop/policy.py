"""The retrain policy: the ``[loop]`` settings and the decision whether a tick retrains.

A model is retrained when the monitoring verdict is one the settings act on (``degraded``
and/or ``drift``), at least ``min_new_labels`` labelled rows exist after the champion's
training data, and the last retrain is at least ``cooldown_days`` old. The decision is
plain data with its reason, recorded whether it retrains or not.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Verdicts = Literal["drift", "degraded"]


class LoopSettings(BaseModel):
    """How the daily loop runs and when it retrains."""

    model_config = ConfigDict(extra="forbid")

    retrain_on: list[Verdicts] = Field(default_factory=lambda: list[Verdicts](["degraded", "drift"]))
    min_new_labels: int = Field(144, ge=0, description="Labelled rows newer than the champion's training data.")
    cooldown_days: float = Field(7.0, ge=0, description="Days after a retrain before the next one.")
    training_window: Literal["expanding", "sliding"] = "expanding"
    window_days: float = Field(60.0, gt=0, description="Days of data a sliding window trains on.")
    monitor_days: float = Field(7.0, gt=0, description="Days, ending with the tick's day, each tick monitors.")
    compact_files: int = Field(
        16, ge=0, description="A tick compacts a table once a partition of it holds this many files (0: never)."
    )
    schedule_at: str = Field("02:00", pattern=r"^\d{2}:\d{2}$", description="Daily time of `driftloop schedule`.")
    webhook_url: str | None = Field(None, description="POST a JSON alert here (retried; never blocks a tick).")
    webhook_attempts: int = Field(3, ge=1)
    webhook_timeout_seconds: float = Field(5.0, gt=0)


@dataclass(frozen=True)
class RetrainDecision:
    """Whether this tick retrains, and why (or why not)."""

    retrain: bool
    reason: str


def should_retrain(
    verdict: str, new_labels: int, last_retrain: datetime | None, now: datetime, settings: LoopSettings
) -> RetrainDecision:
    """Apply the policy to one tick's facts."""
    if verdict not in settings.retrain_on:
        return RetrainDecision(False, f"verdict {verdict}: nothing to act on (acts on {settings.retrain_on})")
    if new_labels < settings.min_new_labels:
        return RetrainDecision(
            False, f"verdict {verdict}, but only {new_labels} new labelled rows (needs {settings.min_new_labels})"
        )
    if last_retrain is not None and now - last_retrain < timedelta(days=settings.cooldown_days):
        days = (now - last_retrain).total_seconds() / 86400
        return RetrainDecision(
            False,
            f"verdict {verdict}, but the last retrain was {days:.1f} days ago (cool-down {settings.cooldown_days:g})",
        )
    return RetrainDecision(True, f"verdict {verdict} with {new_labels} new labelled rows")
