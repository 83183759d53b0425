"""MLflow tracking, in one place: a run per training, with lineage, metrics, plots and the model.

:class:`MlflowTracker` is a training callback (per-epoch losses, sent in batches: a single
``log_metric`` costs ~9 ms on SQLite, ``log_batch`` ~40x less per value) and, once training
is done, records the result and registers the model version with the tag ``stage=dev``.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import mlflow
from mlflow.data.delta_dataset_source import DeltaDatasetSource
from mlflow.data.meta_dataset import MetaDataset
from mlflow.entities import Metric, Param
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient

from driftloop.model.train import EpochLog
from driftloop.model.trainer import TrainedModel
from driftloop.project import Project

# Epoch metrics are sent every this many epochs (and at the end).
FLUSH_EVERY = 25


class MlflowTracker:
    """Records one training run in MLflow; use as a context manager around training."""

    def __init__(self, project: Project, *, run_name: str | None = None) -> None:
        self.project = project
        self.run_name = run_name
        self.client = MlflowClient(project.tracking_uri)
        self.run_id = ""
        self._pending: list[Metric] = []
        self.logging_seconds = 0.0

    @property
    def model_name(self) -> str:
        return self.project.settings.project.name

    def __enter__(self) -> MlflowTracker:
        started = time.perf_counter()
        mlflow.set_tracking_uri(self.project.tracking_uri)
        experiment = mlflow.set_experiment(self.model_name)
        run = self.client.create_run(experiment.experiment_id, run_name=self.run_name, tags=_code_tags(self.project))
        self.run_id = run.info.run_id
        params = _flatten({"train": self.project.settings.train.model_dump(mode="json")})
        params["inputs"] = ",".join(self.project.feature_set().inputs)[:6000]
        self.client.log_batch(self.run_id, params=[Param(k, str(v)[:6000]) for k, v in params.items()])
        self.logging_seconds += time.perf_counter() - started
        return self

    def __exit__(self, kind: object, error: object, trace: object) -> None:
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
            self._flush()

    def record(self, trained: TrainedModel) -> str:
        """Log metrics, lineage, contract, plots and the model; register it; return the version."""
        started = time.perf_counter()
        self._flush()
        stamp = int(time.time() * 1000)
        metrics = trained.package.metrics
        final = [
            Metric(f"{prefix}{split}_{target}_{metric}", v, stamp, 0)
            for kind, prefix in (("network", ""), ("baseline", "baseline_"))
            for split, by_target in metrics[kind].items()
            for target, values in by_target.items()
            for metric, v in values.items()
        ]
        final += [
            Metric(f"{split}_overall_{metric}", v, stamp, 0)
            for split, values in metrics["overall"].items()
            for metric, v in values.items()
        ]
        final.append(Metric("best_epoch", trained.fit.best_epoch, stamp, 0))
        final.append(Metric("train_seconds", trained.fit.seconds, stamp, 0))
        self.client.log_batch(self.run_id, metrics=final)
        version = self._log_model(trained)
        self.logging_seconds += time.perf_counter() - started
        return version

    def _log_model(self, trained: TrainedModel) -> str:
        lineage = trained.package.lineage
        with mlflow.start_run(run_id=self.run_id), tempfile.TemporaryDirectory() as folder:
            tags = {"delta_table_version": str(lineage["features_version"])}
            tags.update({f"rows_{split}": str(n) for split, n in lineage["rows"].items()})
            mlflow.log_input(_dataset(lineage), context="training", tags=tags)
            mlflow.log_dict(trained.package.contract.model_dump(mode="json", exclude_none=True), "contract.json")
            mlflow.log_dict(lineage, "lineage.json")
            mlflow.log_dict(trained.package.reference, "reference_profile.json")
            from driftloop.model import plots  # matplotlib is loaded only when a run is recorded

            mlflow.log_artifacts(str(plots.draw(trained, Path(folder) / "plots")), "plots")
            package = trained.package.save(Path(folder) / "package")
            example = trained.splits.test.select(_raw_inputs(trained)).head(5)
            signature = infer_signature(example.to_pandas(), trained.package.predict(example).to_pandas())
            info = mlflow.pyfunc.log_model(
                name="model",
                loader_module="driftloop.model.package",
                data_path=str(package),
                signature=signature,
                input_example=example.to_pandas(),
                pip_requirements=[f"driftloop=={_driftloop_version()}"],
                registered_model_name=self.model_name,
            )
        version = str(info.registered_model_version)
        tags = {"stage": "dev", "run_id": self.run_id, "features_version": str(lineage["features_version"])}
        for key, value in tags.items():
            self.client.set_model_version_tag(self.model_name, version, key, value)
        return version

    def _flush(self) -> None:
        if self._pending and self.run_id:
            started = time.perf_counter()
            for start in range(0, len(self._pending), 1000):  # MLflow takes at most 1000 metrics a call
                self.client.log_batch(self.run_id, metrics=self._pending[start : start + 1000])
            self._pending = []
            self.logging_seconds += time.perf_counter() - started


def _raw_inputs(trained: TrainedModel) -> list[str]:
    contract = trained.package.contract
    return [c for c in contract.stored_columns if c not in contract.targets]


def _dataset(lineage: dict[str, Any]) -> MetaDataset:
    source = DeltaDatasetSource(path=lineage["features_table"], delta_table_version=lineage["features_version"])
    digest = hashlib.sha256(json.dumps([lineage["features_table"], lineage["features_version"]]).encode()).hexdigest()
    # The version is in the name too: MLflow leaves a version 0 out of the source it shows.
    name = f"features@v{lineage['features_version']}"
    # MetaDataset's stubs mark `profile` abstract, but the class implements it at run time.
    return MetaDataset(source, name=name, digest=digest[:16])  # type: ignore[abstract]


def _code_tags(project: Project) -> dict[str, str]:
    tags = {"driftloop.version": _driftloop_version()}
    done = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=project.root, capture_output=True, text=True, check=False, timeout=10
    )
    if done.returncode == 0:  # the project is in git: record the code version the model came from
        tags["mlflow.source.git.commit"] = done.stdout.strip()
    return tags


def _driftloop_version() -> str:
    from driftloop import __version__

    return __version__


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat
