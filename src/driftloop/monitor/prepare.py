"""What monitoring learns from a model when it is trained, kept in its package's reference:
how far the training data's own windows drift (:mod:`.calibration`) and the estimators of its
performance before labels come (:mod:`.estimates`), fitted on the held-out days."""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from driftloop.monitor.calibration import calibrate
from driftloop.monitor.estimates import ESTIMATES, fit_estimators
from driftloop.project import Project

if TYPE_CHECKING:  # the trainer brings torch, which monitoring itself never needs
    from driftloop.model.trainer import TrainedModel


def prepare_monitoring(trained: TrainedModel, project: Project) -> None:
    """Calibrate ``trained``'s drift thresholds and fit its performance estimators, in its package."""
    calibrate(trained, project)
    held_out = pl.concat([trained.splits.validation, trained.splits.test], how="vertical_relaxed")
    trained.package.reference[ESTIMATES] = fit_estimators(
        trained.package,
        trained.held_out_fit or trained.package,
        held_out,
        project.settings.promote,
        seed=project.settings.train.seed,
    )
