"""An image network through the command line and the registry, on real images (scikit-learn's
handwritten digits) in real Delta tables and a real MLflow: tracked, registered, gated in a fresh
process, judged against the champion on images neither was trained on, and relabelled late."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path

import mlflow.pyfunc
import pandas as pd
import polars as pl
import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from driftloop.cli import app
from driftloop.errors import ModelPackageError, SourceError
from driftloop.image_labels import label_images
from driftloop.images import Standardisation
from driftloop.ingest_images import ingest_images
from driftloop.project import Project, init_project
from driftloop.registry import Registry
from driftloop.settings.images import Augmentation, ImageTrainSettings
from tests.test_images import GOOD, image_folder

runner = CliRunner()


def digits_project(root: Path, **promote: object) -> Project:
    """An image project of the ten digits, small enough to train in seconds."""
    project = init_project(root, image_classes=[str(d) for d in range(10)])
    assert project.settings.images is not None
    images = project.settings.images.model_copy(
        update={
            "standardise": Standardisation(width=16, height=16, mode="L"),
            "train": ImageTrainSettings(epochs=20, augment=Augmentation(flip=False)),
        }
    )
    settings = project.settings.model_copy(
        update={"images": images, "promote": project.settings.promote.model_copy(update=promote)}
    )
    project = Project(project.root, settings)
    project.save()
    return project


def cli(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """A project whose first 400 digits were photographed on 1 March and whose first version is champion."""
    root = tmp_path_factory.mktemp("lab")
    project = digits_project(root / "project")
    cli("ingest", str(image_folder(root / "march1", 400)), "--project", str(project.root))
    return project


def test_train_tracks_and_registers_an_image_network_that_mlflow_loads_and_the_gates_crown(
    lab: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary = json.loads(cli("train", "--project", str(lab.root), "--json"))
    assert summary["version"] == "1" and summary["images"] == {"train": 280, "validation": 60, "test": 60}
    assert summary["metrics"]["test"]["label"]["accuracy"] > 0.8 > summary["baseline"]["test"]["label"]["accuracy"]

    client = MlflowClient(tracking_uri=lab.tracking_uri)
    run = client.get_run(summary["run_id"])
    assert run.data.params["standardise.width"] == "16" and run.data.params["train.epochs"] == "20"
    assert run.data.metrics["test_label_accuracy"] == summary["metrics"]["test"]["label"]["accuracy"]
    assert "baseline_test_label_accuracy" in run.data.metrics and run.data.metrics["images_per_second"] > 0
    assert run.inputs is not None
    [dataset] = run.inputs.dataset_inputs
    assert dataset.dataset.name == "images@v0" and {t.key: t.value for t in dataset.tags}["images_train"] == "280"
    version = client.get_model_version(lab.model_name, "1")
    assert version.tags["stage"] == "dev" and version.tags["images_version"] == "0"

    # A user's own process loads the registered model with MLflow and classifies image files
    # (it finds the store in its environment).
    monkeypatch.setenv("MLFLOW_TRACKING_URI", lab.tracking_uri)
    model = mlflow.pyfunc.load_model(f"models:/{lab.model_name}/1")
    files = lab.lake.read("images").sort("captured_at").tail(20)
    predicted = model.predict(pd.DataFrame({"image": files.get_column("content").to_list()}))
    assert list(predicted.columns[:2]) == ["label", "label__p_0"] and len(predicted) == 20
    assert (predicted["label"] == files.get_column("label").to_pandas()).mean() > 0.7
    with pytest.raises(ModelPackageError, match=r"1 of 2 image\(s\) break the image contract: image 1: file:not_an"):
        model.predict(pd.DataFrame({"image": [GOOD, b"GIF87a? no, a text file"]}))

    output = cli("promote", "--project", str(lab.root))
    assert "first champion" in output
    registry = Registry(lab)
    assert registry.champion() == "1" and registry.stage("1") == "prod"
    [to_qa] = [e for e in registry.events().iter_rows(named=True) if e["kind"] == "promoted to qa"]
    gates = {g["name"]: g for g in json.loads(to_qa["details"])}
    assert all(g["passed"] for g in gates.values())
    assert (
        "file:not_an_image" in gates["refuses invalid input"]["detail"]
        and "width:min" in gates["refuses invalid input"]["detail"]
    )
    assert gates["finite outputs"]["numbers"]["rows"] == 200 and gates["latency"]["numbers"]["rows"] == 200
    assert "on 200 images" in gates["finite outputs"]["detail"] and "for one image" in gates["latency"]["detail"]
    assert gates["latency"]["numbers"]["passes"] == 3  # the quietest of three passes is judged
    assert "class shares" in gates["beats baseline"]["detail"]


def test_a_challenger_on_newer_images_is_judged_on_its_test_images_and_rolled_back(lab: Project) -> None:
    registry = Registry(lab)
    if registry.champion() is None:  # run alone: the first test's champion
        cli("train", "--project", str(lab.root))
        registry.promote()
    ingest_images(lab, image_folder(lab.root.parent / "march2", 400, start=400, day=date(2026, 3, 2)))
    challenger = json.loads(cli("train", "--project", str(lab.root), "--json"))["version"]
    decisions = registry.promote(challenger)
    assert decisions[0].kind == "promoted to qa"
    judged = decisions[-1].gates[-1].numbers
    # Its test images are the newest of 2 March: the champion never saw them, and was scored on them.
    assert judged["window_rows"] == registry.package(challenger).lineage["rows"]["test"] > 100
    assert judged["basis"] == "the challenger's test images, which neither was trained on"
    assert judged["champion"]["label"]["accuracy"] != judged["challenger"]["label"]["accuracy"]
    if decisions[-1].kind == "champion":
        assert registry.rollback().version == "1" and registry.champion() == "1"
    else:
        assert decisions[-1].kind == "rejected" and registry.champion() == "1"


def test_a_challenger_judged_ahead_waits_for_labels_that_arrive_later(tmp_path: Path) -> None:
    project = digits_project(tmp_path / "line", judge_days=1, judge_wait_days=2)
    ingest_images(project, image_folder(tmp_path / "march1", 300))
    registry = Registry(project)
    cli("train", "--project", str(project.root))
    registry.promote("1", at=datetime(2026, 3, 1, 10))
    ingest_images(project, image_folder(tmp_path / "march2", 300, start=300, day=date(2026, 3, 2)))
    cli("train", "--project", str(project.root))
    assert [d.kind for d in registry.promote("2", at=datetime(2026, 3, 2, 10))] == ["promoted to qa"]

    # The next day's photos come in unlabelled; the challenger waits for their labels.
    unlabelled = image_folder(tmp_path / "march3", 120, start=600, day=date(2026, 3, 3), labelled=False)
    ingest_images(project, unlabelled)
    waiting = registry.awaiting("2", at=datetime(2026, 3, 3, 12))
    assert waiting is not None and (waiting.labelled, waiting.rows) == (0, 120)
    assert registry.promote("2", at=datetime(2026, 3, 3, 12)) == []

    # The inspector's verdicts arrive by file name, the next day.
    truth = [(p.name, p.stem) for p in sorted(unlabelled.glob("*.png"))]
    answers = {f"digit{i:04d}.png": str(label) for i, label in enumerate(_digit_labels(600, 120), start=600)}
    labels = tmp_path / "verdicts.csv"
    labels.write_text("file,label\n" + "".join(f"{name},{answers[name]}\n" for name, _ in truth), encoding="utf-8")
    [applied] = json.loads(cli("ingest", "--labels", str(labels), "--project", str(project.root), "--json"))
    assert (applied["labelled"], applied["relabelled"], applied["lines"]) == (120, 0, 120)
    [decision] = registry.promote("2", at=datetime(2026, 3, 4, 9))
    numbers = decision.gates[0].numbers
    assert numbers["window_rows"] == 120 and numbers["basis"].endswith("which neither was trained on")
    assert numbers["window_end"] == "2026-03-03T08:59:00" and registry.awaiting("2") is None


def _digit_labels(start: int, count: int) -> list[int]:
    from sklearn.datasets import load_digits

    return [int(t) for t in load_digits().target[start : start + count]]


def test_late_labels_that_name_no_image_or_no_class_are_refused_whole(lab: Project, tmp_path: Path) -> None:
    images = lab.lake.read("images").sort("captured_at").head(2)
    before = lab.lake.version("images")
    first, second = images.get_column("image_id").to_list()
    bad = tmp_path / "bad.csv"
    bad.write_text(f"image_id,label\n{first},7\n{second},seven\nfeedface,3\n", encoding="utf-8")
    with pytest.raises(
        SourceError,
        match=r"2 line\(s\) at fault: line 3: label 'seven' is not one of .*line 4: 'feedface' names no image",
    ):
        label_images(lab, bad)
    assert lab.lake.version("images") == before  # nothing was written
    for content, problem in (
        ("file,verdict\na.png,1\n", "needs a column 'label'"),
        ("image_id,label\n", "holds no label"),
    ):
        bad.write_text(content, encoding="utf-8")
        with pytest.raises(SourceError, match=problem):
            label_images(lab, bad)

    # A correction relabels in place; the old version still reads as it was.
    fix = tmp_path / "fix.csv"
    wrong = "1" if images.get_column("label")[0] != "1" else "2"
    fix.write_text(f"image_id,label\n{first},{wrong}\n{second},{images.get_column('label')[1]}\n", encoding="utf-8")
    summary = label_images(lab, fix)
    assert (summary.labelled, summary.relabelled, summary.unchanged) == (0, 1, 1)
    now = lab.lake.read("images").filter(pl.col("image_id") == first)
    assert (
        now.get_column("label").to_list() == [wrong] and now.get_column("content")[0] == images.get_column("content")[0]
    )
    assert lab.lake.row_count("images") == lab.lake.scan("images", version=before).select(pl.len()).collect().item()
    was = lab.lake.scan("images", version=before).filter(pl.col("image_id") == first).collect()
    assert was.get_column("label").to_list() == images.get_column("label").head(1).to_list()
    fix.write_text(f"image_id,label\n{first},{images.get_column('label')[0]}\n", encoding="utf-8")
    assert label_images(lab, fix).relabelled == 1  # put back, for the other tests


def test_table_commands_and_table_options_refuse_an_image_project_clearly(lab: Project) -> None:
    for args in (["evaluate", "1"], ["features"], ["train", "--features-version", "2"]):
        result = runner.invoke(app, [*args, "--project", str(lab.root)])
        assert result.exit_code == 1
        assert "image project" in result.output, result.output
