"""Train a project's model: features at a known version -> time split -> preprocessing fitted on
the training window -> network -> metrics on every split, and the ridge baseline beside it.

The result is a :class:`TrainedModel`: a package ready to save, with the numbers that judge it.
Tracking is not done here; an observer (``driftloop.registry.mlflow.tracking``) records what this produces.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import polars as pl

from driftloop.errors import TrainingError
from driftloop.features import FeatureSet
from driftloop.lake import Table
from driftloop.model.baseline import Ridge
from driftloop.model.data import Splits, split_by_time, training_rows
from driftloop.model.metrics import regression_metrics
from driftloop.model.train import Callback, FitResult, Tensors, fit
from driftloop.profiles import profile
from driftloop.project import Project
from driftloop.runtime.package import ModelPackage
from driftloop.runtime.preprocess import Preprocessor, TargetScaler
from driftloop.runtime.spec import NetworkSpec

SPLITS = ("train", "validation", "test")


@dataclass
class TrainedModel:
    """A trained package, how training went, and its metrics beside the baseline's."""

    package: ModelPackage
    fit: FitResult
    splits: Splits
    features_version: int

    @property
    def metrics(self) -> dict[str, dict[str, dict[str, float]]]:
        """``{split: {target: {metric: value}}}`` for the network."""
        return self.package.metrics["network"]  # type: ignore[no-any-return]

    @property
    def baseline_metrics(self) -> dict[str, dict[str, dict[str, float]]]:
        return self.package.metrics["baseline"]  # type: ignore[no-any-return]


def train_project(
    project: Project,
    *,
    features_version: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    callbacks: Sequence[Callback] = (),
) -> TrainedModel:
    """Train the project's network on its features table (the latest version by default),
    optionally on the rows with ``since <= event time < until`` only."""
    features = project.feature_set()
    contract, settings = project.contract, project.settings.train
    events = contract.clock
    if events is None:
        raise TrainingError("training splits by event time; give one date or datetime column the role 'event_time'")
    clock = events.column
    unknown = [t for t in settings.targets if t not in contract.targets]
    if unknown:
        raise TrainingError(
            f"[train.targets] names {unknown}, which are not targets; the targets are {contract.targets}"
        )
    lake = project.lake
    labels_version = lake.version(Table.LABELS) if lake.exists(Table.LABELS) else None
    rows, version = training_rows(
        lake, features, version=features_version, labels_version=labels_version, since=since, until=until
    )
    splits = split_by_time(rows, clock, settings.validation_fraction, settings.test_fraction)
    numeric, categorical = features.numeric_inputs, features.categorical_inputs
    nullable = {n for n in numeric if n not in contract.columns or contract.columns[n].nullable}
    preprocessor = Preprocessor.fit(features.apply(splits.train), numeric, categorical, nullable=nullable)
    scaler = TargetScaler.fit(splits.train, contract.targets)
    data = {name: _arrays(getattr(splits, name), features, preprocessor, scaler) for name in SPLITS}
    spec = NetworkSpec(
        numeric=len(preprocessor.numeric_names),
        cardinalities=preprocessor.cardinalities,
        targets=len(contract.targets),
        hidden=settings.hidden,
        activation=settings.activation,
        batch_norm=settings.batch_norm,
        dropout=settings.dropout,
    )
    result = fit(
        Tensors.of(*data["train"]), Tensors.of(*data["validation"]), spec, settings, contract.targets, callbacks
    )
    package = ModelPackage(spec, result.model.weights(), preprocessor, scaler, features)
    ridge = Ridge.fit(*data["train"], preprocessor.cardinalities)
    metrics: dict[str, Any] = {"network": {}, "baseline": {}, "overall": {}}
    for name in SPLITS:
        numbers, categories, scaled = data[name]
        actual = scaler.unscale(scaled)
        metrics["network"][name] = _per_target(actual, scaler.unscale(package.network(numbers, categories)), scaler)
        metrics["baseline"][name] = _per_target(actual, scaler.unscale(ridge.predict(numbers, categories)), scaler)
        metrics["overall"][name] = overall(metrics["network"][name])
    lineage = {
        "features_table": str(lake.uri(Table.FEATURES)),
        "features_version": version,
        "labels_version": labels_version,
        "window": [since.isoformat() if since else None, until.isoformat() if until else None],
        "data_until": str(rows.select(events.instants().max()).item()),  # the newest event time trained on
        "rows": {name: getattr(splits, name).height for name in SPLITS},
        "validation_start": splits.validation_start.isoformat(),
        "test_start": splits.test_start.isoformat(),
        "trained_at": datetime.now(UTC).isoformat(),
        "seed": settings.seed,
        "best_epoch": result.best_epoch,
    }
    package.metrics, package.lineage = metrics, lineage
    package.reference = reference_profiles(package, splits.train, numeric, categorical)
    return TrainedModel(package, result, splits, version)


def reference_profiles(
    package: ModelPackage, rows: pl.DataFrame, numeric: list[str], categorical: list[str]
) -> dict[str, Any]:
    """Profiles of the training window: its inputs and targets, and the model's own predictions."""
    inputs = profile(package.features.apply(rows), [*numeric, *package.targets], categorical)
    predictions = profile(package.predict_valid(rows), package.targets, [])
    return {"inputs": inputs.to_dict(), "predictions": predictions.to_dict()}


def overall(by_target: dict[str, dict[str, float]]) -> dict[str, float]:
    """Scale-free metrics averaged over targets (MAE and RMSE are in each target's own units)."""
    return {m: sum(v[m] for v in by_target.values()) / len(by_target) for m in ("smape", "r2")}


def _arrays(
    rows: pl.DataFrame, features: FeatureSet, preprocessor: Preprocessor, scaler: TargetScaler
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    numbers, categories = preprocessor.transform(features.apply(rows))
    return numbers, categories, scaler.scale(rows)


def _per_target(actual: np.ndarray, predicted: np.ndarray, scaler: TargetScaler) -> dict[str, dict[str, float]]:
    return {t: regression_metrics(actual[:, i], predicted[:, i]) for i, t in enumerate(scaler.mean)}
