from __future__ import annotations

from pathlib import Path

import mlflow
import polars as pl
import pytest

from driftloop.errors import ModelPackageError
from driftloop.model.trainer import TrainedModel, train_project
from driftloop.project import Project
from driftloop.registry.mlflow.tracking import MlflowTracker
from driftloop.runtime.exported import GOLDEN, GRAPH
from driftloop.runtime.package import MANIFEST, WEIGHTS, ModelPackage


@pytest.fixture(scope="module")
def tracked(synthetic_project: Project) -> tuple[TrainedModel, str]:
    with MlflowTracker(synthetic_project, run_name="test") as tracker:
        trained = train_project(synthetic_project, callbacks=[tracker])
        version = tracker.record(trained)
    return trained, version


def raw_rows(trained: TrainedModel, n: int = 20) -> pl.DataFrame:
    return trained.splits.test.select("ts", "a", "b", "c").head(n)


def test_saved_package_is_json_safetensors_and_onnx_only_and_predicts_the_same(
    tracked: tuple[TrainedModel, str], tmp_path: Path
) -> None:
    trained, _ = tracked
    folder = trained.package.save(tmp_path / "pkg")
    assert sorted(p.name for p in folder.iterdir()) == sorted([MANIFEST, WEIGHTS, GRAPH, GOLDEN])
    again = ModelPackage.load(folder)
    assert again.predict(raw_rows(trained)).equals(trained.package.predict(raw_rows(trained)))
    text = raw_rows(trained).with_columns(pl.all().cast(pl.String))  # as a CSV would arrive
    assert again.predict(text).equals(trained.package.predict(raw_rows(trained)))


def test_mlflow_pyfunc_from_the_registry_predicts_what_the_package_does(
    tracked: tuple[TrainedModel, str], synthetic_project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    trained, version = tracked
    # As a user's own process finds the store: in the environment, not in MLflow's process-wide
    # state (which would outlive the test and point every later one at this store).
    monkeypatch.setenv("MLFLOW_TRACKING_URI", synthetic_project.tracking_uri)
    model = mlflow.pyfunc.load_model(f"models:/{synthetic_project.settings.project.name}/{version}")
    through_mlflow = model.predict(raw_rows(trained).to_pandas())
    assert pl.from_pandas(through_mlflow).equals(trained.package.predict(raw_rows(trained)))


def test_invalid_input_is_refused_with_rows_and_rules(tracked: tuple[TrainedModel, str]) -> None:
    trained, _ = tracked
    bad = raw_rows(trained, 3).with_columns(pl.all().cast(pl.String)).with_columns(pl.Series("a", ["1", "x", "2"]))
    with pytest.raises(ModelPackageError, match="row 2: a:type"):
        trained.package.predict(bad)
    with pytest.raises(ModelPackageError, match="column 'b': required"):
        trained.package.predict(raw_rows(trained).drop("b"))


def test_a_damaged_package_is_a_clear_error(tracked: tuple[TrainedModel, str], tmp_path: Path) -> None:
    folder = tracked[0].package.save(tmp_path / "pkg")
    (folder / WEIGHTS).write_bytes(b"not tensors")
    with pytest.raises(ModelPackageError, match="cannot read the model package"):
        ModelPackage.load(folder)
    with pytest.raises(ModelPackageError, match="cannot read the model package"):
        ModelPackage.load(tmp_path / "nowhere")


def test_the_run_holds_lineage_metrics_plots_and_a_dev_version(
    tracked: tuple[TrainedModel, str], synthetic_project: Project
) -> None:
    trained, version = tracked
    client = mlflow.MlflowClient(synthetic_project.tracking_uri)
    model_version = client.get_model_version(synthetic_project.settings.project.name, version)
    assert model_version.tags["stage"] == "dev"
    run = client.get_run(model_version.run_id)
    assert run.data.params["train.hidden"] == "[32, 16]"
    assert run.data.metrics["test_y_r2"] == pytest.approx(trained.metrics["test"]["y"]["r2"])
    assert "baseline_test_y_mae" in run.data.metrics
    assert run.data.metrics["test_overall_r2"] == pytest.approx(trained.metrics["test"]["y"]["r2"])  # one target
    history = client.get_metric_history(run.info.run_id, "validation_loss")
    assert len(history) == len(trained.fit.history)
    [dataset] = run.inputs.dataset_inputs
    assert dataset.dataset.name == f"features@v{trained.features_version}"
    tags = {t.key: t.value for t in dataset.tags}
    assert tags["delta_table_version"] == str(trained.features_version)
    assert int(tags["rows_train"]) == trained.splits.train.height
    assert str(synthetic_project.lake.uri("features")) in dataset.dataset.source
    assert "reference_profile.json" in {a.path for a in client.list_artifacts(run.info.run_id)}
    assert set(trained.package.reference["inputs"]["columns"]) == {"a", "b", "c", "y"}
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert {"plots/learning_curve.png", "plots/predicted_vs_actual_y.png", "plots/residuals_y.png"} <= artifacts
