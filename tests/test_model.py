"""The time split, the training loop and the trainer, on a small learnable synthetic project."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch

from driftloop.errors import TrainingError
from driftloop.feature_table import materialize
from driftloop.ingest import ingest
from driftloop.model.baseline import Baseline
from driftloop.model.data import held_out_rows, split_by_time
from driftloop.model.network import TabularNet
from driftloop.model.train import Head, Tensors, evaluate_loss, fit
from driftloop.model.trainer import TrainedModel, train_project
from driftloop.project import Project, init_project
from driftloop.runtime.backends.torch import FoldedTorch
from driftloop.runtime.spec import NetworkSpec
from driftloop.settings.train import TrainSettings
from tests.conftest import make_project, make_synthetic_project, synthetic_rows


@pytest.fixture(scope="module")
def trained(synthetic_project: Project) -> TrainedModel:
    return train_project(synthetic_project)


def test_no_row_of_a_later_window_leaks_into_an_earlier_one() -> None:
    rows = synthetic_rows(100)
    rows = pl.concat([rows, rows.tail(5).with_columns(pl.col("y") + 1)])  # repeated timestamps at a boundary
    splits = split_by_time(rows, "ts", validation=0.2, test=0.2)
    assert splits.train.get_column("ts").max() < splits.validation.get_column("ts").min()  # type: ignore[operator]
    assert splits.validation.get_column("ts").max() < splits.test.get_column("ts").min()  # type: ignore[operator]
    assert splits.train.height + splits.validation.height + splits.test.height == rows.height
    with pytest.raises(TrainingError, match="window is empty"):
        split_by_time(synthetic_rows(2), "ts", validation=0.2, test=0.2)


def test_windows_sized_in_days_end_with_the_newest_row() -> None:
    rows = synthetic_rows(24 * 10)  # ten days of hourly rows, to 2024-01-10 23:00
    splits = split_by_time(rows, "ts", validation=0.15, test=0.15, validation_days=2, test_days=1)
    assert splits.test_start == datetime(2024, 1, 10) and splits.test.height == 24
    assert splits.validation_start == datetime(2024, 1, 8) and splits.validation.height == 48
    assert splits.train.height == 24 * 7
    with pytest.raises(TrainingError, match=r"training window is empty.*validation_days/test_days"):
        split_by_time(rows, "ts", validation=0.15, test=0.15, validation_days=9, test_days=1)


def test_the_refit_learns_from_every_row_and_keeps_the_held_out_numbers(trained: TrainedModel) -> None:
    lineage, metrics = trained.package.lineage, trained.package.metrics
    assert trained.refit is not None and lineage["refit"] == {"rows": 480, "epochs": trained.fit.best_epoch}
    assert len(trained.refit.history) == trained.fit.best_epoch  # the epochs early stopping chose
    # The schedule it followed is the held-out fit's, epoch for epoch.
    assert [h.learning_rate for h in trained.refit.history] == [
        h.learning_rate for h in trained.fit.history[: trained.fit.best_epoch]
    ]
    assert datetime.fromisoformat(lineage["fitted_until"]) == datetime(2024, 1, 20, 23)  # the newest row
    # The serving weights differ from the held-out fit's, and do better on the days it held out.
    package = trained.package
    test_rows = trained.splits.test
    refit_mae = float((package.predict_valid(test_rows).get_column("y") - test_rows.get_column("y")).abs().mean())
    assert refit_mae < metrics["network"]["test"]["y"]["mae"]
    # Monitoring expects the better of the held-out fit's validation and test numbers.
    held_out = metrics["network"]
    assert metrics["expected"]["y"]["mae"] == min(held_out["validation"]["y"]["mae"], held_out["test"]["y"]["mae"])
    assert metrics["expected"]["y"]["r2"] == max(held_out["validation"]["y"]["r2"], held_out["test"]["y"]["r2"])


def test_the_package_knows_which_inputs_the_model_relies_on(trained: TrainedModel) -> None:
    # y = 3a - 2b + 2ab + 2[c = "x"]: a and b move it most, c a little.
    importance = trained.package.reference["importance"]
    assert set(importance) == {"a", "b", "c"} and abs(sum(importance.values()) - 1) < 1e-9
    assert importance["a"] > importance["c"] and importance["b"] > importance["c"] > 0


def test_the_network_learns_and_beats_the_baseline_where_it_should(trained: TrainedModel) -> None:
    test = trained.metrics["test"]["y"]
    assert test["r2"] > 0.9  # y is a simple function of the inputs
    assert trained.baseline_metrics["test"]["y"]["r2"] < test["r2"] - 0.1  # ridge cannot model the ab term
    history = trained.fit.history
    assert history[-1].train_loss < history[0].train_loss
    assert trained.package.lineage["rows"] == {"train": 336, "validation": 72, "test": 72}
    assert datetime.fromisoformat(trained.package.lineage["test_start"]) == trained.splits.test_start


def test_same_seed_same_model(synthetic_project: Project) -> None:
    quick = synthetic_project.settings.train.model_copy(update={"epochs": 3})
    project = Project(synthetic_project.root, synthetic_project.settings.model_copy(update={"train": quick}))
    first, second = train_project(project), train_project(project)
    assert first.package.weights.keys() == second.package.weights.keys()
    for name, values in first.package.weights.items():
        assert np.array_equal(values, second.package.weights[name]), name


def test_early_stopping_keeps_the_best_epoch(trained: TrainedModel) -> None:
    losses = [h.validation_loss for h in trained.fit.history]
    assert trained.fit.best_epoch >= 1  # on data a network learns, training beats where it began
    assert min(losses) == losses[trained.fit.best_epoch - 1]
    if trained.fit.stopped_early:
        assert len(losses) - trained.fit.best_epoch == 10  # patience


def test_network_shape_follows_the_spec() -> None:
    spec = NetworkSpec(numeric=3, cardinalities=[4], targets=2, hidden=[8, 4], activation="gelu", batch_norm=False)
    net = TabularNet(spec)
    out = net(torch.zeros(5, 3), torch.zeros(5, 1, dtype=torch.int64))
    assert out.shape == (5, 2)
    assert not any(isinstance(m, torch.nn.BatchNorm1d) for m in net.modules())


def test_training_refuses_what_it_cannot_do(tmp_path: Path, small_project: Project) -> None:
    with pytest.raises(TrainingError, match="features table is empty"):
        train_project(small_project)
    project = make_synthetic_project(tmp_path / "p", epochs=1)
    wrong = project.settings.train.model_copy(update={"targets": {"nope": {"loss": "mae"}}})
    with pytest.raises(TrainingError, match=r"names \['nope'\], which are not targets"):
        train_project(Project(project.root, project.settings.model_copy(update={"train": wrong})))
    with pytest.raises(ValueError, match="at least 20%"):
        TrainSettings(validation_fraction=0.45, test_fraction=0.4)


def test_missing_labels_add_no_loss_and_no_gradient() -> None:
    from driftloop.model.train import per_target_loss

    output = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], requires_grad=True)
    target = torch.tensor([[0.0, float("nan")], [3.0, 4.0], [float("nan"), 8.0]])
    losses = per_target_loss(output, target, [Head("mse"), Head("mae")], masked=True)
    assert losses.tolist() == pytest.approx([(1.0 + 0.0) / 2, (0.0 + 2.0) / 2])
    losses.sum().backward()  # type: ignore[no-untyped-call]
    assert output.grad is not None
    assert output.grad[2, 0] == 0 and output.grad[0, 1] == 0
    full = per_target_loss(output, torch.nan_to_num(target), [Head("mse"), Head("mse")], masked=False)
    assert full.shape == (2,)


@pytest.mark.parametrize(
    ("activation", "batch_norm", "cardinalities", "targets", "linear"),
    [("swish", True, [3, 5], 2, True), ("swish", True, [3, 5], 2, False), ("relu", False, [4], 1, True),
     ("gelu", True, [], 3, False)],
)  # fmt: skip
def test_the_folded_network_scores_as_the_module_in_evaluation_mode(
    activation: str, batch_norm: bool, cardinalities: list[int], targets: int, linear: bool
) -> None:
    torch.manual_seed(0)
    spec = NetworkSpec(
        6, cardinalities, targets, hidden=[16, 8], activation=activation, batch_norm=batch_norm, linear=linear
    )
    net = TabularNet(spec)
    with torch.no_grad():  # batch norm statistics and affine terms far from their identity start
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm1d):
                module.running_mean.uniform_(-2, 2)
                module.running_var.uniform_(0.1, 4)
                module.weight.uniform_(0.5, 2)
                module.bias.uniform_(-1, 1)
    net.eval()
    numbers = torch.randn(300, 6)
    categories = torch.zeros((300, 0), dtype=torch.int64)
    if cardinalities:
        categories = torch.stack([torch.randint(0, c, (300,)) for c in cardinalities], dim=1)
    weights = net.weights()
    folded = FoldedTorch(spec, weights)  # from the spec and the arrays alone, as a package loads it
    with torch.inference_mode():
        expected = net(numbers, categories).numpy()
    assert np.allclose(folded(numbers.numpy(), categories.numpy()), expected, rtol=1e-5, atol=1e-5)
    with torch.no_grad():
        net.heads[0].bias.add_(1.0)  # the module trained further: neither its weights nor the folded form move
    assert np.allclose(folded(numbers.numpy(), categories.numpy()), expected, rtol=1e-5, atol=1e-5)
    if not linear:  # (with the linear path, its bias joins the heads')
        assert np.array_equal(weights["heads.0.bias"], FoldedTorch(spec, weights).head_bias.numpy()[:1])
    with pytest.raises(KeyError):
        FoldedTorch(spec, {k: v for k, v in weights.items() if not k.startswith("heads.")})


def test_the_network_starts_from_the_linear_baseline_and_never_ends_below_it_on_validation() -> None:
    rng = np.random.default_rng(3)
    numbers = rng.normal(0, 1, (600, 4)).astype(np.float32)
    categories = rng.integers(0, 3, (600, 1)).astype(np.int64)
    # Linear with noise: nothing beyond the baseline to learn.
    targets = (numbers @ np.array([1.0, -2.0, 0.5, 0.0]) + categories[:, 0] + rng.normal(0, 1, 600))[:, None]
    targets = targets.astype(np.float32)
    baseline = Baseline.fit(numbers[:400], categories[:400], targets[:400], [3], [1])
    spec = NetworkSpec(4, [3], 1, hidden=[16], linear=True)
    net = TabularNet(spec)
    net.start_from_linear(*baseline.as_linear())
    net.eval()
    with torch.inference_mode():
        started = net(torch.from_numpy(numbers), torch.from_numpy(categories)).numpy()
    assert np.allclose(started, baseline.predict(numbers, categories), atol=1e-4)
    train = Tensors.of(numbers[:400], categories[:400], targets[:400])
    validation = Tensors.of(numbers[400:], categories[400:], targets[400:])
    settings = TrainSettings(epochs=30, patience=5, learning_rate=3e-2)
    result = fit(train, validation, spec, settings, ["y"], linear_start=baseline.as_linear())
    begun = TabularNet(spec)
    begun.start_from_linear(*baseline.as_linear())
    start_loss = evaluate_loss(begun, validation, [Head("huber")])[0]
    final_loss = evaluate_loss(result.model, validation, [Head("huber")])[0]
    assert final_loss <= start_loss + 1e-6
    with pytest.raises(ValueError, match="linear path"):
        TabularNet(NetworkSpec(4, [3], 1)).start_from_linear(*baseline.as_linear())


@pytest.mark.parametrize("refit", [False, True])
def test_an_input_with_no_value_in_the_training_window_is_left_out_and_said_so(tmp_path: Path, refit: bool) -> None:
    # A survey question first asked in the last fifth of the history: nothing to learn from in
    # the training window. The refit on the whole window, which holds its values, takes it in.
    rows = synthetic_rows()
    late = pl.when(pl.int_range(pl.len()) >= 400).then(pl.col("a") * 2).alias("late")
    sample = rows.with_columns(late)
    project = init_project(tmp_path / "p", sample=sample, time_column="ts", targets=("y",))
    train = TrainSettings(hidden=[16], epochs=3, batch_size=64, refit=refit)
    Project(project.root, project.settings.model_copy(update={"train": train, "features": []})).save()
    project = Project.load(project.root)
    ingest(project, sample, batch_id="late")
    materialize(project.lake, project.feature_set())
    trained = train_project(project)
    assert trained.package.lineage["inputs_left_out"] == ([] if refit else ["late"])
    assert ("late" in trained.package.preprocessor.numeric) is refit
    scored = trained.package.predict(project.lake.read("features").tail(5))  # rows with the value score too
    assert np.isfinite(scored.get_column("y").to_numpy()).all()


def test_a_window_larger_than_max_rows_trains_on_a_sample_spread_over_its_days(tmp_path: Path) -> None:
    """Beyond ``max_rows`` the features table is read as a sample: about that many rows, every
    day keeping about the same share, the same rows on a rerun and when promotion reads the
    test window again, and the share recorded with the run."""
    train = TrainSettings(hidden=[16], epochs=3, batch_size=128, patience=2, max_rows=1000, refit=False)
    project = make_project(tmp_path / "big", synthetic_rows(4800), train, batch_id="big")
    trained = train_project(project)
    share = trained.package.lineage["sample"]["share"]
    assert share == pytest.approx(1000 / 4800)
    read = trained.splits.train.height + trained.splits.validation.height + trained.splits.test.height
    assert 850 < read < 1150  # a hash keeps each row with that chance
    per_day = (
        pl.concat([trained.splits.train, trained.splits.validation, trained.splits.test])
        .group_by(pl.col("ts").dt.date())
        .len()
    )
    assert per_day.height == 200 and per_day.get_column("len").max() <= 14  # of 24 a day: spread, not clumped
    again = train_project(project)
    assert again.splits.test.equals(trained.splits.test)
    tested = held_out_rows(project.lake, project.feature_set(), trained.package.lineage)
    assert tested.height == trained.package.lineage["rows"]["test"]
    every = TrainSettings(hidden=[16], epochs=2, batch_size=128, patience=2, max_rows=None, refit=False)
    whole = train_project(Project(project.root, project.settings.model_copy(update={"train": every})))
    assert whole.package.lineage["sample"]["share"] == 1.0 and sum(whole.package.lineage["rows"].values()) == 4800
