"""The ``[images]`` section of driftloop.toml: an image project's contract for files, how an image
becomes the network's input (``[images.standardise]``), and how the network is built and trained
(``[images.train]``, with its augmentation in ``[images.train.augment]``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from driftloop.images import ImageRules, Standardisation


class Augmentation(BaseModel):
    """Random changes to each training image, new at every epoch, so the network learns what does
    not depend on them (never applied when scoring)."""

    model_config = ConfigDict(extra="forbid")

    flip: bool = Field(True, description="Mirror half the images left to right.")
    crop: float = Field(
        0.1, ge=0, le=0.3, description="Shift each image by up to this share of its size, filling with black."
    )
    brightness: float = Field(0.2, ge=0, le=0.9, description="Scale each image's intensity by up to +/- this share.")
    contrast: float = Field(0.2, ge=0, le=0.9, description="Scale each image's spread around its mean by up to +/-.")


class ImageTrainSettings(BaseModel):
    """How the image network is built and trained."""

    model_config = ConfigDict(extra="forbid")

    blocks: list[int] = Field(
        default_factory=lambda: [16, 32, 64],
        min_length=1,
        max_length=6,
        description="Channels of each convolution block (3x3 convolution, batch norm, activation, 2x2 pooling).",
    )
    activation: Literal["swish", "relu", "gelu"] = "swish"
    dropout: float = Field(0.2, ge=0.0, lt=1.0)
    epochs: int = Field(40, ge=1)
    batch_size: int = Field(64, ge=2)
    learning_rate: float = Field(2e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    patience: int = Field(6, ge=1, description="Epochs without a better validation loss before stopping.")
    validation_fraction: float = Field(0.15, gt=0, lt=0.5)
    test_fraction: float = Field(0.15, gt=0, lt=0.5)
    seed: int = 0
    augment: Augmentation = Field(default_factory=Augmentation)
    refit: bool = Field(
        True,
        description="After early stopping has chosen the number of epochs, fit the network again on every "
        "labelled image of the window, the validation and test images included, for that many epochs: the "
        "model that serves then learns from the newest images, the ones that drifted. Its test metrics are "
        "those of the fit that held the test images out.",
    )


class ImageSettings(ImageRules):
    """The ``[images]`` section: what a valid image file is, its standardisation and training."""

    standardise: Standardisation = Field(default_factory=Standardisation)
    train: ImageTrainSettings = Field(default_factory=ImageTrainSettings)
