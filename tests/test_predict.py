"""Batch inference against real Delta tables and a real registry."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from driftloop.cli.loop import window
from driftloop.engine import PolarsEngine
from driftloop.errors import ConfigError, PredictError
from driftloop.model.trainer import train_project
from driftloop.predict import PREDICTION_ID, VARIABLE_WIDTH, predict_window, row_bytes
from driftloop.project import Project
from driftloop.registry import Registry
from driftloop.registry.mlflow.tracking import MlflowTracker
from tests.conftest import make_synthetic_project

START = datetime(2024, 1, 1)  # the synthetic data: hourly from here for 20 days


def champion_project(root: Path) -> Project:
    project = make_synthetic_project(root, epochs=15)
    with MlflowTracker(project) as tracker:
        version = tracker.record(train_project(project, callbacks=[tracker]))
    Registry(project).promote(version)
    return project


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    return champion_project(tmp_path_factory.mktemp("predict") / "p")


def test_a_window_is_scored_with_its_context(project: Project) -> None:
    run = predict_window(project, datetime(2024, 1, 3), datetime(2024, 1, 5), chunk_rows=24)
    assert run.rows == 48 and run.days == ["2024-01-03", "2024-01-04"]
    table = project.lake.read("predictions")
    assert table.height == 48
    row = table.sort("event_time").row(0, named=True)
    assert row["event_time"] == datetime(2024, 1, 3) and row["model_version"] == run.model_version
    assert row["source"] == "batch" and row["job_id"] == run.job_id and row["run_id"]
    assert row[PREDICTION_ID] == f"|{int(datetime(2024, 1, 3, tzinfo=UTC).timestamp()) * 10**6}|v{run.model_version}"
    features = project.lake.read("features", since=datetime(2024, 1, 3), until=datetime(2024, 1, 5), time_column="ts")
    expected = Registry(project).load(run.model_version).predict_valid(features.sort("ts")).get_column("y")
    assert table.sort("event_time").get_column("y").to_list() == pytest.approx(expected.to_list())


def test_chunks_are_whole_days_within_the_memory_budget(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    chunks: list[tuple[list[str], int]] = []
    since, until = datetime(2024, 1, 3), datetime(2024, 1, 6)
    predict_window(project, since, until, on_chunk=lambda days, rows: chunks.append(([str(d) for d in days], rows)))
    assert chunks == [(["2024-01-03", "2024-01-04", "2024-01-05"], 72)]  # three days fit in the default budget
    chunks.clear()
    monkeypatch.setattr(PolarsEngine, "chunk_bytes", 1)  # less than a row: a day is still never split
    predict_window(project, since, until, on_chunk=lambda days, rows: chunks.append(([str(d) for d in days], rows)))
    assert chunks == [(["2024-01-03"], 24), (["2024-01-04"], 24), (["2024-01-05"], 24)]
    assert row_bytes([pl.Float64(), pl.Date(), pl.Boolean(), pl.String()]) == 8 + 8 + 1 + VARIABLE_WIDTH


def test_reruns_replace_and_never_touch_rows_outside_the_window(project: Project) -> None:
    predict_window(project, datetime(2024, 1, 6), datetime(2024, 1, 8))
    before = project.lake.read("predictions")
    predict_window(project, datetime(2024, 1, 6, 12), datetime(2024, 1, 7))  # half a day again
    after = project.lake.read("predictions")
    assert after.height == before.height
    assert after.get_column(PREDICTION_ID).n_unique() == after.height
    assert set(after.get_column(PREDICTION_ID)) == set(before.get_column(PREDICTION_ID))


KILLED = """
import os, signal, sys
from datetime import datetime
from driftloop.project import Project
from driftloop.predict import predict_window
def die(days, rows):
    if str(days[-1]) == "2024-01-12":  # two days written (one a chunk), the rest not
        os.kill(os.getpid(), signal.SIGKILL)
predict_window(Project.load(sys.argv[1]), datetime(2024, 1, 11), datetime(2024, 1, 15), chunk_rows=24, on_chunk=die)
"""


def test_killed_mid_window_then_rerun_ends_in_the_same_table(project: Project) -> None:
    killed = subprocess.run([sys.executable, "-c", KILLED, str(project.root)], check=False, capture_output=True)
    assert killed.returncode == -9, killed.stderr.decode()[-1000:]
    window_rows = pl.col("event_time").is_between(datetime(2024, 1, 11), datetime(2024, 1, 15), closed="left")
    assert project.lake.read("predictions").filter(window_rows).height == 48
    predict_window(project, datetime(2024, 1, 11), datetime(2024, 1, 15))  # one chunk now
    predict_window(project, datetime(2024, 1, 11), datetime(2024, 1, 15), chunk_rows=30)
    rows = project.lake.read("predictions").filter(window_rows)
    assert rows.height == 96 and rows.get_column(PREDICTION_ID).n_unique() == 96


def test_what_cannot_be_scored_is_a_clear_error(project: Project, tmp_path: Path) -> None:
    with pytest.raises(PredictError, match="no feature rows between"):
        predict_window(project, datetime(2030, 1, 1), datetime(2030, 1, 2))
    with pytest.raises(PredictError, match="must be after"):
        predict_window(project, datetime(2024, 1, 2), datetime(2024, 1, 1))
    bare = make_synthetic_project(tmp_path / "bare", epochs=1)
    with pytest.raises(PredictError, match="no champion yet"):
        predict_window(bare, datetime(2024, 1, 2), datetime(2024, 1, 3))


def test_command_line_windows() -> None:
    assert window("2024-01-03", None, None, "UTC") == (datetime(2024, 1, 3), datetime(2024, 1, 4))
    assert window(None, "2024-01-03T06:00", "2024-01-04", "UTC") == (datetime(2024, 1, 3, 6), datetime(2024, 1, 4))
    with pytest.raises(ConfigError, match="not both"):
        window("2024-01-03", "2024-01-03", None, "UTC")
    with pytest.raises(ConfigError, match="is not an ISO date"):
        window("03/01/2024", None, None, "UTC")
    with pytest.raises(ConfigError, match="say which window"):
        window(None, "2024-01-03", None, "UTC")
