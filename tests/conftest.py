"""Shared fixtures: the real demo data, small contracts, and projects in temporary folders."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from driftloop.data.contract import Column, ColumnType, Contract, Role
from driftloop.demo.data import TARGETS, TIME, load_energy
from driftloop.feature_table import materialize
from driftloop.features import DatetimeFeature
from driftloop.ingest import ingest
from driftloop.project import Project, init_project
from driftloop.settings.train import TrainSettings


@pytest.fixture(scope="session")
def energy() -> pl.DataFrame:
    """The demo data as text, as a CSV arrives."""
    return load_energy()


@pytest.fixture
def energy_project(tmp_path: Path, energy: pl.DataFrame) -> Project:
    """A project whose contract was drafted from the first week of the demo data."""
    return init_project(tmp_path / "energy", sample=energy.head(1008), time_column=TIME, targets=TARGETS)


@pytest.fixture
def small_contract() -> Contract:
    """A contract with one column of each kind of rule, keyed by id and event time."""
    return Contract(
        columns={
            "id": Column(type=ColumnType.STRING, role=Role.ID),
            "ts": Column(type=ColumnType.DATETIME, role=Role.EVENT_TIME),
            "x": Column(type=ColumnType.FLOAT, nullable=False, min=0, max=100),
            "n": Column(type=ColumnType.INT, min=0),
            "colour": Column(type=ColumnType.STRING, allowed=["red", "green"]),
            "flag": Column(type=ColumnType.BOOL),
            "y": Column(type=ColumnType.FLOAT, role=Role.TARGET, required=False),
        }
    )


def small_frame(rows: int = 6, *, start: int = 0) -> pl.DataFrame:
    """Valid text rows for ``small_contract``: ids ``e{start}``..., one minute apart."""
    return pl.DataFrame(
        {
            "id": [f"e{i}" for i in range(start, start + rows)],
            "ts": [f"2024-03-01 10:{i % 60:02d}:00" for i in range(start, start + rows)],
            "x": [str(1.5 * i % 100) for i in range(start, start + rows)],
            "n": [str(i) for i in range(start, start + rows)],
            "colour": ["red" if i % 2 else "green" for i in range(start, start + rows)],
            "flag": ["true" if i % 3 else "no" for i in range(start, start + rows)],
            "y": [str(i * 0.5) for i in range(start, start + rows)],
        }
    )


@pytest.fixture
def small_project(tmp_path: Path, small_contract: Contract) -> Project:
    """A project over ``small_contract`` with the hour of ``ts`` as a feature, read back from its file."""
    empty = init_project(tmp_path / "small")
    hour = DatetimeFeature(column="ts", parts=["hour"])
    Project(empty.root, empty.settings.model_copy(update={"contract": small_contract, "features": [hour]})).save()
    return Project.load(empty.root)


def synthetic_rows(rows: int = 480, *, seed: int = 0, start: datetime | None = None) -> pl.DataFrame:
    """Hourly rows where y = 3a - 2b + 2ab + 2[c = "x"] + small noise: a network learns it, a
    linear model cannot capture the ab term."""
    rng = np.random.default_rng(seed)
    a, b = rng.normal(0, 1, rows), rng.normal(0, 1, rows)
    c = rng.choice(["x", "y", "z"], rows)
    y = 3 * a - 2 * b + 2 * a * b + 2 * (c == "x") + rng.normal(0, 0.1, rows)
    first = start or datetime(2024, 1, 1)
    return pl.DataFrame(
        {
            "ts": pl.datetime_range(first, first + timedelta(hours=rows - 1), "1h", eager=True),
            "a": a,
            "b": b,
            "c": c,
            "y": y,
        }
    )


def make_project(root: Path, rows: pl.DataFrame, train: TrainSettings, *, batch_id: str) -> Project:
    """A project over ``rows`` (hourly ``ts``, target ``y``, no derived features) with ``train``'s
    settings, the rows ingested and materialised."""
    project = init_project(root, sample=rows, time_column="ts", targets=("y",))
    Project(project.root, project.settings.model_copy(update={"train": train, "features": []})).save()
    project = Project.load(project.root)
    ingest(project, rows, batch_id=batch_id)
    materialize(project.lake, project.feature_set())
    return project


def make_synthetic_project(root: Path, *, epochs: int = 60) -> Project:
    """A small project with ingested, materialised synthetic data and quick training settings."""
    train = TrainSettings(hidden=[32, 16], epochs=epochs, batch_size=64, patience=10, learning_rate=3e-3)
    return make_project(root, synthetic_rows(), train, batch_id="synthetic")


@pytest.fixture(scope="session")
def synthetic_project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """Shared by tests that only read it; tests that change it make their own."""
    return make_synthetic_project(tmp_path_factory.mktemp("synthetic"))


@contextmanager
def aliases_unreadable(project: Project) -> Iterator[None]:
    """The project's MLflow store with its alias table out of reach (as a damaged or half-migrated
    store leaves it): every alias read fails with an MLflow error that is not "does not exist"."""
    database = project.tracking_uri.removeprefix("sqlite:///")
    with sqlite3.connect(database) as connection:
        connection.execute("ALTER TABLE registered_model_aliases RENAME TO registered_model_aliases_away")
    try:
        yield
    finally:
        with sqlite3.connect(database) as connection:
            connection.execute("ALTER TABLE registered_model_aliases_away RENAME TO registered_model_aliases")
