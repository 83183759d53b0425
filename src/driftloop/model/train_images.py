"""The image network's training loop: mini-batches of standardised images, augmented afresh each
epoch, cross-entropy, AdamW, and early stopping on the validation loss (the best epoch's weights
are kept). Observers attach as :class:`~driftloop.model.train.Callback` objects, as for tables;
the same seed gives the same model.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional

from driftloop.errors import TrainingError
from driftloop.images import Standardisation
from driftloop.model.cnn import ConvNet
from driftloop.model.train import Callback, EarlyStopping, EpochLog, Fit
from driftloop.runtime.image_spec import ConvSpec
from driftloop.settings.images import Augmentation, ImageTrainSettings

# The one "target" of an image network, as its epoch logs name it.
LABEL = "label"


@dataclass(frozen=True)
class ImageSplit:
    """Images of one split as :meth:`Standardisation.pixels` gives them (N, C, H, W, in [0, 1]),
    and each one's class index."""

    pixels: np.ndarray
    classes: np.ndarray

    def __len__(self) -> int:
        return int(self.classes.shape[0])


ImageFit = Fit[ConvNet]


def fit_images(
    train: ImageSplit,
    validation: ImageSplit,
    spec: ConvSpec,
    standardisation: Standardisation,
    settings: ImageTrainSettings,
    callbacks: Sequence[Callback] = (),
) -> ImageFit:
    """Train a :class:`ConvNet` of ``spec`` on ``train``, stopping when ``validation`` stops improving."""
    if len(train) < 2 or len(validation) < 1:
        raise TrainingError(
            f"too few labelled images to train on: {len(train)} for training and {len(validation)} for validation"
        )
    model, optimiser, generator = _begin(spec, settings)
    checked = torch.from_numpy(standardisation.finish(validation.pixels))
    truth = torch.from_numpy(validation.classes).long()
    result = ImageFit(model)
    stopping = EarlyStopping(model, settings.patience)
    started = time.perf_counter()
    for epoch in range(1, settings.epochs + 1):
        began = time.perf_counter()
        loss = _epoch(model, optimiser, train, standardisation, settings, generator, result)
        model.eval()
        with torch.no_grad():
            validation_loss = float(functional.cross_entropy(model(checked), truth).item())
        log = EpochLog(epoch, loss, validation_loss, {LABEL: validation_loss},
                       optimiser.param_groups[0]["lr"], time.perf_counter() - began)  # fmt: skip
        result.log(log, callbacks)
        if stopping.out_of_patience(validation_loss, epoch):
            result.stopped_early = True
            break
    return result.end(stopping, started)


def refit_images(
    images: ImageSplit, spec: ConvSpec, standardisation: Standardisation, settings: ImageTrainSettings, epochs: int
) -> ImageFit:
    """Train a fresh :class:`ConvNet` on all of ``images`` for ``epochs`` epochs (the number early
    stopping chose on the held-out fit): nothing is held back, so nothing decides when to stop."""
    if len(images) < 2:
        raise TrainingError(f"too few labelled images to refit on: {len(images)}")
    model, optimiser, generator = _begin(spec, settings)
    result = ImageFit(model, best_epoch=epochs)
    started = time.perf_counter()
    for epoch in range(1, epochs + 1):
        began = time.perf_counter()
        loss = _epoch(model, optimiser, images, standardisation, settings, generator, result)
        result.history.append(
            EpochLog(epoch, loss, float("nan"), {}, optimiser.param_groups[0]["lr"], time.perf_counter() - began)
        )
    model.eval()
    result.seconds = time.perf_counter() - started
    return result


def _begin(spec: ConvSpec, settings: ImageTrainSettings) -> tuple[ConvNet, torch.optim.Optimizer, torch.Generator]:
    """A fresh network, its optimiser and the generator of its batches and augmentation, by the seed."""
    torch.manual_seed(settings.seed)
    model = ConvNet(spec)
    optimiser = torch.optim.AdamW(model.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay)
    return model, optimiser, torch.Generator().manual_seed(settings.seed)


def _epoch(
    model: ConvNet,
    optimiser: torch.optim.Optimizer,
    images: ImageSplit,
    standardisation: Standardisation,
    settings: ImageTrainSettings,
    generator: torch.Generator,
    result: ImageFit,
) -> float:
    """One pass over ``images`` in shuffled, freshly augmented mini-batches; the mean training loss."""
    model.train()
    pixels, labels = torch.from_numpy(images.pixels), torch.from_numpy(images.classes).long()
    order = torch.randperm(len(images), generator=generator)
    total = 0.0
    for start in range(0, len(images), settings.batch_size):
        rows = order[start : start + settings.batch_size]
        if len(rows) < 2:  # batch norm needs two images to measure a spread
            continue
        batch = augment(pixels[rows], settings.augment, generator)
        batch = torch.from_numpy(standardisation.finish(batch.numpy()))
        loss = functional.cross_entropy(model(batch), labels[rows])
        optimiser.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        optimiser.step()
        total += float(loss.item()) * len(rows)
        result.samples_seen += len(rows)
    return total / len(images)


def augment(batch: torch.Tensor, settings: Augmentation, generator: torch.Generator) -> torch.Tensor:
    """``batch`` (N, C, H, W, intensities in [0, 1]) with a random flip, shift, brightness and
    contrast for each image, as ``settings`` allow."""
    size = batch.shape[0]
    out = batch.clone()
    if settings.flip:
        flipped = torch.rand(size, generator=generator) < 0.5
        out[flipped] = out[flipped].flip(-1)
    if settings.crop > 0:
        out = _shifted(out, settings.crop, generator)
    if settings.contrast > 0:
        mean = out.mean(dim=(1, 2, 3), keepdim=True)
        out = (out - mean) * _factors(size, settings.contrast, generator) + mean
    if settings.brightness > 0:
        out = out * _factors(size, settings.brightness, generator)
    return out.clamp_(0.0, 1.0)


def _factors(size: int, spread: float, generator: torch.Generator) -> torch.Tensor:
    """One factor in [1 - spread, 1 + spread] per image, shaped to broadcast over its pixels."""
    return (1 + (torch.rand(size, generator=generator) * 2 - 1) * spread).view(size, 1, 1, 1)


def _shifted(batch: torch.Tensor, share: float, generator: torch.Generator) -> torch.Tensor:
    """Each image moved by up to ``share`` of its height and width, the uncovered edge black:
    what a crop of a padded image gives."""
    _, _, height, width = batch.shape
    pad_y, pad_x = max(1, int(height * share)), max(1, int(width * share))
    padded = functional.pad(batch, (pad_x, pad_x, pad_y, pad_y))
    ys = torch.randint(0, 2 * pad_y + 1, (batch.shape[0],), generator=generator).tolist()
    xs = torch.randint(0, 2 * pad_x + 1, (batch.shape[0],), generator=generator).tolist()
    return torch.stack(
        [padded[i, :, y : y + height, x : x + width] for i, (y, x) in enumerate(zip(ys, xs, strict=True))]
    )
