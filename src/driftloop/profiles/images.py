"""The profiles an image model is watched by: its images' statistics, and its outputs (how
confident it is, and which classes it predicts), on the same bins as its training images'.
Computed from plain frames, so a device profiles its own log with them."""

from __future__ import annotations

import polars as pl

from driftloop.lake import IMAGE_STATS
from driftloop.profiles.profile import Profile, profile

CONFIDENCE = "confidence"  # the column of the network's largest class probability


def image_profile(stats: pl.DataFrame, like: Profile | None = None) -> Profile:
    """The profile of images' statistics (a column per statistic of ``image_stats``)."""
    return profile(stats.select(IMAGE_STATS).cast(pl.Float64), list(IMAGE_STATS), [], like=like)


def output_profile(
    target: str, outputs: pl.DataFrame, probabilities: list[str], like: Profile | None = None
) -> Profile:
    """The profile of the network's confidence and predicted classes: ``outputs`` holds the
    predicted class (``target``) and a column of each class's probability (``probabilities``)."""
    frame = outputs.select(pl.max_horizontal(probabilities).cast(pl.Float64).alias(CONFIDENCE), pl.col(target))
    return profile(frame, [CONFIDENCE], [target], like=like)


__all__ = ["CONFIDENCE", "image_profile", "output_profile"]
