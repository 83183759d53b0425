"""The ``[rollout]`` section of driftloop.toml: how a canary takes traffic, and what stops it."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator


class RolloutSettings(BaseModel):
    """A canary's steps, the evidence each needs, and the guards that roll it back by themselves."""

    model_config = ConfigDict(extra="forbid")

    steps: list[float] = Field(
        [5.0, 25.0, 50.0, 100.0],
        description="The shares of traffic (percent) the candidate takes in turn; past the last, it goes through "
        "the promotion gates.",
    )
    step_minutes: float = Field(10.0, ge=0, description="Least time a step lasts before the next.")
    step_requests: int = Field(200, ge=1, description="Least requests the candidate answers in a step before the next.")
    guard_seconds: float = Field(5.0, gt=0, description="How often each server checks the guards.")
    guard_requests: int = Field(
        50, ge=1, description="Requests the candidate must have answered before a guard may judge it."
    )
    max_error_rate: float = Field(
        0.01, ge=0, le=1, description="Share of the candidate's requests that may fail (answered 5xx)."
    )
    max_p99_ms: float = Field(
        25.0,
        gt=0,
        description="The candidate's p99 latency may not exceed this while the champion's does not, nor twice the "
        "champion's (or the champion's and 10 ms, whichever is more).",
    )
    max_output_gap: float = Field(
        1.5,
        gt=0,
        description="How far the candidate's numbers may be from the champion's on the same rows: the mean absolute "
        "difference over the target's training spread. A sanity check for a broken version: two sound versions "
        "trained on other weeks of a drifting target were 0.86 apart on the energy demo; which is better is the "
        "decisive metric's call.",
    )
    max_label_gap: float = Field(
        0.5,
        gt=0,
        le=1,
        description="The share of rows whose label the candidate may predict otherwise than the champion.",
    )

    metric_seconds: float = Field(
        60.0, gt=0, description="How often a server compares the arms' decisive metric on the rows labelled so far."
    )
    metric_rows: int = Field(30, ge=2, description="Labelled rows each arm needs before the metric may judge.")
    metric_alpha: float = Field(
        0.05,
        gt=0,
        lt=1,
        description="The candidate is rolled back once its decisive metric is worse than the champion's with "
        "confidence 1 - alpha, by an always-valid sequential test (mSPRT): looking every minute does not inflate it.",
    )
    metric_effect: float = Field(
        0.1, gt=0, description="The difference (relative to the champion's mean loss) the test finds quickest."
    )

    @field_validator("steps")
    @classmethod
    def _rising_shares(cls, steps: list[float]) -> list[float]:
        if not steps or any(not 0 < s <= 100 for s in steps) or steps != sorted(set(steps)):
            raise ValueError(f"steps are rising percentages in (0, 100], e.g. [5, 25, 50, 100]; not {steps}")
        return steps
