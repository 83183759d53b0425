"""Data-parallel training: the same fit on two processes started by Spark's TorchDistributor
(local mode, on the driver), each on its half of every epoch's rows with its gradients averaged.
It must learn what one process learns, and the in-process engine must say it cannot."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from driftloop.engine import SparkEngine, SparkOptions
from driftloop.errors import ConfigError
from driftloop.model.train import Shard
from driftloop.model.trainer import train_project
from driftloop.project import Project
from driftloop.settings.train import TrainSettings
from tests.conftest import make_project, synthetic_rows

TRAIN = TrainSettings(hidden=[32, 16], epochs=12, batch_size=64, patience=12, learning_rate=3e-3, refit=True)


def test_a_shard_is_every_nth_row_of_the_epochs_order_as_many_on_each_process() -> None:
    order = torch.randperm(11, generator=torch.Generator().manual_seed(0))
    parts = [Shard(rank, 3).rows(order) for rank in range(3)]
    assert [len(p) for p in parts] == [3, 3, 3]  # every process takes as many steps
    assert len(set(torch.cat(parts).tolist())) == 9  # none shared
    assert Shard().rows(order).equal(order) and Shard(0, 4).batch_size(256) == 64 and Shard(0, 3).batch_size(256) == 86


def _on(project: Project, engine: str, processes: int) -> Project:
    update = {
        "project": project.settings.project.model_copy(update={"engine": engine}),
        "spark": SparkOptions(master="local[2]"),
        "train": TRAIN.model_copy(update={"processes": processes}),
    }
    return Project(project.root, project.settings.model_copy(update=update))


def test_two_processes_learn_what_one_learns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = make_project(tmp_path / "p", synthetic_rows(960), TRAIN, batch_id="synthetic")
    launched: list[int] = []
    distribute = SparkEngine.distribute

    def counted(self: SparkEngine, function: object, processes: int) -> object:
        launched.append(processes)
        return distribute(self, function, processes)  # type: ignore[arg-type]

    monkeypatch.setattr(SparkEngine, "distribute", counted)
    one = train_project(_on(project, "polars", 1))
    two = train_project(_on(project, "spark", 2))
    assert launched == [2, 2]  # the held-out fit and the refit, each on two processes
    assert len(two.fit.history) == 12 and two.fit.best_epoch > 0  # it learnt beyond its linear start
    assert two.refit is not None and two.refit.best_epoch == two.fit.best_epoch
    assert two.fit.samples_seen == pytest.approx(one.fit.samples_seen, rel=0.02)  # every row, once an epoch
    # Not the same numbers (another order of batches, two sets of batch statistics), the same skill.
    mae = {n: m.metrics["test"]["y"]["mae"] for n, m in (("one", one), ("two", two))}
    baseline = one.baseline_metrics["test"]["y"]["mae"]
    assert mae["two"] < 0.8 * baseline and mae["two"] == pytest.approx(mae["one"], rel=0.35), (mae, baseline)
    scored = two.package.predict_valid(synthetic_rows(24, seed=5))
    assert scored.height == 24 and scored.get_column("y").is_finite().all()


def test_data_parallel_training_is_refused_on_the_in_process_engine(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", synthetic_rows(240), TRAIN, batch_id="synthetic")
    with pytest.raises(ConfigError, match=r'processes = 2: .*engine = "spark"'):
        train_project(_on(project, "polars", 2))
