"""Performance without labels: the trees kept as numbers, direct loss estimation, confidence-based
estimation, and a monitored window that is found degraded before its labels come."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from scipy.stats import spearmanr
from sklearn.ensemble import GradientBoostingRegressor

from driftloop.feature_table import materialize
from driftloop.ingest import ingest
from driftloop.loop.policy import should_retrain
from driftloop.model.metrics import classification_metrics
from driftloop.model.trainer import train_project
from driftloop.monitor.estimates import ESTIMATES, confidence, loss
from driftloop.monitor.estimates.trees import TreeEnsemble
from driftloop.monitor.prepare import prepare_monitoring
from driftloop.monitor.window import monitor_window
from driftloop.predict import predict_window
from driftloop.project import Project
from driftloop.registry import Registry
from driftloop.registry.mlflow.tracking import MlflowTracker
from driftloop.runtime.targets import softmax
from driftloop.settings.loop import LoopSettings
from driftloop.settings.train import TrainSettings
from tests.conftest import make_project


def test_the_trees_kept_as_numbers_predict_what_scikit_learn_does() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(800, 5))
    y = np.abs(x[:, 0]) + x[:, 1] ** 2 + rng.normal(0, 0.1, 800)
    trees = TreeEnsemble.fit(x, y, seed=3)
    booster = GradientBoostingRegressor(
        n_estimators=50, max_depth=3, learning_rate=0.1, subsample=0.5, max_features=0.5,
        min_samples_leaf=20, init="zero", random_state=3,
    ).fit(x.astype(np.float32), y - y.mean())  # fmt: skip
    fresh = rng.normal(size=(300, 5))
    assert trees.predict(fresh) == pytest.approx(y.mean() + booster.predict(fresh.astype(np.float32)), abs=1e-9)
    again = TreeEnsemble.from_dict(json.loads(json.dumps(trees.to_dict())))
    assert np.array_equal(again.predict(fresh), trees.predict(fresh))


def _noisy(rows: int, spread: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A design of two inputs, where the model's error grows with the second one's size."""
    x = np.column_stack([rng.normal(size=rows), spread])
    actual = x[:, 0] + rng.normal(size=rows) * (0.2 + np.abs(spread))
    return x, actual, x[:, 0]  # the model predicts the part it can


def test_loss_estimates_follow_the_realised_error_across_windows() -> None:
    rng = np.random.default_rng(1)
    x, actual, predicted = _noisy(3000, rng.normal(size=3000), rng)
    days = np.arange(3000) // 100  # 30 days of 100 rows
    state = loss.fit(np.column_stack([x, predicted]), actual, predicted, days, ["mae", "rmse"], seed=0)
    assert 0 < state["metrics"]["mae"]["day_error_std"] < 0.3  # days alike: a day's estimate is close
    estimated, realised, inside = [], [], 0
    for centre in np.linspace(0, 2, 12):  # windows of harder and harder rows, inside the reference's range
        wx, wy, wp = _noisy(400, rng.normal(centre, 0.3, 400), rng)
        found = loss.estimate(state, np.column_stack([wx, wp]), 4, {})
        estimated.append(found["mae"].value)
        realised.append(float(np.mean(np.abs(wp - wy))))
        inside += found["mae"].low <= realised[-1] <= found["mae"].high
        assert found["rmse"].value >= found["mae"].value * 0.95  # an RMSE is never below the MAE
    assert spearmanr(estimated, realised).statistic > 0.9
    assert inside >= 10
    assert realised[-1] > 2 * realised[0] and estimated[-1] > 2 * estimated[0]


def test_loss_estimates_are_on_the_scale_the_serving_model_is_expected_at() -> None:
    rng = np.random.default_rng(2)
    x, actual, predicted = _noisy(2000, rng.normal(size=2000), rng)
    design = np.column_stack([x, predicted])
    state = loss.fit(design, actual, predicted, np.zeros(2000), ["mae"], seed=0)
    assert state["metrics"]["mae"]["day_error_std"] == 0  # one day: nothing to cross-fit
    reference = state["metrics"]["mae"]["reference"]
    plain = loss.estimate(state, design, 1, {})["mae"].value
    scaled = loss.estimate(state, design, 1, {"mae": reference / 2})["mae"].value
    assert plain == pytest.approx(reference, rel=0.05) and scaled == pytest.approx(plain / 2)


