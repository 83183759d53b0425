"""A team's MLflow tracking server: a real ``mlflow server`` process on 127.0.0.1, its own
SQLite store and artifact folder, and a project whose ``tracking_uri`` points at it. Training,
registration, the promotion gates (a clean process loading the model from the server) and
scoring the champion all go through HTTP; nothing lands in the project's folder."""

from __future__ import annotations

import sys
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from driftloop.model.trainer import train_project
from driftloop.predict import predict_window
from driftloop.project import ARTIFACTS, Project
from driftloop.registry import Registry
from driftloop.registry.mlflow.tracking import MlflowTracker
from tests.conftest import make_synthetic_project
from tests.live import free_port, service


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """The server's URL and its artifact folder."""
    home = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    artifacts = home / "artifacts"
    command = [
        str(Path(sys.executable).with_name("mlflow")), "server", "--host", "127.0.0.1", "--port", str(port),
        "--backend-store-uri", f"sqlite:///{home / 'store.db'}", "--artifacts-destination", str(artifacts),
        "--workers", "1",
    ]  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    with service(command, ready=lambda: _answers(url), log=home / "server.log"):
        yield url, artifacts


def test_a_project_tracks_registers_promotes_and_scores_through_a_server(
    tmp_path: Path, server: tuple[str, Path]
) -> None:
    url, artifacts = server
    local = make_synthetic_project(tmp_path / "p", epochs=8)
    update = {"project": local.settings.project.model_copy(update={"tracking_uri": url})}
    Project(local.root, local.settings.model_copy(update=update)).save()
    project = Project.load(local.root)
    assert project.tracking_uri == url and project.artifact_location is None  # the server keeps artifacts

    with MlflowTracker(project) as tracker:
        version = tracker.record(train_project(project, callbacks=[tracker]))
    decisions = Registry(project).promote(version)
    assert decisions[-1].kind == "champion", decisions

    registry = Registry(project)
    assert registry.champion() == version
    run = predict_window(project, datetime(2024, 1, 5), datetime(2024, 1, 6))
    assert run.rows == 24 and run.model_version == version

    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=url)
    model = client.get_model_version_by_alias(registry.name, "champion")
    logged = client.get_run(model.run_id)
    assert logged.data.params and any(k.startswith("test") for k in logged.data.metrics)
    assert any(artifacts.rglob("*.safetensors")), "the model's weights are in the server's artifact store"
    assert not (project.root / ARTIFACTS).exists() and not (project.root / "mlflow.db").exists()
