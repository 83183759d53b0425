"""Batch prediction benchmark: rows/s scored and written to Delta with their metadata, against the
model's raw forward pass on the same rows, in the same run.

A project with a features table of --rows rows (minutely, 20 numeric inputs and a category),
a champion trained on its first days; then, median of --repeats, interleaved:
  - raw forward: the network as trained, a plain PyTorch forward pass in evaluation mode on the
    already-preprocessed arrays of all rows, in driftloop's chunks (``SCORING_CHUNK``: the
    chunk size that is fastest for it is fastest for this too); the ceiling of the model itself
    and the issue's baseline;
  - folded forward: the same network as driftloop scores with it (batch norm folded into the
    dense layers, one head matrix: ``FoldedTorch``), same arrays, for a second, stricter ceiling;
  - driftloop: ``predict_window`` over every row: read the features table, features,
    preprocessing, forward pass, prediction metadata, idempotent Delta commits;
  - bare write: ``write_deltalake`` of the same prediction rows, no scoring (the ceiling of I/O).

    python benchmarks/bench_batch_predict.py [--rows 1000000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import torch
from deltalake import write_deltalake

from driftloop.feature_table import materialize
from driftloop.ingest import ingest
from driftloop.lake import Lake
from driftloop.model.network import TabularNet
from driftloop.model.trainer import train_project
from driftloop.predict import predict_window
from driftloop.project import Project, init_project
from driftloop.registry import Registry
from driftloop.registry.mlflow.tracking import MlflowTracker
from driftloop.runtime.backends.torch import SCORING_CHUNK
from driftloop.settings.train import TrainSettings

START = datetime(2020, 1, 1)


def make_rows(rows: int) -> pl.DataFrame:
    rng = np.random.default_rng(0)
    data = {f"x{i}": rng.normal(0, 1, rows) for i in range(20)}
    frame = pl.DataFrame(data).with_columns(
        pl.Series("c", rng.choice(["a", "b", "c", "d"], rows)),
        pl.datetime_range(START, START + timedelta(minutes=rows - 1), "1m", eager=True).alias("ts"),
    )
    return frame.with_columns((pl.col("x0") * pl.col("x1") + pl.col("x2")).alias("y"))


def build(folder: Path, rows: int) -> Project:
    frame = make_rows(rows)
    project = init_project(folder / "bench", sample=frame.head(5000), time_column="ts", targets=("y",))
    settings = TrainSettings(epochs=5, patience=6)
    Project(project.root, project.settings.model_copy(update={"train": settings, "features": []})).save()
    project = Project.load(project.root)
    ingest(project, frame, batch_id="bench")
    materialize(project.lake, project.feature_set())
    return project


def champion(project: Project, train_rows: int) -> str:
    """A champion trained on the first ``train_rows`` feature rows (the benchmark is about scoring)."""
    scratch = project.root / "train-lake"
    Lake(scratch).append("features", project.lake.read("features").head(train_rows))
    section = project.settings.project.model_copy(update={"lake": str(scratch)})
    small = Project(project.root, project.settings.model_copy(update={"project": section}))
    with MlflowTracker(small) as tracker:
        version = tracker.record(train_project(small, callbacks=[tracker]))
    Registry(project).promote(version)
    return version


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory() as folder:
        project = build(Path(folder), args.rows)
        version = champion(project, 20_000)
        package = Registry(project).load(version)
        features = project.lake.read("features")
        numbers, categories = package.preprocessor.transform(package.features.apply(features))
        module = TabularNet(package.spec)  # the network as trained, from the package's weights
        module.load_state_dict({name: torch.from_numpy(values) for name, values in package.weights.items()})
        end = START + timedelta(minutes=args.rows)
        forward, folded, ours, bare = [], [], [], []
        for i in range(args.repeats):
            started = time.perf_counter()
            raw_forward(module, numbers, categories)
            forward.append(time.perf_counter() - started)
            started = time.perf_counter()
            package.network(numbers, categories)
            folded.append(time.perf_counter() - started)
            started = time.perf_counter()
            predict_window(project, START, end)
            ours.append(time.perf_counter() - started)
            written = project.lake.read("predictions")
            started = time.perf_counter()
            write_deltalake(str(Path(folder) / f"bare{i}"), written.to_arrow())
            bare.append(time.perf_counter() - started)
    rows = args.rows
    f, o, b = statistics.median(forward), statistics.median(ours), statistics.median(bare)
    d = statistics.median(folded)
    print(f"{rows:,} rows, 21 inputs, hidden [128, 64], median of {args.repeats}")
    print(f"raw forward pass (preprocessed arrays)  {f:6.2f} s {rows / f:12,.0f} rows/s")
    print(f"folded forward pass (same arrays)       {d:6.2f} s {rows / d:12,.0f} rows/s")
    print(f"driftloop predict (read+score+write)    {o:6.2f} s {rows / o:12,.0f} rows/s")
    print(f"bare write_deltalake of the output      {b:6.2f} s {rows / b:12,.0f} rows/s")
    print(f"driftloop vs raw forward: {f / o:.0%} of its rows/s; vs folded forward: {d / o:.0%}; "
          f"vs bare write: {b / o:.0%}")  # fmt: skip


def raw_forward(network: TabularNet, numbers: np.ndarray, categories: np.ndarray, chunk: int = SCORING_CHUNK) -> None:
    """The network as trained, plain PyTorch in evaluation mode, in the chunks driftloop uses."""
    network.eval()
    with torch.inference_mode():
        for start in range(0, len(numbers), chunk):
            network(
                torch.from_numpy(numbers[start : start + chunk]), torch.from_numpy(categories[start : start + chunk])
            )


if __name__ == "__main__":
    main()