def test_a_metric_no_loss_per_row_adds_up_to_is_not_fitted() -> None:
    rng = np.random.default_rng(3)
    x, actual, predicted = _noisy(500, rng.normal(size=500), rng)
    state = loss.fit(np.column_stack([x, predicted]), actual, predicted, np.arange(500) // 50, ["mae", "r2"], seed=0)
    assert set(state["metrics"]) == {"mae"}


def test_a_head_with_too_few_labelled_held_out_rows_gets_no_estimator() -> None:
    rng = np.random.default_rng(6)
    x, actual, predicted = _noisy(500, rng.normal(size=500), rng)
    actual[10:] = np.nan  # a target that was mostly missing in the held-out days
    state = loss.fit(np.column_stack([x, predicted]), actual, predicted, np.arange(500) // 50, ["mae"], seed=0)
    assert state["rows"] == 10 and state["metrics"] == {}
    assert loss.estimate(state, np.column_stack([x, predicted]), 7, {}) == {}


def test_days_the_estimator_misreads_widen_the_interval() -> None:
    rng = np.random.default_rng(5)
    x, actual, predicted = _noisy(3000, rng.normal(size=3000), rng)
    days = np.arange(3000) // 100
    moody = actual + (predicted - actual) * np.repeat(rng.uniform(-0.6, 0.6, 30), 100)  # some days err more
    design = np.column_stack([x, predicted])
    steady = loss.fit(design, actual, predicted, days, ["mae"], seed=0)["metrics"]["mae"]["day_error_std"]
    state = loss.fit(design, moody, predicted, days, ["mae"], seed=0)
    assert state["metrics"]["mae"]["day_error_std"] > 2 * steady
    week, day = loss.estimate(state, design[:700], 7, {})["mae"], loss.estimate(state, design[:700], 1, {})["mae"]
    assert day.high - day.low > 2 * (week.high - week.low)  # one day says less than seven


def _labels(logits: np.ndarray, temperature: float, rng: np.random.Generator) -> np.ndarray:
    """Classes drawn from the probabilities ``logits`` really mean: the model is over-confident by ``temperature``."""
    probabilities = softmax(logits / temperature)
    return (probabilities.cumsum(axis=1) < rng.random((logits.shape[0], 1))).sum(axis=1).astype(np.float64)


def test_confidence_estimates_calibrate_an_over_confident_model_and_track_its_accuracy() -> None:
    rng = np.random.default_rng(4)
    held_out = rng.normal(0, 3, (3000, 3))
    state = confidence.fit(held_out, _labels(held_out, 2.0, rng))
    assert state["temperature"] == pytest.approx(2.0, rel=0.15)
    estimated, realised, inside = [], [], 0
    for sharpness in np.linspace(0.5, 4, 10):  # windows from unsure rows to sure ones
        logits = rng.normal(0, sharpness, (500, 3))
        truth = _labels(logits, 2.0, rng)
        found = confidence.estimate(state, logits)
        real = classification_metrics(truth, softmax(logits))
        estimated.append(found["accuracy"].value)
        realised.append(real["accuracy"])
        inside += found["log_loss"].low * 0.9 <= real["log_loss"] <= found["log_loss"].high * 1.1
    assert spearmanr(estimated, realised).statistic > 0.9
    assert inside >= 8
    uncalibrated = np.mean(softmax(logits).max(axis=1))  # what the raw softmax would claim
    assert uncalibrated > realised[-1] + 0.03 and abs(estimated[-1] - realised[-1]) < 0.05


def test_a_head_without_labelled_held_out_rows_keeps_its_temperature_at_one() -> None:
    state = confidence.fit(np.zeros((4, 2)), np.full(4, np.nan))
    assert state == {"kind": "confidence", "rows": 0, "temperature": 1.0}


# --- a project whose errors grow with one input: a window of such rows is estimated degraded


def _rows(rows: int, start: datetime, spread: np.ndarray, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=rows)
    return pl.DataFrame(
        {
            "ts": pl.datetime_range(start, start + timedelta(hours=rows - 1), "1h", eager=True),
            "a": a,
            "b": spread,
            "y": 2 * a + rng.normal(size=rows) * (0.1 + np.abs(spread)),
        }
    )


@pytest.fixture(scope="module")
def noisy_project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    history = _rows(1440, datetime(2024, 1, 1), np.random.default_rng(0).normal(size=1440), seed=1)
    train = TrainSettings(hidden=[16], epochs=25, batch_size=64, patience=5, learning_rate=3e-3)
    project = make_project(tmp_path_factory.mktemp("estimates") / "p", history, train, batch_id="history")
    with MlflowTracker(project) as tracker:
        trained = train_project(project, callbacks=[tracker])
        prepare_monitoring(trained, project)
        version = tracker.record(trained)
    Registry(project).promote(version)
    calm = _rows(168, datetime(2024, 3, 1), np.random.default_rng(2).normal(0, 0.3, 168), seed=3)
    rough = _rows(168, datetime(2024, 3, 8), np.random.default_rng(4).choice([-2.2, 2.2], 168), seed=5)
    ingest(project, calm, batch_id="calm")
    ingest(project, rough.drop("y"), batch_id="rough-unlabelled")
    materialize(project.lake, project.feature_set())
    predict_window(project, datetime(2024, 3, 1), datetime(2024, 3, 15))
    return project


def test_the_package_carries_an_estimator_per_target(noisy_project: Project) -> None:
    registry = Registry(noisy_project)
    package = registry.load(registry.champion() or "")
    [state] = package.reference[ESTIMATES].values()
    assert state["kind"] == "loss" and set(state["metrics"]) == {"mae"} and state["rows"] > 300


def test_a_calm_window_is_estimated_near_its_realised_error(noisy_project: Project) -> None:
    report = monitor_window(noisy_project, datetime(2024, 3, 1), datetime(2024, 3, 8))
    [estimate], [realised] = report.estimates, report.performance
    assert estimate.metric == "mae" and estimate.rows == 168
    assert estimate.estimate.value < realised.metrics["mae"] * 1.6 and estimate.worsening < 0.25
    assert "estimated_degraded" not in report.verdict.signals


def test_a_window_without_labels_is_found_degraded_by_its_estimate(noisy_project: Project) -> None:
    report = monitor_window(noisy_project, datetime(2024, 3, 8), datetime(2024, 3, 15))
    assert report.performance == []  # no label yet
    [estimate] = report.estimates
    assert (
        estimate.worsening > 0.5 and estimate.sure_worsening > 0.25 and estimate.estimate.low <= estimate.estimate.value
    )
    assert report.verdict.level == "estimated_degraded" and report.verdict.retrain_signal
    assert any("no labels needed" in reason for reason in report.verdict.reasons)
    decision = should_retrain(
        report.verdict.signals, 1000, None, datetime(2024, 3, 15), LoopSettings(retrain_on=["estimated_degraded"])
    )
    assert decision.retrain and "estimated_degraded" in decision.reason
    rows = noisy_project.lake.read("monitoring").filter(
        (pl.col("section") == "estimate") & (pl.col("window_start") == datetime(2024, 3, 8))
    )
    values = dict(zip(rows.get_column("statistic"), rows.get_column("value"), strict=True))
    assert values["mae_low"] <= values["mae"] <= values["mae_high"] and values["rows"] == 168
    assert rows.filter(pl.col("statistic") == "sure_worsening").get_column("flagged").to_list() == [True]


def test_a_policy_that_ignores_estimates_is_not_moved_by_them(noisy_project: Project) -> None:
    report = monitor_window(noisy_project, datetime(2024, 3, 8), datetime(2024, 3, 15))
    decision = should_retrain(
        report.verdict.signals, 1000, None, datetime(2024, 3, 15), LoopSettings(retrain_on=["degraded"])
    )
    assert not decision.retrain and "nothing to act on" in decision.reason


def test_a_model_trained_before_estimators_is_monitored_without_them(tmp_path: Path) -> None:
    from tests.test_predict import champion_project

    project = champion_project(tmp_path / "old")  # recorded without prepare_monitoring
    predict_window(project, datetime(2024, 1, 3), datetime(2024, 1, 10))
    report = monitor_window(project, datetime(2024, 1, 3), datetime(2024, 1, 10))
    assert report.estimates == [] and report.performance


def test_the_monitor_command_shows_and_charts_the_estimate_beside_the_realised_metric(noisy_project: Project) -> None:
    from tests.test_cli import run

    folder = str(noisy_project.root)
    for since, until in (("2024-03-01", "2024-03-08"), ("2024-03-08", "2024-03-15")):  # labelled, then not
        code, out, _ = run("monitor", "--since", since, "--until", until, "--project", folder, "--json")
        assert code == 0
    [estimate] = json.loads(out)["estimates"]
    assert estimate["target"] == "y" and estimate["metric"] == "mae" and estimate["rows"] == 168
    assert (
        estimate["metrics"]["mae"]["low"] <= estimate["metrics"]["mae"]["value"] <= estimate["metrics"]["mae"]["high"]
    )
    page = Path(json.loads(out)["report"][0]).read_text(encoding="utf-8")
    assert "Estimated performance (every row, no labels needed)" in page
    assert "y mae, estimated, 95% interval" in page and '"name":"y mae"' in page  # both series in the chart
    code, out, _ = run("monitor", "--since", "2024-03-08", "--until", "2024-03-15", "--project", folder)
    assert code == 0 and "Estimated performance" in out and "estimated_degraded" in out


def test_estimators_learn_from_a_sample_of_many_held_out_rows(
    noisy_project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    from driftloop.monitor import estimates

    registry = Registry(noisy_project)
    package = registry.load(registry.champion() or "")
    rows = _rows(500, datetime(2024, 4, 1), np.random.default_rng(7).normal(size=500), seed=8)
    monkeypatch.setattr(estimates, "MAX_FIT_ROWS", 200)
    [state] = estimates.fit_estimators(package, package, rows, noisy_project.settings.promote).values()
    assert state["rows"] == 200 and set(state["metrics"]) == {"mae"}
