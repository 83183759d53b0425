"""The loop on an image project, with real tables, a real MLflow and real photos (scikit-learn's
handwritten digits): the camera-line demo's lamp fails, the ticks see it the same day, retrain on
the dim photos whose labels come a day late, and serve a model that reads them again."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from driftloop.cli import app
from driftloop.demo.images import DIM_FROM, ImageReplay, create_image_demo, replay_images
from driftloop.loop import LABELS_FOLDER
from driftloop.loop.image_tick import image_tick
from driftloop.project import Project

runner = CliRunner()


@pytest.fixture(scope="module")
def line(tmp_path_factory: pytest.TempPathFactory) -> tuple[Project, ImageReplay]:
    """Five days of the line: three lit, then two under the failing lamp."""
    project = create_image_demo(tmp_path_factory.mktemp("line") / "demo")
    return project, replay_images(project, days=DIM_FROM + 1)


def test_the_failing_lamp_is_caught_the_same_day_and_a_retrained_champion_serves_the_next(
    line: tuple[Project, ImageReplay],
) -> None:
    _, replay = line
    lit, dim = replay.days[: DIM_FROM - 1], replay.days[DIM_FROM - 1 :]
    assert [d.dim for d in replay.days] == [False] * 3 + [True] * 2
    assert all(any("brightness" in r for r in d.reasons) for d in dim), dim
    # Drift the first dim day; the next, its labels have come: the accuracy fell, degraded.
    assert [d.verdict for d in dim] == ["drift", "degraded"]
    assert replay.detected == dim[0].day
    assert any("embeddings drifted" in r for r in dim[0].reasons)
    # The day the lamp failed, the loop retrained on what was labelled (the lit days); the
    # challenger was judged on that dim day once its labels came, and crowned.
    assert "promoted to qa" in " ".join(dim[0].decisions) and dim[0].served == "1"
    assert dim[1].served == "2" and "version 2: champion" in dim[1].decisions
    assert all(d.loop_accuracy is not None and d.loop_accuracy > 0.85 for d in lit)
    assert dim[0].loop_accuracy == pytest.approx(dim[0].static_accuracy)  # the lab's model served it
    assert dim[1].static_accuracy < 0.6 and dim[1].loop_accuracy is not None
    assert dim[1].loop_accuracy > dim[1].static_accuracy + 0.15
    summary = replay.to_dict()
    assert summary["accuracy"]["loop_dim"] > summary["accuracy"]["static_dim"]


def test_each_photo_is_logged_with_its_hash_and_statistics_and_each_window_monitored(
    line: tuple[Project, ImageReplay],
) -> None:
    project, replay = line
    logged = project.lake.read("predictions")
    images = project.lake.read("images")
    # Each tick scores its day and the day before (the first, the lab's 500 photos too), once per
    # version: the lab's model the first four days, version 2 (crowned on day 5) the last two again.
    assert logged.group_by("model_version").len().sort("model_version").rows() == [("1", 900), ("2", 200)]
    assert set(logged.get_column("entity_id")) == set(images.get_column("image_id")) and images.height == 1000
    first = logged.row(0, named=True)
    assert set(json.loads(first["inputs"])) >= {"brightness", "contrast", "sharpness"}
    assert abs(sum(v for k, v in first.items() if k.startswith("label__p_")) - 1) < 1e-5
    monitoring = project.lake.read("monitoring")
    # The first dim day's window: that day, and the lit day before, whose labels have come.
    dim_day = replay.days[DIM_FROM - 1].day
    window = monitoring.filter(pl.col("window_end").cast(pl.Date) == dim_day + timedelta(days=1))
    flagged = window.filter(pl.col("flagged")).select("section", "column").rows()
    assert ("embedding", "embedding") in flagged and ("input", "brightness") in flagged
    assert set(window.get_column("section")) >= {"input", "prediction", "embedding", "performance", "verdict"}
    accuracy = window.filter((pl.col("section") == "performance") & (pl.col("statistic") == "accuracy"))
    assert accuracy.get_column("value")[0] > 0.85  # realised on the lit day: the dim one is not labelled yet


def test_a_tick_notes_a_bad_labels_file_and_goes_on(line: tuple[Project, ImageReplay]) -> None:
    project, _ = line
    bad = project.inbox / LABELS_FOLDER / "scrawled.csv"
    bad.write_text("file,label\ndigit9999.png,7\n", encoding="utf-8")
    before = project.lake.version("images")
    try:
        report = image_tick(project, date(2026, 3, 20))  # a day the line was off: no photo
    finally:
        bad.unlink()
    assert any("scrawled.csv" in n and "names no image" in n for n in report.notes), report.notes
    assert project.lake.version("images") == before
    assert report.predicted is None and any("no image was captured" in n for n in report.notes)


def test_the_demo_and_a_tick_from_the_command_line(tmp_path: Path) -> None:
    made = runner.invoke(app, ["demo", "--images", str(tmp_path / "demo"), "--days", "1"])
    assert made.exit_code == 0, made.output
    assert "The line, day by day" in made.stdout and "version 1: champion" in " ".join(made.stderr.split())
    summary = json.loads((tmp_path / "demo" / "image_demo.json").read_text(encoding="utf-8"))
    assert [d["served"] for d in summary["days"]] == ["1"] and summary["days"][0]["loop_accuracy"] > 0.85
    again = runner.invoke(app, ["demo", "--images", str(tmp_path / "demo"), "--days", "1"])
    assert again.exit_code == 1 and "--force" in " ".join(again.stderr.split())
    too_many = runner.invoke(app, ["demo", "--images", str(tmp_path / "other"), "--days", "13"])
    assert too_many.exit_code == 1 and "1 to 12 days" in " ".join(too_many.stderr.split())

    tick = runner.invoke(app, ["run", "--date", "2026-03-02", "--project", str(tmp_path / "demo"), "--json"])
    assert tick.exit_code == 0, tick.output
    ran = json.loads(tick.stdout)
    assert ran["predicted_rows"] == 600 and ran["verdict"] is not None  # the day and the lab history before it


def test_a_window_of_images_is_scored_and_watched_from_the_command_line(line: tuple[Project, ImageReplay]) -> None:
    project, replay = line
    root = str(project.root)
    dim_day = str(replay.days[DIM_FROM].day)  # the second dim day: labelled by now
    scored = runner.invoke(app, ["predict", "--date", dim_day, "--project", root, "--json"])
    assert scored.exit_code == 0, scored.output
    assert json.loads(scored.stdout)["rows"] == 100
    watched = runner.invoke(app, ["monitor", "--date", dim_day, "--project", root, "--json"])
    assert watched.exit_code == 0, watched.output
    found = json.loads(watched.stdout)
    assert found["verdict"] == "degraded" and "brightness" in found["drifted_statistics"]
    assert found["embeddings"]["drifted"] and found["performance"][0]["rows"] == 100
    page = Path(found["report"][0]).read_text(encoding="utf-8")  # the report a table's window has, for images
    assert "Image statistics drift" in page and "Embedding drift" in page and "100 images" in page
    assert "brightness" in page and "<b>drifted</b>" in page and Path(found["report"][1]).stat().st_size > 0
    shown = runner.invoke(app, ["monitor", "--date", dim_day, "--no-report", "--project", root])
    assert shown.exit_code == 0 and "What moved" in shown.stdout and "embeddings" in shown.stdout
    assert "report:" not in shown.stdout
    online = runner.invoke(app, ["monitor", "--date", dim_day, "--source", "online", "--project", root])
    assert online.exit_code == 1 and "--source batch" in " ".join(online.stderr.split())
    empty = runner.invoke(app, ["predict", "--date", "2026-04-01", "--project", root])
    assert empty.exit_code == 1 and "no image was captured" in " ".join(empty.stderr.split())
