"""Spark engine benchmark: ingest + features + batch predict + profiles at 1M, 3M and 10M rows x 25
columns, on Spark (``local[2]``) and on Polars, in one run.

Each (engine, size) runs in a fresh process, on a fresh copy of one project (its contract and a
champion trained once on 50,000 rows of the same data):
  - ingest: one Parquet file of the rows (about 1% broken: out of range, missing, an unknown
    category) checked against the contract, split into ``raw`` and ``quarantine``;
  - features: the calendar features materialised into the ``features`` table;
  - predict: the champion scores every row into ``predictions`` (``predict_window``);
  - profiles: the window's input profile on the champion's reference bins (what drift reads).

Printed per case: seconds per step, rows/s, and the peak memory of the driver process (this
Python process's own peak RSS, the kernel's high-water mark: on Spark the JVM and the Python
workers are other processes, whose memory is the cluster's, not the driver's). The engines' outputs are compared at each
size by fingerprints of every table (rows, quarantined rows per rule, sums of every number,
distinct prediction ids) and of the profile (counts per bin, exact). Then the per-row cost's
growth from the smallest to the largest size (the goal: flat within 20% on Spark), and a
projection for a cluster from the measured per-core rates.

    python benchmarks/bench_spark.py [--sizes 1000000,3000000,10000000] [--engines polars,spark]

Needs Java 17+ and the spark extra. Takes about half an hour on 2 cores at the default sizes.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

START = datetime(2024, 1, 1)
FLOATS = [f"f{i}" for i in range(15)]
INTS = [f"i{i}" for i in range(4)]
CATEGORIES = {"colour": ["red", "green", "blue"], "site": ["a", "b", "c", "d"]}
TARGET = "y"
STEPS = ("ingest", "features", "predict", "profiles")
SPARK_MEMORY = "6g"  # the local JVM (driver and executors in one): room for a 10M-row checkpoint


def make_rows(rows: int, seed: int = 0) -> pl.DataFrame:
    """``rows`` readings, one every 10 seconds: an id, a time, a flag, 15 floats, 4 ints, 2
    categories and the target (25 columns); about 1% broken."""
    rng = np.random.default_rng(seed)
    data: dict[str, Any] = {
        "id": pl.int_range(0, rows, eager=True).cast(pl.String).str.zfill(9),
        "ts": pl.datetime_range(START, START + timedelta(seconds=10 * (rows - 1)), "10s", eager=True),
        "flag": rng.random(rows) < 0.5,
    }
    data.update({name: rng.normal(50, 10, rows) for name in FLOATS})
    data.update({name: rng.integers(0, 1000, rows) for name in INTS})
    data.update({name: rng.choice(values, rows) for name, values in CATEGORIES.items()})
    frame = pl.DataFrame(data)
    frame = frame.with_columns((pl.col("f0") * 0.5 + pl.col("f1") - pl.col("i0") / 100).alias(TARGET))
    broken = rng.random(rows)
    return frame.with_columns(
        pl.when(pl.Series(broken < 0.004)).then(500.0).otherwise(pl.col("f2")).alias("f2"),
        pl.when(pl.Series((broken >= 0.004) & (broken < 0.007))).then(None).otherwise(pl.col("f3")).alias("f3"),
        pl.when(pl.Series(broken >= 0.997)).then(pl.lit("purple")).otherwise(pl.col("colour")).alias("colour"),
    )


def contract_settings() -> dict[str, Any]:
    columns: dict[str, dict[str, Any]] = {
        "id": {"type": "string", "role": "id"},
        "ts": {"type": "datetime", "role": "event_time"},
        "flag": {"type": "bool"},
        TARGET: {"type": "float", "role": "target", "required": False},
    }
    columns.update({n: {"type": "float", "nullable": False, "min": 0, "max": 100} for n in FLOATS})
    columns.update({n: {"type": "int", "min": 0, "max": 999} for n in INTS})
    columns.update({n: {"type": "string", "allowed": v} for n, v in CATEGORIES.items()})
    return {"columns": columns}


def build_template(folder: Path) -> Path:
    """A project with the contract and a champion trained on 50,000 rows; its lake is dropped
    (each case starts from an empty one)."""
    from driftloop.data.contract import Contract
    from driftloop.feature_table import materialize
    from driftloop.features import DatetimeFeature
    from driftloop.ingest import ingest
    from driftloop.model.trainer import train_project
    from driftloop.monitor.prepare import prepare_monitoring
    from driftloop.project import Project, init_project
    from driftloop.registry import Registry
    from driftloop.registry.mlflow.tracking import MlflowTracker
    from driftloop.settings.train import TrainSettings

    project = init_project(folder / "template")
    settings = project.settings.model_copy(
        update={
            "contract": Contract.model_validate(contract_settings()),
            "features": [DatetimeFeature(column="ts", parts=["hour", "day_of_week"])],
            "train": TrainSettings(hidden=[32, 16], epochs=4, batch_size=512, patience=2),
        }
    )
    Project(project.root, settings).save()
    project = Project.load(project.root)
    ingest(project, make_rows(50_000, seed=1), batch_id="template")
    materialize(project.lake, project.feature_set())
    with MlflowTracker(project) as tracker:
        trained = train_project(project, callbacks=[tracker])
        prepare_monitoring(trained, project)
        version = tracker.record(trained)
    decisions = Registry(project).promote(version)
    if Registry(project).champion() is None:
        raise SystemExit(f"the template model was not crowned: {[d.reason for d in decisions]}")
    shutil.rmtree(project.lake.root)
    return project.root


def run_case(template: Path, engine: str, data: Path, workdir: Path) -> dict[str, Any]:
    """One (engine, size) in this process: the four steps, timed, and the outputs' fingerprints."""
    from driftloop.engine import SparkOptions
    from driftloop.feature_table import materialize
    from driftloop.ingest import ingest
    from driftloop.lake import Table
    from driftloop.monitor.window import input_drift
    from driftloop.predict import predict_window
    from driftloop.project import Project
    from driftloop.registry import Registry

    root = workdir / "project"
    shutil.copytree(template, root)
    project = Project.load(root)
    spark = SparkOptions(master="local[2]", conf={"spark.driver.memory": SPARK_MEMORY})
    update = {"project": project.settings.project.model_copy(update={"engine": engine}), "spark": spark}
    Project(root, project.settings.model_copy(update=update)).save()
    project = Project.load(root)
    chosen = project.engine
    if engine == "spark":
        chosen.count(chosen.from_polars(pl.DataFrame({"x": [1]})))  # the JVM's start is not a step's cost
    seconds: dict[str, float] = {}
    peaks: dict[str, float] = {"start": _peak_mib()}  # this process's peak RSS after each step

    started = time.perf_counter()
    [summary] = ingest(project, data)
    seconds["ingest"] = time.perf_counter() - started
    peaks["ingest"] = _peak_mib()

    started = time.perf_counter()
    materialize(project.lake, project.feature_set(), engine=chosen)
    seconds["features"] = time.perf_counter() - started
    peaks["features"] = _peak_mib()

    started = time.perf_counter()
    span = (
        pl.scan_parquet(data)
        .select(pl.col("ts").min().alias("first"), pl.col("ts").max().alias("last"))
        .collect()
        .row(0)
    )
    run = predict_window(project, span[0], span[1] + timedelta(seconds=1))
    seconds["predict"] = time.perf_counter() - started
    peaks["predict"] = _peak_mib()

    started = time.perf_counter()
    package = Registry(project).load(run.model_version)
    window = chosen.window(project.lake, Table.FEATURES, span[0], span[1] + timedelta(seconds=1), "ts", None)
    drift, _, current = input_drift(package, window, project, chosen)
    seconds["profiles"] = time.perf_counter() - started
    peaks["profiles"] = _peak_mib()

    return {
        "seconds": seconds,
        "rows": summary.rows_in,
        "peak_mib": _peak_mib(),
        "peaks": peaks,
        "fingerprint": fingerprint(project, current.to_dict(), summary),
        "drifted": sorted(c.column for c in drift.columns if c.drifted),
    }


