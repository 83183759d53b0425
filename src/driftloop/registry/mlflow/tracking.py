"""MLflow tracking, in one place: a run per training, with lineage, metrics, plots and the model.

:class:`MlflowTracker` is a training callback (per-epoch losses, sent in batches: a single
``log_metric`` costs ~9 ms on SQLite, ``log_batch`` ~40x less per value) and, once training
is done, records the result and registers the model version with the tag ``stage=dev``.

Everything goes through an ``MlflowClient`` for the project's tracking URI, never MLflow's
fluent API (which acts on a process-wide tracking URI and active run): the model is saved as a
pyfunc folder locally, logged as a LoggedModel of the run and registered by the client. A
project's experiment keeps its artifacts in the project (``[project] artifacts``), not in
whatever folder the command was started from.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Self

import mlflow.pyfunc
import pandas as pd
import polars as pl
from mlflow.data.delta_dataset_source import DeltaDatasetSource
from mlflow.data.meta_dataset import MetaDataset
from mlflow.entities import Dataset, DatasetInput, InputTag, LoggedModelOutput, Metric, Param
from mlflow.exceptions import MlflowException
from mlflow.models import Model, ModelSignature
from mlflow.tracking import MlflowClient

from driftloop.about import VERSION
from driftloop.errors import MissingDependency
from driftloop.model.train import EpochLog
from driftloop.model.trainer import TrainedModel
from driftloop.project import Project
from driftloop.registry.decisions import STAGE_TAG, Stage
from driftloop.registry.mlflow import pyfunc
from driftloop.registry.mlflow.signature import contract_signature
from driftloop.registry.mlflow.store import translated
from driftloop.runtime.kinds import AnyPackage

# Epoch metrics are sent every this many epochs (and at the end).
FLUSH_EVERY = 25


class RunTracker:
    """Records one training run in MLflow; use as a context manager around training. What is
    trained (a table's network, an image network) says what the run's parameters are and
    records its result, in a subclass."""

    def __init__(self, project: Project, *, run_name: str | None = None) -> None:
        self.project = project
        self.run_name = run_name
        self.client = MlflowClient(tracking_uri=project.tracking_uri, registry_uri=project.registry_uri)
        self.run_id = ""
        self._pending: list[Metric] = []
        self.logging_seconds = 0.0

    @property
    def model_name(self) -> str:
        return self.project.model_name

    def params(self) -> dict[str, Any]:
        """The run's parameters (flat names, values shown as text)."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        started = time.perf_counter()
        with self._translated("start a run"):
            experiment_id = self._experiment()
            run = self.client.create_run(experiment_id, run_name=self.run_name, tags=_code_tags(self.project))
            self.run_id = run.info.run_id
            params = self.params()
            self.client.log_batch(self.run_id, params=[Param(k, str(v)[:6000]) for k, v in params.items()])
        self.logging_seconds += time.perf_counter() - started
        return self

    def __exit__(self, kind: object, error: object, trace: object) -> None:
        with self._translated("end the run"):
            self._flush()
            self.client.set_terminated(self.run_id, status="FAILED" if error else "FINISHED")

    def on_epoch_end(self, log: EpochLog) -> None:
        stamp = int(time.time() * 1000)
        values = {
            "train_loss": log.train_loss,
            "validation_loss": log.validation_loss,
            "learning_rate": log.learning_rate,
        }
        values.update({f"validation_loss_{t}": v for t, v in log.validation_by_target.items()})
        self._pending += [Metric(k, float(v), stamp, log.epoch) for k, v in values.items()]
        if log.epoch % FLUSH_EVERY == 0:
            with self._translated("log the epochs"):
                self._flush()

    def _experiment(self) -> str:
        """The id of the project's experiment, created with the project's artifact location."""
        name = self.project.experiment_name
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return str(found.experiment_id)
        try:
            return str(self.client.create_experiment(name, artifact_location=self.project.artifact_location))
        except MlflowException:  # another process may have created it meanwhile
            again = self.client.get_experiment_by_name(name)
            if again is None:
                raise
            return str(again.experiment_id)

    def _register(
        self, package: AnyPackage, signature: ModelSignature, example: pd.DataFrame | None, tags: dict[str, str]
    ) -> str:
        """Log ``package`` as the run's pyfunc model and register it as a new version, stage dev,
        with ``tags``."""
        experiment_id = self.client.get_run(self.run_id).info.experiment_id
        logged = self.client.create_logged_model(experiment_id, name="model", source_run_id=self.run_id)
        self.client.log_outputs(self.run_id, [LoggedModelOutput(logged.model_id, step=0)])
        with tempfile.TemporaryDirectory() as folder:
            saved = package.save(Path(folder) / "package")
            local = Path(folder) / "model"
            mlflow.pyfunc.save_model(
                path=str(local),
                loader_module=pyfunc.__name__,
                data_path=str(saved),
                signature=signature,
                input_example=example,
                pip_requirements=[f"driftloop=={VERSION}"],
                mlflow_model=Model(
                    artifact_path=logged.artifact_location,
                    model_uuid=logged.model_id,
                    run_id=self.run_id,
                    model_id=logged.model_id,
                ),
            )
            self.client.log_model_artifacts(logged.model_id, str(local))
        self.client.finalize_logged_model(logged.model_id, "READY")
        try:
            self.client.get_registered_model(self.model_name)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
            self.client.create_registered_model(self.model_name)
        # The source is the artifacts' own location, not "models:/<id>": MLflow would resolve that
        # with the process-wide tracking URI (its own TODO says so), not this client's.
        version = self.client.create_model_version(
            self.model_name,
            logged.artifact_location,
            run_id=self.run_id,
            tags={STAGE_TAG: Stage.DEV.value, "run_id": self.run_id, **tags},
            model_id=logged.model_id,
        )
        return str(version.version)

    def _log_input(self, dataset: Dataset, tags: dict[str, str]) -> None:
        """Name the table version the run read as its training dataset, with ``tags``."""
        inputs = [InputTag(key, value) for key, value in {**tags, "mlflow.data.context": "training"}.items()]
        self.client.log_inputs(self.run_id, datasets=[DatasetInput(dataset, inputs)])

    def _flush(self) -> None:
        if self._pending and self.run_id:
            started = time.perf_counter()
            for start in range(0, len(self._pending), 1000):  # MLflow takes at most 1000 metrics a call
                self.client.log_batch(self.run_id, metrics=self._pending[start : start + 1000])
            self._pending = []
            self.logging_seconds += time.perf_counter() - started

    def _translated(self, action: str) -> Any:
        return translated(f"{action} of model {self.model_name!r}", self.project.tracking_uri)


class MlflowTracker(RunTracker):
    """Records the training run of a table project's network."""

    def params(self) -> dict[str, Any]:
        params = flatten({"train": self.project.settings.train.model_dump(mode="json")})
        params["inputs"] = ",".join(self.project.feature_set().inputs)[:6000]
        return params

    def record(self, trained: TrainedModel) -> str:
        """Log metrics, lineage, contract, plots and the model; register it; return the version."""
        started = time.perf_counter()
        stamp = int(time.time() * 1000)
        metrics = trained.package.metrics
        final = network_metrics(metrics, stamp)
        final += [
            Metric(f"{split}_overall_{metric}", v, stamp, 0)
            for split, values in metrics["overall"].items()
            for metric, v in values.items()
        ]
        final.append(Metric("best_epoch", trained.fit.best_epoch, stamp, 0))
        final.append(Metric("train_seconds", trained.train_seconds, stamp, 0))
        if trained.refit is not None:
            final.append(Metric("refit_seconds", trained.refit.seconds, stamp, 0))
        with self._translated("record the run"):
            self._flush()
            self.client.log_batch(self.run_id, metrics=final)
            self._log_artifacts(trained)
            version = self._register(
                trained.package,
                contract_signature(trained.package.contract, trained.package.targets),
                trained.package.contract.as_sent(trained.splits.test.select(_raw_inputs(trained)).head(5)).to_pandas(),
                {"features_version": str(trained.package.lineage["features_version"])},
            )
        self.logging_seconds += time.perf_counter() - started
        return version

    def _log_artifacts(self, trained: TrainedModel) -> None:
        lineage = trained.package.lineage
        tags = {"delta_table_version": str(lineage["features_version"])}
        tags.update({f"rows_{split}": str(n) for split, n in lineage["rows"].items()})
        sample = lineage.get("sample") or {"share": 1.0}
        # A share below 1: the run read that share of the window, chosen by a hash (Polars') of each row's key.
        tags.update({"sample_share": f"{sample['share']:.6g}", "polars_version": pl.__version__})
        self._log_input(delta_dataset("features", lineage["features_table"], lineage["features_version"]), tags)
        contract = trained.package.contract.model_dump(mode="json", exclude_none=True)
        self.client.log_dict(self.run_id, contract, "contract.json")
        self.client.log_dict(self.run_id, lineage, "lineage.json")
        self.client.log_dict(self.run_id, trained.package.reference, "reference_profile.json")
        try:  # matplotlib is loaded only when a run is recorded, and only if the reports extra is there
            from driftloop.model import plots
        except MissingDependency as missing:  # the run is whole without its pictures; it says why
            self.client.set_tag(self.run_id, "driftloop.plots", f"not drawn: {missing}")
            return
        with tempfile.TemporaryDirectory() as folder:
            self.client.log_artifacts(self.run_id, str(plots.draw(trained, Path(folder) / "plots")), "plots")


def network_metrics(metrics: dict[str, Any], stamp: int) -> list[Metric]:
    """A package's metrics per split and target, the network's and (prefixed) its baseline's,
    as MLflow metrics named ``[baseline_]split_target_metric``."""
    return [
        Metric(f"{prefix}{split}_{target}_{metric}", v, stamp, 0)
        for kind, prefix in (("network", ""), ("baseline", "baseline_"))
        for split, by_target in metrics[kind].items()
        for target, values in by_target.items()
        for metric, v in values.items()
    ]


def _raw_inputs(trained: TrainedModel) -> list[str]:
    contract = trained.package.contract
    return [c for c in contract.stored_columns if c not in contract.targets]


def delta_dataset(table: str, path: str, version: int) -> Dataset:
    """The Delta ``table`` at ``path``, at the ``version`` trained on, as a run's input dataset."""
    source = DeltaDatasetSource(path=path, delta_table_version=version)
    digest = hashlib.sha256(json.dumps([path, version]).encode()).hexdigest()
    # The version is in the name too: MLflow leaves a version 0 out of the source it shows.
    name = f"{table}@v{version}"
    # MetaDataset's stubs mark `profile` abstract, but the class implements it at run time.
    described = MetaDataset(source, name=name, digest=digest[:16]).to_dict()  # type: ignore[abstract]
    return Dataset(described["name"], described["digest"], described["source_type"], described["source"])


def _code_tags(project: Project) -> dict[str, str]:
    tags = {"driftloop.version": VERSION}
    done = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=project.root, capture_output=True, text=True, check=False, timeout=10
    )
    if done.returncode == 0:  # the project is in git: record the code version the model came from
        tags["mlflow.source.git.commit"] = done.stdout.strip()
    return tags


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat
