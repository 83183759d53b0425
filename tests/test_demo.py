from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from driftloop.demo import run_demo
from driftloop.demo.data import load_energy, messy_energy
from driftloop.errors import ConfigError
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


def test_demo_builds_a_project_with_features(tmp_path: Path) -> None:
    project = run_demo(tmp_path / "demo", days=3, console=Console(quiet=True))
    lake = project.lake
    assert lake.row_count("raw") == lake.row_count("features") > 300
    assert Registry(project).aliases() == {"champion": "1"}  # trained, gated and promoted
    assert len(list(project.inbox.glob("*.csv"))) == 138  # one file per day, 11 January to 27 May
    with pytest.raises(ConfigError, match="pass --force"):
        run_demo(tmp_path / "demo", days=1, console=Console(quiet=True))
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "keep.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not a driftloop project"):
        run_demo(tmp_path / "other", force=True, console=Console(quiet=True))
    assert (tmp_path / "other" / "keep.txt").exists()
