"""Drift of an image model's inputs and outputs: what a camera changed, and what the network
made of it.

Three looks, each against what the package recorded at training:
- the images' statistics (brightness, contrast, sharpness, colour means), profiled and tested
  column by column with the tabular drift tests (a darker line moves brightness, contrast and
  the colours at once, so the dataset verdict counts them as for any table);
- the network's outputs: its confidence (the top probability) and the balance of predicted
  classes, against those on held-out images;
- its embeddings, by a maximum-mean-discrepancy permutation test against held-out images', at
  the project's ``false_alarm_rate`` (the share of calm windows it may flag).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from driftloop.errors import MonitorError
from driftloop.lake import IMAGE_STATS
from driftloop.model.image_trainer import TrainedImages
from driftloop.monitor.drift import DriftReport, compare
from driftloop.monitor.embeddings import MAX_VECTORS, mmd_test
from driftloop.monitor.performance import TargetPerformance
from driftloop.monitor.stattests import TestResult
from driftloop.monitor.verdict import Verdict, VerdictLevel, decide
from driftloop.profiles import Profile
from driftloop.profiles.images import image_profile, output_profile
from driftloop.runtime.image_package import ImagePackage, ImagePredictions
from driftloop.settings.monitor import MonitorSettings


@dataclass(frozen=True)
class ImageDrift:
    """What the three looks found in one window of images."""

    images: DriftReport  # the statistics of the images
    outputs: DriftReport  # confidence and predicted classes
    embeddings: TestResult

    @property
    def drifted(self) -> bool:
        """Whether the images changed: their statistics as a whole, or what the network sees."""
        return self.images.dataset_drift or self.embeddings.drifted

    def reasons(self) -> list[str]:
        """Sentences for people: what moved."""
        found = []
        if self.images.dataset_drift:
            found.append(f"image statistics drifted: {', '.join(self.images.drifted)}")
        if self.embeddings.drifted:
            found.append(f"the network's embeddings drifted (MMD p = {self.embeddings.p_value:.3f})")
        if self.outputs.drifted:
            found.append(f"outputs drifted: {', '.join(self.outputs.drifted)}")
        return found


def predictions_profile(predictions: ImagePredictions, like: Profile | None = None) -> Profile:
    """The profile of the network's confidence and predicted classes."""
    frame = predictions.frame()
    columns = [c for c in frame.columns if c != predictions.target]
    return output_profile(predictions.target, frame, columns, like=like)


def prepare_image_monitoring(trained: TrainedImages) -> None:
    """Give ``trained``'s package its reference: the profile of its window's image statistics, and
    its outputs and embeddings on the held-out images.

    The outputs are those of the fit that never saw those images: a refit network trained on them
    too is surer of them than of any new image, and its confidence would seem to fall on every
    new day. The embeddings are the serving network's own (another network's would be another
    space), on the same images."""
    package = trained.package
    pixels = package.standardisation.finish(trained.held_out.pixels)
    probabilities, _ = (trained.tested or package).score(pixels)
    _, embeddings = package.score(pixels)
    held_out = ImagePredictions(package.target, package.classes, probabilities, embeddings, [], [])
    package.reference = {
        "images": image_profile(trained.window_stats).to_dict(),
        "outputs": predictions_profile(held_out).to_dict(),
    }
    package.reference_embeddings = embeddings[:MAX_VECTORS]


def image_drift(package: ImagePackage, current: ImagePredictions, settings: MonitorSettings) -> ImageDrift:
    """Drift of a window's images and predictions (``current``, from ``package.predict``) against
    the package's reference, by the tests of ``settings``."""
    reference = package.reference
    if "images" not in reference or "outputs" not in reference or package.reference_embeddings is None:
        raise MonitorError("the image package holds no reference to compare with; retrain it with this driftloop")
    if len(current.image_ids) < 2:
        raise MonitorError(f"{len(current.image_ids)} image(s) in the window: too few to compare (at least 2)")
    images_reference = Profile.from_dict(reference["images"])
    outputs_reference = Profile.from_dict(reference["outputs"])
    stats = pl.DataFrame(current.stats, schema=dict.fromkeys(IMAGE_STATS, pl.Float64))
    current_images = image_profile(stats, like=images_reference)
    return ImageDrift(
        compare(images_reference, current_images, settings),
        compare(outputs_reference, predictions_profile(current, like=outputs_reference), settings),
        mmd_test(package.reference_embeddings, current.embeddings, alpha=settings.false_alarm_rate),
    )


def image_verdict(drift: ImageDrift, performance: Sequence[TargetPerformance], settings: MonitorSettings) -> Verdict:
    """The window's verdict, as a table's is decided (the image statistics as its inputs, the
    confidence and classes as its predictions, the realised metrics), with the embeddings' drift
    as one more sign of ``drift``: the network may see a change no single statistic shows."""
    verdict = decide(drift.images, drift.outputs, list(performance), settings)
    if not drift.embeddings.drifted:
        return verdict
    reason = f"the network's embeddings drifted (MMD p = {drift.embeddings.p_value:.3g})"
    level = max(verdict.level, VerdictLevel.DRIFT, key=lambda found: found.rank)
    return Verdict(level, [*verdict.reasons, reason], verdict.signals | {VerdictLevel.DRIFT})
