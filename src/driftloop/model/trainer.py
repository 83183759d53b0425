"""Train a project's model: features at a known version -> time split -> preprocessing fitted on
the training window -> network -> metrics on every split, and the linear baseline beside it.

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
from driftloop.model.baseline import Baseline
from driftloop.model.data import Sample, Splits, split_by_time, split_clock, training_rows
from driftloop.model.distributed import fit_on, refit_on
from driftloop.model.importance import permutation_importance
from driftloop.model.metrics import CLASSIFICATION_METRICS, HIGHER_IS_BETTER, classification_metrics, regression_metrics
from driftloop.model.onnx_export import GOLDEN_ROWS, export_table_network
from driftloop.model.train import Callback, FitResult, Tensors
from driftloop.profiles import profile
from driftloop.project import Project
from driftloop.runtime.package import ModelPackage
from driftloop.runtime.preprocess import Preprocessor
from driftloop.runtime.spec import NetworkSpec
from driftloop.runtime.targets import Targets
from driftloop.settings.train import TrainSettings

SPLITS = ("train", "validation", "test")


@dataclass
class TrainedModel:
    """A trained package, how training went, and its metrics beside the baseline's."""

    package: ModelPackage
    fit: FitResult
    splits: Splits
    features_version: int
    refit: FitResult | None = None  # the refit on every row that the package holds, if one was made
    fitted_on: pl.DataFrame | None = None  # the rows the serving weights were fitted on
    # The fit that never saw the validation and test days (the package itself, without a refit).
    held_out_fit: ModelPackage | None = None

    @property
    def metrics(self) -> dict[str, dict[str, dict[str, float]]]:
        """``{split: {target: {metric: value}}}`` for the network."""
        return self.package.metrics["network"]  # type: ignore[no-any-return]

    @property
    def train_seconds(self) -> float:
        """Seconds in the training loops: the held-out fit, and the refit if one was made."""
        return self.fit.seconds + (self.refit.seconds if self.refit else 0.0)

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
    version = lake.version(Table.FEATURES) if features_version is None else features_version
    sample = Sample.of(lake, features, settings.max_rows, version=version, since=since, until=until, seed=settings.seed)
    rows, version = training_rows(
        lake, features, version=version, labels_version=labels_version, since=since, until=until, sample=sample
    )
    splits = split_by_time(
        rows, clock, settings.validation_fraction, settings.test_fraction,
        validation_days=settings.validation_days, test_days=settings.test_days,
    )  # fmt: skip
    held_out = _Recipe.prepare(splits.train, features, settings)
    data = {name: held_out.arrays(getattr(splits, name)) for name in SPLITS}
    engine, processes = project.engine, settings.processes
    result = fit_on(
        engine, processes, Tensors.of(*data["train"]), Tensors.of(*data["validation"]), held_out.spec, settings,
        contract.targets, callbacks, classes=held_out.heads.classes, linear_start=held_out.linear_start(settings),
    )  # fmt: skip
    package = held_out_fit = held_out.package(result)
    metrics: dict[str, Any] = {"network": {}, "baseline": {}, "overall": {}}
    for name in SPLITS:
        numbers, categories, encoded = data[name]
        metrics["network"][name] = per_target(encoded, package.network(numbers, categories), held_out.heads)
        metrics["baseline"][name] = per_target(encoded, held_out.baseline.predict(numbers, categories), held_out.heads)
        metrics["overall"][name] = overall(metrics["network"][name])
    refitted = None
    if settings.refit:
        # The metrics above judge the recipe on days it was not fitted on; the package that
        # serves is the same recipe fitted on every row, the newest days included.
        recipe = _Recipe.prepare(rows, features, settings)
        everything = recipe.arrays(rows)
        refitted = refit_on(
            engine, processes, Tensors.of(*everything), recipe.spec, settings, contract.targets,
            result.history[: result.best_epoch], classes=recipe.heads.classes,
            linear_start=recipe.linear_start(settings),
        )  # fmt: skip
        package, held_out = recipe.package(refitted), recipe
    golden = package.preprocessor.transform(features.apply(splits.test.head(GOLDEN_ROWS)))
    package.exported = export_table_network(package.spec, package.weights, *golden)
    fitted_on = rows if refitted is not None else splits.train
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
        "sample": {"share": sample.share, "max_rows": settings.max_rows},  # 1.0: every row of the window
        "best_epoch": result.best_epoch,
        "refit": None if refitted is None else {"rows": rows.height, "epochs": refitted.best_epoch},
        # The newest event time in the weights that serve (as the split compares times).
        "fitted_until": fitted_on.select(split_clock(clock).max()).item().isoformat(),
        "inputs_left_out": held_out.left_out,
    }
    metrics["expected"] = expected_metrics(metrics["network"], refit=refitted is not None)
    package.metrics, package.lineage = metrics, lineage
    package.reference = reference_profiles(package, fitted_on, held_out.numeric, held_out.categorical)
    package.reference["importance"] = permutation_importance(package, fitted_on, seed=settings.seed)
    return TrainedModel(package, result, splits, version, refitted, fitted_on, held_out_fit)


