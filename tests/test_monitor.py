"""Monitoring a window end to end on real tables: drift, performance with late labels, verdicts."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import polars as pl
import pytest

from driftloop.errors import MonitorError
from driftloop.feature_table import materialize
from driftloop.ingest import ingest
from driftloop.monitor.window import monitor_window
from driftloop.predict import predict_window
from driftloop.project import Project
from tests.conftest import synthetic_rows
from tests.test_predict import champion_project

LATER = datetime(2024, 2, 1)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    project = champion_project(tmp_path_factory.mktemp("monitor") / "m")
    same = synthetic_rows(168, seed=11, start=LATER)  # a week like the training data
    shifted = synthetic_rows(168, seed=12, start=datetime(2024, 2, 8)).with_columns(pl.col("a") + 3)
    changed = synthetic_rows(168, seed=13, start=datetime(2024, 2, 15))  # same inputs, new relationship
    for name, rows in (("same", same), ("shifted", shifted), ("changed", changed.drop("y"))):
        ingest(project, rows, batch_id=name)
    materialize(project.lake, project.feature_set())
    predict_window(project, LATER, datetime(2024, 2, 22))
    ingest(project, changed.select("ts", (pl.col("y") * 5).alias("y")), labels=True, batch_id="late-labels")
    return project


def test_a_week_like_the_training_data_is_not_a_dataset_drift(project: Project) -> None:
    report = monitor_window(project, LATER, datetime(2024, 2, 8))
    assert not report.inputs.dataset_drift and report.verdict.level in ("ok", "warn")
    [perf] = report.performance
    assert perf.rows == 168 and perf.worsening < 0.5  # labels came with the rows themselves


def test_shifted_inputs_are_a_drift(project: Project) -> None:
    report = monitor_window(project, datetime(2024, 2, 8), datetime(2024, 2, 15))
    assert "a" in report.inputs.drifted and report.verdict.level in ("drift", "degraded")
    assert any("a" in reason for reason in report.verdict.reasons)


def test_late_labels_reveal_a_degraded_model(project: Project) -> None:
    report = monitor_window(project, datetime(2024, 2, 15), datetime(2024, 2, 22))
    assert report.verdict.level == "degraded" and report.verdict.retrain_signal
    [perf] = report.performance
    accepted = project.lake.read("labels").height  # labels beyond the contract's range for y are quarantined
    assert 150 < accepted < 168 and perf.rows == accepted and perf.worsening > 1.0
    assert "worse than on the model's test window" in report.verdict.reasons[0]


def test_rows_are_written_and_a_rerun_replaces_them(project: Project) -> None:
    monitor_window(project, LATER, datetime(2024, 2, 8))
    first = project.lake.read("monitoring").filter(pl.col("window_start") == LATER)
    monitor_window(project, LATER, datetime(2024, 2, 8))
    again = project.lake.read("monitoring").filter(pl.col("window_start") == LATER)
    assert again.height == first.height > 0
    assert set(again.get_column("section")) == {"input", "prediction", "performance", "verdict"}
    verdict = again.filter(pl.col("section") == "verdict").row(0, named=True)
    assert verdict["statistic"] in ("ok", "warn", "drift", "degraded")


def test_windows_without_rows_are_clear_errors(project: Project, tmp_path: Path) -> None:
    with pytest.raises(MonitorError, match="no feature rows between"):
        monitor_window(project, datetime(2030, 1, 1), datetime(2030, 1, 2))


def test_the_report_is_self_contained_html_and_a_png(project: Project, tmp_path: Path) -> None:
    from driftloop.monitor.report import write_report

    report = monitor_window(project, datetime(2024, 2, 15), datetime(2024, 2, 22))
    page, picture = write_report(project, report, tmp_path / "reports")
    text = page.read_text(encoding="utf-8")
    assert '<p class="verdict">degraded</p>' in text and "worse than on the model" in text
    assert "<script src=" not in text and "Plotly.newPlot" in text  # plotly.js inlined, no CDN
    assert text.count("Plotly.newPlot") == 3  # metric over time, drift per input, distributions
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_prediction_drift_follows_the_projects_monitor_settings(project: Project) -> None:
    # PSI with a threshold no window reaches: the inputs and the predictions are judged alike.
    monitor = project.settings.monitor.model_copy(update={"numeric_test": "psi", "thresholds": {"psi": 1e9}})
    tuned = Project(project.root, project.settings.model_copy(update={"monitor": monitor}))
    report = monitor_window(tuned, datetime(2024, 2, 8), datetime(2024, 2, 15))
    assert report.predictions is not None
    for drift in (report.inputs, report.predictions):
        numeric = [c for c in drift.columns if c.kind == "numeric"]
        assert numeric and {c.result.test for c in numeric} == {"psi"}
        assert all(c.result.threshold == 1e9 and not c.drifted for c in numeric)
