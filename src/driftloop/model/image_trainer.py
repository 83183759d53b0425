"""Training an image project's network: the labelled images of the lake, split by capture time,
standardised, fitted with augmentation, measured on the held-out newest images, refit on all of
them for the epochs early stopping chose (``[images.train] refit``), and packaged.

The images are read from the ``images`` table at a known version, which the package's lineage
records with the window and the split, so a model names the exact image set it learnt from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

import numpy as np
import polars as pl

from driftloop.errors import ConfigError, TrainingError
from driftloop.images import ImageRules, Standardisation
from driftloop.lake import CAPTURED_AT, IMAGE_LABEL, IMAGE_STATS
from driftloop.model.data import split_by_time
from driftloop.model.image_data import labelled_images, opened
from driftloop.model.metrics import classification_metrics
from driftloop.model.onnx_export import GOLDEN_IMAGES, export_image_network
from driftloop.model.train import Callback
from driftloop.model.train_images import ImageFit, ImageSplit, fit_images, refit_images
from driftloop.project import Project
from driftloop.runtime.image_package import ImagePackage
from driftloop.runtime.image_spec import ConvSpec

# Labelled images a network is trained on at the least.
MIN_IMAGES = 10


@dataclass(frozen=True)
class TrainedImages:
    """A trained image network: its package, how training went, the rows of each split, and what
    monitoring's reference is made of (the window's image statistics, the held-out images)."""

    package: ImagePackage
    fit: ImageFit
    rows: dict[str, int]
    window_stats: pl.DataFrame
    held_out: ImageSplit
    refit: ImageFit | None = None  # the refit on every image that the package holds, if one was made
    # The package of the fit that held the validation and test images out (the package itself
    # without a refit): what the network makes of images it never saw.
    tested: ImagePackage | None = None


def train_images(
    project: Project,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    callbacks: Sequence[Callback] = (),
) -> TrainedImages:
    """Train the image network on the labelled images captured in ``[since, until)`` (naive UTC;
    open ends by default), the newest held out for validation and test."""
    settings = project.settings.images
    if settings is None:
        raise ConfigError(f"{project.root} is not an image project (no [images] section)")
    classes = project.contract.columns[IMAGE_LABEL].classes or []
    images, version = labelled_images(project.lake, since=since, until=until)
    if images.height < MIN_IMAGES:
        raise TrainingError(
            f"{images.height} labelled image(s) in the window: too few to train on (at least {MIN_IMAGES})"
        )
    train_settings, standardisation = settings.train, settings.standardise
    splits = split_by_time(images, CAPTURED_AT, train_settings.validation_fraction, train_settings.test_fraction)
    train, validation, test = (
        _split(part, classes, standardisation) for part in (splits.train, splits.validation, splits.test)
    )
    spec = ConvSpec(
        channels=standardisation.channels,
        height=standardisation.height,
        width=standardisation.width,
        classes=len(classes),
        blocks=list(train_settings.blocks),
        activation=train_settings.activation,
        dropout=train_settings.dropout,
    )
    fitted = fit_images(train, validation, spec, standardisation, train_settings, callbacks)
    package = ImagePackage(
        spec,
        fitted.model.weights(),
        standardisation,
        ImageRules.model_validate(settings.model_dump(include=set(ImageRules.model_fields))),
        IMAGE_LABEL,
        classes,
    )
    package.metrics = {
        "network": {
            name: {IMAGE_LABEL: _metrics(package, part)} for name, part in (("validation", validation), ("test", test))
        },
        "baseline": {"test": {IMAGE_LABEL: _prior_metrics(train, test, len(classes))}},
    }
    rows = {"train": len(train), "validation": len(validation), "test": len(test)}
    package.lineage = {
        "images_version": version,
        "window": [since.isoformat() if since else None, until.isoformat() if until else None],
        "rows": rows,
        "validation_start": splits.validation_start.isoformat(),
        "test_start": splits.test_start.isoformat(),
        "data_until": str(images.get_column(CAPTURED_AT).max()),
        "class_counts": dict(splits.train.get_column(IMAGE_LABEL).value_counts().iter_rows()),
        "seed": train_settings.seed,
        "best_epoch": fitted.best_epoch,
        "refit": None,
    }
    held_out = ImageSplit(
        np.concatenate([validation.pixels, test.pixels]), np.concatenate([validation.classes, test.classes])
    )
    refitted, tested = None, package
    if train_settings.refit and fitted.best_epoch > 0:
        everything = ImageSplit(
            np.concatenate([train.pixels, held_out.pixels]), np.concatenate([train.classes, held_out.classes])
        )
        refitted = refit_images(everything, spec, standardisation, train_settings, fitted.best_epoch)
        package = replace(package, weights=refitted.model.weights())  # a new package: its network is built afresh
        package.lineage["refit"] = {"rows": len(everything), "epochs": fitted.best_epoch, "seconds": refitted.seconds}
    newest = standardisation.finish(held_out.pixels[-GOLDEN_IMAGES:])
    package.exported = export_image_network(package.spec, package.weights, newest)
    return TrainedImages(package, fitted, rows, images.select(IMAGE_STATS), held_out, refitted, tested)


def _split(part: pl.DataFrame, classes: list[str], standardisation: Standardisation) -> ImageSplit:
    """A split's images decoded and made pixels (augmentation acts on these), and their class indices."""
    index = {c: i for i, c in enumerate(classes)}
    labels = np.array([index[label] for label in part.get_column(IMAGE_LABEL)], dtype=np.int64)
    return ImageSplit(standardisation.pixels(opened(part)), labels)


def _metrics(package: ImagePackage, part: ImageSplit) -> dict[str, float]:
    probabilities, _ = package.score(package.standardisation.finish(part.pixels))
    return classification_metrics(part.classes.astype(np.float64), probabilities)


def _prior_metrics(train: ImageSplit, test: ImageSplit, classes: int) -> dict[str, float]:
    """The baseline's metrics: every image given the training images' class shares, so its
    accuracy is the majority class's share of the test images (what a network must beat)."""
    shares = np.bincount(train.classes, minlength=classes) / len(train)
    return classification_metrics(test.classes.astype(np.float64), np.tile(shares, (len(test), 1)))