def reference_profiles(
    package: ModelPackage, rows: pl.DataFrame, numeric: list[str], categorical: list[str]
) -> dict[str, Any]:
    """Profiles of the training window: its inputs and targets, and the model's own predictions
    (a label's predicted class as a category, its probabilities as numbers)."""
    heads = package.heads
    labels = list(heads.classes)
    numbers = [t for t in heads.names if t not in heads.classes]
    inputs = profile(package.features.apply(rows), [*numeric, *numbers], [*categorical, *labels])
    outputs = [c for c in heads.output_columns if c not in heads.classes]
    predictions = profile(package.predict_valid(rows), outputs, labels)
    return {"inputs": inputs.to_dict(), "predictions": predictions.to_dict()}


def expected_metrics(network: dict[str, dict[str, dict[str, float]]], *, refit: bool) -> dict[str, dict[str, float]]:
    """What monitoring expects the serving model to reach on new data, per target and metric.

    Without a refit, its test metrics. A refit has been fitted on the validation and test days
    too, so it is expected to do at least as well as the held-out fit did on the better of the
    two: when the world changed inside the test window, the held-out fit's test error (a model
    that never saw the change, scored after it) would set the bar so low that the refit model
    could never be found degraded.
    """
    if not refit:
        return network["test"]
    validation, test = network["validation"], network["test"]
    return {
        target: {m: _better(m, v, validation[target].get(m, v)) for m, v in values.items()}
        for target, values in test.items()
    }


def _better(metric: str, a: float, b: float) -> float:
    if a != a or b != b:  # NaN: the other one
        return b if a != a else a
    return max(a, b) if HIGHER_IS_BETTER[metric] else min(a, b)


def overall(by_target: dict[str, dict[str, float]]) -> dict[str, float]:
    """Scale-free metrics averaged over the targets that have them (MAE and RMSE are in each
    target's own units): SMAPE and R² over numbers, the label metrics over labels."""
    shared = ("smape", "r2", *CLASSIFICATION_METRICS)
    found = {m: [v[m] for v in by_target.values() if m in v] for m in shared}
    return {m: sum(values) / len(values) for m, values in found.items() if values}


def per_target(encoded: np.ndarray, outputs: np.ndarray, heads: Targets) -> dict[str, dict[str, float]]:
    """Metrics of each target: ``encoded`` as :meth:`Targets.encode` gives it, ``outputs`` in
    the network's form (the heads side by side)."""
    split = heads.split(outputs)
    results = {}
    for i, target in enumerate(heads.names):
        truth = encoded[:, i].astype(np.float64)
        if target in heads.classes:
            results[target] = classification_metrics(truth, split[target])
        else:
            results[target] = regression_metrics(truth * heads.std[target] + heads.mean[target], split[target])
    return results


@dataclass(frozen=True)
class _Recipe:
    """What a network is fitted with, learned from the rows it is fitted on: the inputs kept,
    their preprocessing, the targets' encoding, the network's shape and the linear baseline."""

    features: FeatureSet
    numeric: list[str]
    categorical: list[str]
    left_out: list[str]
    preprocessor: Preprocessor
    heads: Targets
    spec: NetworkSpec
    baseline: Baseline

    @classmethod
    def prepare(cls, rows: pl.DataFrame, features: FeatureSet, settings: TrainSettings) -> _Recipe:
        contract = features.contract
        inputs = features.apply(rows)
        # An input with no value in these rows (a survey question asked from a later year on)
        # has nothing to teach; it is left out of this model, and said so, rather than refused.
        empty = [n for n in features.inputs if not _has_values(inputs.get_column(n))]
        numeric = [n for n in features.numeric_inputs if n not in empty]
        categorical = [n for n in features.categorical_inputs if n not in empty]
        nullable = {n for n in numeric if n not in contract.columns or contract.columns[n].nullable}
        preprocessor = Preprocessor.fit(inputs, numeric, categorical, nullable=nullable)
        heads = Targets.fit(rows, contract)
        spec = NetworkSpec(
            numeric=len(preprocessor.numeric_names),
            cardinalities=preprocessor.cardinalities,
            targets=len(contract.targets),
            hidden=settings.hidden,
            activation=settings.activation,
            batch_norm=settings.batch_norm,
            dropout=settings.dropout,
            outputs=heads.head_sizes,
            linear=settings.linear_path,
        )
        numbers, categories = preprocessor.transform(inputs)
        baseline = Baseline.fit(numbers, categories, heads.encode(rows), preprocessor.cardinalities, heads.head_sizes)
        return cls(features, numeric, categorical, empty, preprocessor, heads, spec, baseline)

    def arrays(self, rows: pl.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        numbers, categories = self.preprocessor.transform(self.features.apply(rows))
        return numbers, categories, self.heads.encode(rows)

    def linear_start(self, settings: TrainSettings) -> tuple[np.ndarray, list[np.ndarray], np.ndarray] | None:
        return self.baseline.as_linear() if settings.linear_path else None

    def package(self, result: FitResult) -> ModelPackage:
        return ModelPackage(self.spec, result.model.weights(), self.preprocessor, self.heads, self.features)


def _has_values(column: pl.Series) -> bool:
    present = column.drop_nulls()
    return not (present.is_empty() or (present.dtype.is_float() and bool(present.is_nan().all())))
