"""The ``[loop]`` section of driftloop.toml: how the daily loop runs and when it retrains."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Verdicts = Literal["drift", "estimated_degraded", "degraded"]


class LoopSettings(BaseModel):
    """How the daily loop runs and when it retrains."""

    model_config = ConfigDict(extra="forbid")

    retrain_on: list[Verdicts] = Field(
        default_factory=lambda: list[Verdicts](["degraded", "estimated_degraded", "drift"]),
        description="The monitoring signals that retrain: degraded (labels show it), estimated_degraded "
        "(estimated before the labels come), drift.",
    )
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
