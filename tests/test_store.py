"""The MLflow boundary on real stores: two projects in one process, artifacts in their project,
and a version's package read once per process, never confused with another store's."""

from __future__ import annotations

import shutil
from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

from driftloop.errors import RegistryError
from driftloop.model.trainer import train_project
from driftloop.project import Project
from driftloop.registry import Registry
from driftloop.registry.mlflow.store import LOADED, Missing, ModelStore, PackageCache, translated
from driftloop.registry.mlflow.tracking import MlflowTracker
from tests.conftest import make_synthetic_project


def train(project: Project) -> str:
    with MlflowTracker(project) as tracker:
        return tracker.record(train_project(project, callbacks=[tracker]))


def test_two_projects_live_in_one_process_each_with_its_own_store_and_artifacts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"  # the folder the commands run from
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    before = mlflow.get_tracking_uri()
    first = make_synthetic_project(tmp_path / "first", epochs=2)
    second = make_synthetic_project(tmp_path / "second", epochs=3)
    versions = train(first), train(second)
    assert versions == ("1", "1")
    assert mlflow.get_tracking_uri() == before  # nothing process-wide was set
    for project in (first, second):
        info = Registry(project).version("1")
        assert Path(info.source.removeprefix("file://")).is_relative_to(project.root / "mlartifacts")
        assert Registry(project).load("1").lineage["features_table"] == project.lake.uri("features")
    assert list(elsewhere.iterdir()) == []  # MLflow's default would have put ./mlruns here


def test_a_version_is_read_once_per_process_and_each_version_on_its_own(tmp_path: Path) -> None:
    project = make_synthetic_project(tmp_path / "once", epochs=2)
    first = train(project)
    reads = LOADED.loads
    package = Registry(project).load(first)
    assert Registry(project).load(first) is package and LOADED.loads == reads + 1  # the second came from memory
    tuned = project.settings.train.model_copy(update={"seed": 9})
    second = train(Project(project.root, project.settings.model_copy(update={"train": tuned})))
    other = Registry(project).load(second)
    assert other is not package and LOADED.loads == reads + 2
    assert any(not np.array_equal(v, package.weights[k]) for k, v in other.weights.items())


def test_a_version_whose_artifacts_are_gone_is_a_registry_error(tmp_path: Path) -> None:
    project = make_synthetic_project(tmp_path / "gone", epochs=2)
    version = train(project)
    shutil.rmtree(project.root / "mlartifacts")
    fresh = ModelStore(project.tracking_uri, project.settings.project.name, cache=PackageCache())  # a new process
    with pytest.raises(RegistryError, match=f"version {version}"):
        fresh.load(version)
    with pytest.raises(RegistryError, match="has no version '7'"):
        fresh.load("7")


def test_only_a_thing_that_is_absent_reads_as_missing() -> None:
    # MLflow's SQL store answers an absent alias with INVALID_PARAMETER_VALUE, the code it also
    # uses for a bad value; a bad value must stop the step, never read as "nothing there".
    absent = MlflowException("Registered model alias champion not found.", error_code=INVALID_PARAMETER_VALUE)
    with pytest.raises(Missing), translated("read the aliases", "sqlite:///x.db"):
        raise absent
    bad = MlflowException("Input example does not match the model signature.", error_code=INVALID_PARAMETER_VALUE)
    with pytest.raises(RegistryError) as raised, translated("record the run", "sqlite:///x.db"):
        raise bad
    assert not isinstance(raised.value, Missing) and "does not exist" not in str(raised.value)


def test_the_model_and_experiment_are_named_as_the_project_says(tmp_path: Path) -> None:
    """A Unity Catalog style model name and a workspace-path experiment (as Databricks wants
    them) are what MLflow records, and the registry reads the model back by that name."""
    project = make_synthetic_project(tmp_path / "named", epochs=2)
    names = {"model": "main.forecasting.energy", "experiment": "/Shared/driftloop/energy"}
    section = project.settings.project.model_copy(update=names)
    Project(project.root, project.settings.model_copy(update={"project": section})).save()
    project = Project.load(project.root)
    version = train(project)
    client = mlflow.MlflowClient(tracking_uri=project.tracking_uri, registry_uri=project.registry_uri)
    assert client.get_model_version("main.forecasting.energy", version).run_id
    assert client.get_experiment_by_name("/Shared/driftloop/energy") is not None
    assert Registry(project).name == "main.forecasting.energy" and Registry(project).load(version).heads
