"""The ``[train]`` section of driftloop.toml: how the network is built and trained."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator


class TargetSettings(BaseModel):
    """The loss of one target's head and its weight in the total loss."""

    model_config = ConfigDict(extra="forbid")

    loss: Literal["mse", "huber", "mae"] = "huber"
    weight: float = Field(1.0, gt=0)


class TrainSettings(BaseModel):
    """How the network is built and trained."""

    model_config = ConfigDict(extra="forbid")

    hidden: list[int] = Field(default_factory=lambda: [128, 64], min_length=1)
    activation: Literal["swish", "relu", "gelu"] = "swish"
    batch_norm: bool = True
    dropout: float = Field(0.1, ge=0.0, lt=1.0)
    epochs: int = Field(200, ge=1)
    batch_size: int = Field(256, ge=1)
    learning_rate: float = Field(1e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    schedule: Literal["plateau", "cosine", "constant"] = "plateau"
    patience: int = Field(15, ge=1, description="Epochs without a better validation loss before stopping.")
    validation_fraction: float = Field(0.15, gt=0, lt=0.5, description="Share of time, before the test window.")
    test_fraction: float = Field(0.15, gt=0, lt=0.5, description="Share of time at the end, for final metrics.")
    seed: int = 0
    threads: int | None = Field(None, ge=1, description="Torch threads (default: all cores).")
    targets: dict[str, TargetSettings] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _room_to_train(self) -> Self:
        if self.validation_fraction + self.test_fraction >= 0.8:
            raise ValueError("validation_fraction + test_fraction must leave at least 20% of the time to train on")
        if any(size < 1 for size in self.hidden):
            raise ValueError(f"hidden layer sizes must be positive, got {self.hidden}")
        return self

    def target(self, name: str) -> TargetSettings:
        """Settings of target ``name`` (the defaults when the project names none)."""
        return self.targets.get(name, TargetSettings())