def _peak_mib() -> float:
    """This process's peak RSS: the kernel's high-water mark of its own memory (``ru_maxrss``
    would carry over the parent's peak at the fork that started this process)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def fingerprint(project: Any, profile: dict[str, Any], summary: Any) -> dict[str, Any]:
    """What must be equal between engines, read back lazily from the tables (Polars scans one
    column at a time): rows, quarantined rows per rule, sums of every number, distinct ids."""
    from driftloop.lake import PREDICTION_ID, Table

    found: dict[str, Any] = {"rules": sorted((r.column, r.rule, r.rows) for r in summary.rule_counts)}
    for table in (Table.RAW, Table.QUARANTINE, Table.FEATURES, Table.PREDICTIONS):
        scan = project.lake.scan(table)
        schema = scan.collect_schema()
        numbers = [n for n, t in schema.items() if t.is_numeric() and not n.startswith("_")]
        sums = scan.select(pl.len().alias("rows"), *(pl.col(n).cast(pl.Float64).sum() for n in numbers)).collect()
        found[table] = {k: round(float(v), 4) for k, v in sums.row(0, named=True).items()}
    ids = project.lake.scan(Table.PREDICTIONS).select(pl.col(PREDICTION_ID).n_unique()).collect().item()
    found["prediction_ids"] = int(ids)
    found["profile"] = _rounded(profile)
    return found


def _rounded(value: Any) -> Any:
    """Floats to 9 significant digits (sums added in another order agree to rounding), the rest as is."""
    if isinstance(value, float):
        return float(f"{value:.9g}")
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


def child(template: str, engine: str, data: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        result = run_case(Path(template), engine, Path(data), Path(folder))
    print("RESULT " + json.dumps(result))


def measure(template: Path, engine: str, data: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", engine, "--template", str(template), "--data", str(data)],
        capture_output=True,
        text=True,
        timeout=4 * 3600,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:  # said, and the other cases go on (a killed one says -9: memory)
        why = f"exit {done.returncode}: " + (done.stderr.strip().splitlines() or ["no message"])[-1]
        print(f"  {engine} on {data.name} failed ({why})", flush=True)
        return {"failed": why}
    result: dict[str, Any] = json.loads(lines[-1][len("RESULT ") :])
    return result


def report(results: dict[tuple[str, int], dict[str, Any]], engines: list[str], sizes: list[int]) -> None:
    print("\n| engine | rows | " + " | ".join(f"{s} s" for s in STEPS) + " | total s | rows/s | driver peak MiB |")
    print("|---|---|" + "---|" * (len(STEPS) + 3))
    for engine in engines:
        for size in sizes:
            r = results[engine, size]
            if "failed" in r:
                print(f"| {engine} | {size:,} | failed: {r['failed']} |")
                continue
            total = sum(r["seconds"].values())
            steps = " | ".join(f"{r['seconds'][s]:.1f}" for s in STEPS)
            print(f"| {engine} | {size:,} | {steps} | {total:.1f} | {size / total:,.0f} | {r['peak_mib']:,.0f} |")
    print("\nPer-row cost and driver memory, largest size against smallest:")
    for engine in engines:
        ran = [s for s in sizes if "failed" not in results[engine, s]]
        if len(ran) < 2:
            continue
        low, high = ran[0], ran[-1]
        per_row = [sum(results[engine, s]["seconds"].values()) / s for s in (low, high)]
        memory = [results[engine, s]["peak_mib"] for s in (low, high)]
        print(
            f"  {engine} ({low:,} to {high:,} rows): cost per row x{per_row[1] / per_row[0]:.2f}, "
            f"driver peak x{memory[1] / memory[0]:.2f}"
        )
    if len(engines) > 1:
        print("\nOutputs compared between engines, per size:")
        for size in sizes:
            if any("failed" in results[e, size] for e in engines):
                continue
            prints = [results[e, size]["fingerprint"] for e in engines]
            same = all(p == prints[0] for p in prints[1:])
            differing = [k for k in prints[0] if any(p.get(k) != prints[0][k] for p in prints[1:])]
            print(f"  {size:,} rows: {'identical' if same else 'DIFFERENT in ' + ', '.join(differing)}")
    ran = [s for s in sizes if "failed" not in results.get(("spark", s), {"failed": "not run"})]
    if ran:
        size = ran[-1]
        total = sum(results["spark", size]["seconds"].values())
        per_core = size / total / 2  # local[2]: two cores did the work
        print(
            f"\nProjection from Spark's measured rate ({per_core:,.0f} rows/s per core at {size:,} rows, "
            "assuming the work spreads evenly and the driver's fixed costs stay small):"
        )
        for rows, cores in ((100_000_000, 16), (1_000_000_000, 64), (1_000_000_000, 256)):
            print(f"  {rows:,} rows on {cores} cores: about {rows / (per_core * cores) / 60:.1f} min")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000000,3000000,10000000")
    parser.add_argument("--engines", default="polars,spark")
    parser.add_argument("--child")
    parser.add_argument("--template")
    parser.add_argument("--data")
    args = parser.parse_args()
    if args.child:
        child(args.template, args.child, args.data)
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    engines = args.engines.split(",")
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        print("training the champion the cases share (50,000 rows)...", flush=True)
        template = build_template(work)
        results: dict[tuple[str, int], dict[str, Any]] = {}
        for size in sizes:
            data = work / f"rows_{size}.parquet"
            make_rows(size).write_parquet(data)
            for engine in engines:
                print(f"{engine}, {size:,} rows...", flush=True)
                results[engine, size] = measure(template, engine, data)
                r = results[engine, size]
                if "failed" not in r:
                    steps = ", ".join(f"{s} {r['seconds'][s]:.1f} s" for s in STEPS)
                    print(f"  {steps}, peak {r['peak_mib']:.0f} MiB", flush=True)
            data.unlink()
        report(results, engines, sizes)


if __name__ == "__main__":
    main()
