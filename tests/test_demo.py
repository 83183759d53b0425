from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from driftloop.demo import create_demo_project, replay_start
from driftloop.demo.data import load_energy, messy_energy
from driftloop.errors import ConfigError
from driftloop.project import Project
from driftloop.registry import Registry


def test_demo_data_is_the_published_file() -> None:
    frame = load_energy()
    assert frame.shape == (19735, 29)
    assert (frame.get_column("date").min(), frame.get_column("date").max()) == (
        "2016-01-11 17:00:00",
        "2016-05-27 18:00:00",
    )


def test_messy_variant_is_reproducible_and_damaged() -> None:
    first, again = messy_energy(500, seed=1), messy_energy(500, seed=1)
    assert first.equals(again)
    assert set(first.get_column("damage")) >= {"", "null", "range", "date", "type", "category", "duplicate"}


def test_the_demo_replays_the_data_through_the_loop(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from driftloop.cli import app

    folder = tmp_path / "demo"
    result = CliRunner().invoke(app, ["demo", str(folder), "--days", "3"])
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "three strategies" in result.stdout and "static" in result.stdout and "daily" in result.stdout
    project = Project.load(folder)
    assert Registry(project).aliases()["champion"] == "1"  # trained on three weeks, gated and promoted
    assert project.lake.read("raw").get_column("date").dt.date().max() == replay_start() + timedelta(days=2)
    assert (folder / "reports" / "replay.html").is_file() and (folder / "data" / "energy.csv").is_file()
    again = CliRunner().invoke(app, ["demo", str(folder), "--days", "1"])
    assert again.exit_code == 1 and "pass --force" in again.stderr
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "keep.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not a driftloop project"):
        create_demo_project(tmp_path / "other", force=True)
    assert (tmp_path / "other" / "keep.txt").exists()
