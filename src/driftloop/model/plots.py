"""Plots of a training run, saved as PNG for MLflow: the learning curve; per number the
predicted-vs-actual scatter and the residual histogram on the test window; per label the
confusion matrix and the calibration curve (reliability diagram) on the test window."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from driftloop.errors import MissingDependency
from driftloop.model.metrics import calibration, class_indices, confusion
from driftloop.runtime.targets import probability_column

try:  # the plotting library is an extra: say which
    from matplotlib.figure import Figure
except ModuleNotFoundError as missing:
    raise MissingDependency.of(missing, extra="reports", purpose="drawing a training run's plots") from missing

if TYPE_CHECKING:
    from driftloop.model.trainer import TrainedModel


def draw(trained: TrainedModel, folder: Path) -> Path:
    """Write the run's plots into ``folder``; returns it."""
    folder.mkdir(parents=True, exist_ok=True)
    _learning_curve(trained, folder / "learning_curve.png")
    test = trained.splits.test
    predicted = trained.package.predict_valid(test)
    heads = trained.package.heads
    for target in trained.package.targets:
        if target in heads.classes:
            classes = heads.classes[target]
            actual_index = class_indices(test.get_column(target), classes)
            probabilities = predicted.select(probability_column(target, c) for c in classes).to_numpy()
            known = np.isfinite(actual_index)
            _confusion(actual_index[known].astype(int), probabilities[known], classes, target, folder)
            _calibration(actual_index[known].astype(int), probabilities[known], classes, target, folder)
            continue
        actual = test.get_column(target).cast(float).to_numpy()
        guess = predicted.get_column(target).to_numpy()
        known = np.isfinite(actual)
        _versus(actual[known], guess[known], target, folder / f"predicted_vs_actual_{target}.png")
        _residuals(guess[known] - actual[known], target, folder / f"residuals_{target}.png")
    return folder


def _confusion(actual: np.ndarray, probabilities: np.ndarray, classes: list[str], target: str, folder: Path) -> None:
    counts = confusion(actual, probabilities)
    size = len(classes)
    figure = Figure(figsize=(1.2 * size + 3, 1.2 * size + 2))
    axes = figure.subplots()
    image = axes.imshow(counts, cmap="Blues")
    for (row, column), count in np.ndenumerate(counts):
        shade = "white" if count > counts.max() / 2 else "black"
        axes.text(column, row, str(count), ha="center", va="center", color=shade)
    axes.set_xticks(range(size), classes, rotation=45, ha="right")
    axes.set_yticks(range(size), classes)
    axes.set(xlabel=f"predicted {target}", ylabel=f"actual {target}", title=f"{target}: confusion on the test window")
    figure.colorbar(image, ax=axes, label="rows")
    figure.tight_layout()
    figure.savefig(folder / f"confusion_{target}.png", dpi=100)


def _calibration(actual: np.ndarray, probabilities: np.ndarray, classes: list[str], target: str, folder: Path) -> None:
    figure = Figure(figsize=(5, 5))
    axes = figure.subplots()
    for name, curve in calibration(actual, probabilities, classes).items():
        axes.plot([b[0] for b in curve], [b[1] for b in curve], marker="o", label=name)
    axes.plot([0, 1], [0, 1], color="black", linewidth=1, linestyle="--")
    axes.set(xlabel="predicted probability", ylabel="observed share", title=f"{target}: calibration on the test window")
    axes.legend()
    figure.tight_layout()
    figure.savefig(folder / f"calibration_{target}.png", dpi=100)


def _learning_curve(trained: TrainedModel, path: Path) -> None:
    history = trained.fit.history
    figure = Figure(figsize=(7, 4))
    axes = figure.subplots()
    epochs = [h.epoch for h in history]
    axes.plot(epochs, [h.train_loss for h in history], label="training")
    axes.plot(epochs, [h.validation_loss for h in history], label="validation")
    axes.axvline(trained.fit.best_epoch, color="grey", linestyle="--", label=f"best epoch ({trained.fit.best_epoch})")
    axes.set(xlabel="epoch", ylabel="loss (scaled targets)", title="Learning curve")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def _versus(actual: np.ndarray, predicted: np.ndarray, target: str, path: Path) -> None:
    figure = Figure(figsize=(5, 5))
    axes = figure.subplots()
    axes.scatter(actual, predicted, s=4, alpha=0.4)
    low, high = float(min(actual.min(), predicted.min())), float(max(actual.max(), predicted.max()))
    axes.plot([low, high], [low, high], color="black", linewidth=1)
    axes.set(xlabel=f"actual {target}", ylabel=f"predicted {target}", title=f"{target}: test window")
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def _residuals(residuals: np.ndarray, target: str, path: Path) -> None:
    figure = Figure(figsize=(6, 4))
    axes = figure.subplots()
    axes.hist(residuals, bins=50)
    axes.axvline(0, color="black", linewidth=1)
    axes.set(xlabel=f"predicted - actual {target}", ylabel="rows", title=f"{target}: residuals on the test window")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
