"""The ``[train]`` section of driftloop.toml: how the network is built and trained."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

RegressionLoss = Literal["mse", "huber", "mae"]
CLASSIFICATION_LOSS = "cross_entropy"


class TargetSettings(BaseModel):
    """The loss of one target's head and its weight in the total loss."""

    model_config = ConfigDict(extra="forbid")

    loss: RegressionLoss | Literal["cross_entropy"] | None = Field(
        None, description="Default: huber for a number, cross_entropy for a label (the only loss a label takes)."
    )
    weight: float = Field(1.0, gt=0)
    class_weights: Literal["balanced"] | dict[str, float] | None = Field(
        None,
        description="A label's class weights in its loss: \"balanced\" (inverse to each class's share of the "
        "training rows) or a weight per class; default: every class alike.",
    )

    def loss_for(self, classification: bool) -> str:
        """The loss of this target's head: the one set, else the default for its kind."""
        if classification:
            if self.loss not in (None, CLASSIFICATION_LOSS):
                raise ValueError(f"a label is trained with cross_entropy, not {self.loss}")
            return CLASSIFICATION_LOSS
        if self.loss == CLASSIFICATION_LOSS:
            raise ValueError("cross_entropy is the loss of a label; a number takes mse, huber or mae")
        return self.loss or "huber"


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
    validation_days: float | None = Field(
        None,
        gt=0,
        description="Size the validation window in days (ending where the test window starts) instead of by "
        "validation_fraction: a retrain's early stopping then watches the newest days but the test ones.",
    )
    test_days: float | None = Field(
        None,
        gt=0,
        description="Size the test window in days (ending with the newest labelled row) instead of by "
        "test_fraction. The challenger is judged against the champion on these days.",
    )
    refit: bool = Field(
        True,
        description="After early stopping has chosen the number of epochs, fit the network again on the whole "
        "window, validation and test days included, for that many epochs: the model that serves then learns "
        "from the newest days, the ones that drifted. Its test metrics, and the comparison with the champion, "
        "are those of the fit that held the test days out.",
    )
    linear_path: bool = Field(
        True,
        description="A linear path from the inputs to the outputs beside the trunk, started from the fitted "
        "linear baseline: the network begins where the linear model ends and learns what it misses, so on "
        "small or nearly linear data it does not fall below it.",
    )
    max_rows: int | None = Field(
        2_000_000,
        ge=1000,
        description="Train on at most about this many rows of the window: beyond, a sample spread evenly over "
        "its time (each row kept by a hash of its key and the seed), so the features table never has to fit in "
        "memory; the share is recorded with the run. None: every row.",
    )
    processes: int = Field(
        1,
        ge=1,
        description="Train data-parallel on this many processes, each on its share of every epoch's rows, "
        "gradients averaged (Spark's TorchDistributor: the Spark engine). 1: in this process.",
    )
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
