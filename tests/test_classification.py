"""Labels beside numbers in one model, end to end: a bool defect flag, a three-grade label and a
number, drafted, ingested (an unknown grade quarantined), trained against linear baselines,
promoted, scored in batch and online, and monitored."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from driftloop.feature_table import materialize
from driftloop.ingest import ingest
from driftloop.model.trainer import train_project
from driftloop.monitor.report import write_report
from driftloop.monitor.window import monitor_window
from driftloop.predict import predict_window
from driftloop.project import Project, init_project
from driftloop.registry import Registry
from driftloop.registry.mlflow.tracking import MlflowTracker
from driftloop.runtime.targets import probability_column
from driftloop.settings.train import TargetSettings, TrainSettings
from tests.live import cli, server

START = datetime(2024, 1, 1)


def inspected(rows: int, seed: int = 0) -> pl.DataFrame:
    """Parts off a line: defective when far from the centre (a circle no line separates), graded by
    a product of two measures, and an energy use a linear model cannot fit."""
    rng = np.random.default_rng(seed)
    a, b = rng.normal(0, 1, rows), rng.normal(0, 1, rows)
    line = rng.choice(["north", "south"], rows)
    score = a * b + 0.3 * (line == "north") + rng.normal(0, 0.1, rows)
    grade = np.where(score > 0.5, "good", np.where(score < -0.5, "bad", "ok"))
    return pl.DataFrame(
        {
            "ts": [START + timedelta(hours=h) for h in range(rows)],
            "a": a,
            "b": b,
            "line": line,
            "defect": (a**2 + b**2 + rng.normal(0, 0.1, rows)) > 1.4,
            "grade": grade,
            "kwh": 3 * a - 2 * b + 2 * a * b + rng.normal(0, 0.1, rows),
        }
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Project, str, pl.DataFrame]:
    data = inspected(24 * 30)
    root = tmp_path_factory.mktemp("classes") / "p"
    project = init_project(root, sample=data, time_column="ts", targets=("defect", "grade", "kwh"))
    weights = {"grade": TargetSettings(class_weights="balanced")}
    train = TrainSettings(hidden=[32, 16], epochs=60, patience=10, learning_rate=3e-3, targets=weights)
    Project(project.root, project.settings.model_copy(update={"train": train, "features": []})).save()
    project = Project.load(project.root)
    ingest(project, data, batch_id="history")
    materialize(project.lake, project.feature_set())
    with MlflowTracker(project) as tracker:
        version = tracker.record(train_project(project, callbacks=[tracker]))
    return project, version, data


def test_a_contract_is_drafted_with_classes_and_an_unknown_label_is_quarantined(
    trained: tuple[Project, str, pl.DataFrame],
) -> None:
    project, _, data = trained
    columns = project.contract.columns
    assert columns["defect"].classes == ["false", "true"] and columns["grade"].classes == ["bad", "good", "ok"]
    assert columns["kwh"].classes is None and project.contract.class_targets == ["defect", "grade"]
    late = data.tail(3).with_columns(pl.col("ts") + timedelta(days=60), pl.Series("grade", ["ok", "great", None]))
    summary = ingest(project, late, batch_id="late")[0]
    assert (summary.rows_raw, summary.rows_quarantined) == (2, 1)
    assert [(r.column, r.rule, r.examples) for r in summary.rule_counts] == [("grade", "class", ("great",))]


def test_labels_are_trained_against_a_logistic_baseline_and_promoted_on_their_own_metric(
    trained: tuple[Project, str, pl.DataFrame],
) -> None:
    project, version, _ = trained
    registry = Registry(project)
    package = registry.load(version)
    test = package.metrics["network"]["test"]
    assert set(test["grade"]) >= {"accuracy", "balanced_accuracy", "macro_f1", "roc_auc", "log_loss", "brier"}
    assert "mae" in test["kwh"] and "mae" not in test["grade"]
    baseline = package.metrics["baseline"]["test"]
    for label in ("defect", "grade"):  # neither a circle nor a product is linear in a and b
        assert test[label]["log_loss"] < baseline[label]["log_loss"], (label, test[label], baseline[label])
        assert test[label]["accuracy"] > 0.8
    decisions = registry.promote(version)
    assert registry.champion() == version, [d.reason for d in decisions]
    gate = next(g for d in decisions for g in d.gates if g.name == "beats baseline")
    assert gate.numbers["metrics"] == {"defect": "log_loss", "grade": "log_loss", "kwh": "mae"}


def test_labels_are_scored_in_batch_and_online_with_their_probabilities(
    trained: tuple[Project, str, pl.DataFrame],
) -> None:
    project, version, data = trained
    if Registry(project).champion() != version:
        Registry(project).promote(version)
    run = predict_window(project, START + timedelta(days=25), START + timedelta(days=27))
    assert run.rows == 48
    table = project.lake.read("predictions").filter(pl.col("source") == "batch").sort("event_time")
    assert table.schema["defect"] == pl.Boolean and table.schema["grade"] == pl.String
    probabilities = table.select(probability_column("grade", c) for c in ["bad", "good", "ok"]).to_numpy()
    assert np.allclose(probabilities.sum(axis=1), 1.0)
    assert (table.get_column("grade").to_numpy() == np.array(["bad", "good", "ok"])[probabilities.argmax(axis=1)]).all()

    request = data.filter(pl.col("ts") >= START + timedelta(days=25)).head(3)
    with server(project) as client:
        answer = client.post("/v1/predict", json=request.drop("defect", "grade", "kwh").with_columns(
            pl.col("ts").cast(pl.String)).to_dicts())  # fmt: skip
        v2 = client.get(f"/v2/models/{Registry(project).name}")
    assert answer.status_code == 200, answer.text
    first = answer.json()["predictions"][0]
    assert first["grade"] in ("bad", "good", "ok") and isinstance(first["defect"], bool)
    assert first[probability_column("defect", "true")] == pytest.approx(table.row(0, named=True)["defect__p_true"])
    assert {o["name"]: o["datatype"] for o in v2.json()["outputs"]}["grade"] == "BYTES"

    report = monitor_window(project, START + timedelta(days=25), START + timedelta(days=27))
    by_target = {p.target: p for p in report.performance}
    assert by_target["grade"].metric == "log_loss" and by_target["grade"].metrics["accuracy"] > 0.7
    assert by_target["kwh"].metric == "mae"
    assert report.predictions is not None
    assert {c.column for c in report.predictions.columns} >= {"grade", "defect__p_true", "kwh"}


def test_late_labels_bring_the_window_its_confusion_and_calibration(
    trained: tuple[Project, str, pl.DataFrame], tmp_path: Path
) -> None:
    project, version, _ = trained
    if Registry(project).champion() != version:
        Registry(project).promote(version)
    # Three more days off the line; the grades and defects are known only at final test, later.
    later = inspected(24 * 33, seed=5).filter(pl.col("ts") >= START + timedelta(days=30))
    ingest(project, later.with_columns(pl.lit(None).alias(t) for t in ("defect", "grade")), batch_id="line")
    materialize(project.lake, project.feature_set())
    since, until = START + timedelta(days=30), START + timedelta(days=33)
    predict_window(project, since, until)
    before = {p.target: p for p in monitor_window(project, since, until).performance}
    assert set(before) == {"kwh"}  # no label yet: nothing to say about the labels' performance

    [labelled] = ingest(project, later.select("ts", "defect", "grade"), labels=True)
    assert labelled.rows_quarantined == 0
    report = monitor_window(project, since, until)
    grade = next(p for p in report.performance if p.target == "grade")
    assert grade.rows == 72 and grade.classes == ["bad", "good", "ok"]
    assert np.asarray(grade.confusion).sum() == 72 and len(grade.confusion or []) == 3
    accuracy = np.trace(np.asarray(grade.confusion)) / 72
    assert accuracy == pytest.approx(grade.metrics["accuracy"])
    curves = grade.calibration or {}
    assert set(curves) == {"bad", "good", "ok"}
    assert sum(b[2] for b in curves["good"]) == 72 and all(0 <= b[0] <= 1 and 0 <= b[1] <= 1 for b in curves["good"])
    assert set(next(p for p in report.performance if p.target == "defect").calibration or {}) == {"true"}

    page, picture = write_report(project, report, tmp_path)
    text = page.read_text(encoding="utf-8")
    assert "grade: confusion (rows)" in text and "defect: calibration" in text
    assert "balanced accuracy" in text and "log_loss" in text and "Prediction drift" in text
    assert picture.stat().st_size > 10_000


def test_a_replay_scores_each_label_by_its_own_metric(tmp_path: Path) -> None:
    data = inspected(24 * 16, seed=9)
    path = tmp_path / "line.csv"
    data.write_csv(path)
    root = tmp_path / "replayed"
    cli("init", str(root), "--data", str(path), "--time", "ts", "--target", "grade", "--target", "kwh")
    project = Project.load(root)
    train = project.settings.train.model_copy(update={"epochs": 20, "hidden": [32, 16], "learning_rate": 3e-3})
    Project(root, project.settings.model_copy(update={"train": train, "features": []})).save()
    summary = cli("replay", str(path), "--start", "2024-01-14", "--days", "2", "--project", str(root))
    assert summary["metrics"] == {"grade": "log_loss", "kwh": "mae"}
    for name, strategy in summary["strategies"].items():
        grade = strategy["overall"]["grade"]
        assert 0 <= grade["accuracy"] <= 1 and np.isfinite(grade["log_loss"]), name
        assert "mae" not in grade and "mae" in strategy["overall"]["kwh"], name
    page = (root / "reports" / "replay.html").read_text(encoding="utf-8")
    assert "grade log_loss" in page and "driftloop&#x27;s log_loss/mae" in page and "accuracy" in page
