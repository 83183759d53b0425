"""Ground truth: labels arriving later are what training, promotion and monitoring see."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import polars as pl

from driftloop.feature_table import materialize
from driftloop.ingest import ingest
from driftloop.model.data import newest_labelled_time, recent_labelled_rows, training_rows
from driftloop.monitor.performance import ACTUAL, actuals
from driftloop.project import Project, init_project
from tests.conftest import synthetic_rows


def unlabelled_project(root: Path) -> tuple[Project, pl.DataFrame]:
    """A project whose rows arrived without their target; the truth is returned beside it."""
    rows = synthetic_rows(96)
    project = init_project(root, sample=rows, time_column="ts", targets=("y",))
    Project(project.root, project.settings.model_copy(update={"features": []})).save()
    project = Project.load(project.root)
    ingest(project, rows.drop("y"), batch_id="inputs")
    materialize(project.lake, project.feature_set())
    return project, rows.select("ts", "y")


def test_late_labels_are_the_training_targets_and_the_latest_correction_wins(tmp_path: Path) -> None:
    project, truth = unlabelled_project(tmp_path / "late")
    first_day = truth.head(24)
    ingest(project, first_day, batch_id="labels-1", labels=True)
    corrected = first_day.head(3).with_columns(pl.col("y") + 0.5)
    ingest(project, corrected, batch_id="labels-2", labels=True)

    rows, _ = training_rows(project.lake, project.feature_set())
    assert rows.height == 24  # only the labelled day: the other rows still wait for their truth
    got = rows.sort("ts").get_column("y")
    assert got.head(3).to_list() == corrected.get_column("y").to_list()
    assert got.slice(3).to_list() == first_day.get_column("y").slice(3).to_list()
    assert newest_labelled_time(project.lake, project.contract) == first_day.get_column("ts").max()
    recent = recent_labelled_rows(project.lake, project.feature_set(), days=0.5)
    assert recent.height == 13 and recent.get_column("y").null_count() == 0  # the last 12 hours and their edge


def test_monitoring_and_training_see_the_same_truth(tmp_path: Path) -> None:
    project, truth = unlabelled_project(tmp_path / "same")
    ingest(project, truth, batch_id="labels", labels=True)
    features = project.lake.read("features")
    labels = project.lake.read("labels")
    monitored = actuals(project.contract, features, labels).sort("ts")
    trained, _ = training_rows(project.lake, project.feature_set())
    assert monitored.get_column(ACTUAL + "y").to_list() == trained.sort("ts").get_column("y").to_list()
    window, _ = training_rows(
        project.lake,
        project.feature_set(),
        since=truth.get_column("ts").min() + timedelta(hours=10),
        until=truth.get_column("ts").min() + timedelta(hours=20),
    )
    assert window.height == 10 and window.get_column("y").null_count() == 0
