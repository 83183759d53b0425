"""Drift benchmark: driftloop's drift computation against Evidently 0.7's DataDriftPreset.

Reference and current: --rows rows x 25 columns (20 numeric, 5 categorical), 9 columns
shifted by different amounts. Both sides run in a fresh process on the same Parquet files,
time only their computation (profiles + tests for driftloop, ``Report.run`` for Evidently)
and report their peak memory above what the process held with the data loaded. Evidently
0.7 does not import with pandas 3, so it runs in its own virtual environment (pandas 2.x),
made on first use in benchmarks/.evidently-venv (or pass --evidently-python). The ceiling:
bare numpy taking each reference column's percentiles and binning both columns on them.

    python benchmarks/bench_drift.py [--rows 1000000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

NUMERIC = [f"n{i}" for i in range(20)]
CATEGORICAL = [f"c{i}" for i in range(5)]
# Shift of each drifted numeric column, in standard deviations (some near Evidently's 0.1 threshold).
SHIFTS = {"n0": 1.0, "n1": 0.5, "n2": 0.2, "n3": 0.12, "n4": 0.08, "n5": 0.05}
CATEGORY_SHIFTS = {"c0": 0.3, "c1": 0.1, "c2": 0.02}
VENV = Path(__file__).parent / ".evidently-venv"

EVIDENTLY_CHILD = """
import json, resource, sys, time
import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.presets import DataDriftPreset
numeric, categorical = json.loads(sys.argv[3]), json.loads(sys.argv[4])
reference, current = pd.read_parquet(sys.argv[1]), pd.read_parquet(sys.argv[2])
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
baseline = rss()
definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
started = time.perf_counter()
result = Report([DataDriftPreset()]).run(
    reference_data=Dataset.from_pandas(reference, data_definition=definition),
    current_data=Dataset.from_pandas(current, data_definition=definition),
)
seconds = time.perf_counter() - started
verdicts = {}
for metric in result.dict()["metrics"]:
    config = metric.get("config", {})
    if config.get("type", "").endswith("ValueDrift"):
        p_value = "p_value" in config["method"].lower() or config["method"].lower().startswith(("k-s", "chi"))
        value, threshold = float(metric["value"]), float(config["threshold"])
        verdicts[config["column"]] = (value < threshold) if p_value else (value >= threshold)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "extra_mib": peak - baseline, "verdicts": verdicts}))
"""


def make(rows: int, seed: int, shifted: bool) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    data: dict[str, object] = {}
    for name in NUMERIC:
        shift = SHIFTS.get(name, 0.0) if shifted else 0.0
        data[name] = (
            rng.gamma(2.0, 1.0, rows) * (1 + shift / 2) + shift * 1.4
            if name.endswith(("1", "3"))
            else (rng.normal(shift, 1.0, rows))
        )
    for name in CATEGORICAL:
        base = np.array([0.4, 0.3, 0.2, 0.1])
        tilt = CATEGORY_SHIFTS.get(name, 0.0) if shifted else 0.0
        probabilities = base + np.array([-tilt, 0, 0, tilt])
        data[name] = rng.choice(["a", "b", "c", "d"], rows, p=probabilities / probabilities.sum())
    return pl.DataFrame(data)


def driftloop_child(reference_path: str, current_path: str) -> None:
    from driftloop.monitor.drift import compare
    from driftloop.monitor.stattests import tests
    from driftloop.profiles import profile
    from driftloop.settings.monitor import MonitorSettings

    tests()  # imports scipy's tests now: imports are not what is measured
    reference, current = pl.read_parquet(reference_path), pl.read_parquet(current_path)
    baseline = _rss_mib()
    started = time.perf_counter()
    ref = profile(reference, NUMERIC, CATEGORICAL)
    report = compare(ref, profile(current, NUMERIC, CATEGORICAL, like=ref), MonitorSettings())
    seconds = time.perf_counter() - started
    verdicts = {c.column: c.drifted for c in report.columns}
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "extra_mib": peak - baseline, "verdicts": verdicts}))


def ceiling_child(reference_path: str, current_path: str) -> None:
    reference, current = pl.read_parquet(reference_path), pl.read_parquet(current_path)
    baseline = _rss_mib()
    started = time.perf_counter()
    for name in NUMERIC:  # the unavoidable part: the reference's quantiles, then both columns binned on them
        ref, cur = reference.get_column(name).to_numpy(), current.get_column(name).to_numpy()
        edges = np.quantile(ref, np.linspace(0, 1, 101)[1:-1])
        np.bincount(np.searchsorted(edges, ref, side="right"), minlength=100)
        np.bincount(np.searchsorted(edges, cur, side="right"), minlength=100)
    for name in CATEGORICAL:
        reference.get_column(name).value_counts()
        current.get_column(name).value_counts()
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "extra_mib": peak - baseline, "verdicts": {}}))


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def evidently_python(given: str | None) -> str:
    if given:
        return given
    python = VENV / "bin" / "python"
    if not python.exists():
        print("making the Evidently environment (evidently 0.7.23, pandas 2.x) in", VENV, flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "evidently==0.7.23", "pandas>=2.2,<3", "pyarrow"], check=True
        )
    return str(python)


def run(command: list[str]) -> dict[str, object]:
    done = subprocess.run(command, capture_output=True, text=True, check=True, timeout=1800)
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--evidently-python")
    parser.add_argument("--child", choices=["driftloop", "ceiling"])
    parser.add_argument("paths", nargs="*")
    args = parser.parse_args()
    if args.child == "driftloop":
        driftloop_child(*args.paths)
        return
    if args.child == "ceiling":
        ceiling_child(*args.paths)
        return
    python = evidently_python(args.evidently_python)
    with tempfile.TemporaryDirectory() as folder:
        ref_path, cur_path = Path(folder) / "reference.parquet", Path(folder) / "current.parquet"
        make(args.rows, 1, shifted=False).write_parquet(ref_path)
        make(args.rows, 2, shifted=True).write_parquet(cur_path)
        paths = [str(ref_path), str(cur_path)]
        results: dict[str, list[dict[str, object]]] = {"driftloop": [], "evidently": [], "ceiling": []}
        for _ in range(args.repeats):  # interleaved
            results["driftloop"].append(run([sys.executable, __file__, "--child", "driftloop", *paths]))
            results["evidently"].append(
                run([python, "-c", EVIDENTLY_CHILD, *paths, json.dumps(NUMERIC), json.dumps(CATEGORICAL)])
            )
            results["ceiling"].append(run([sys.executable, __file__, "--child", "ceiling", *paths]))
    summary = {
        name: (statistics.median(float(r["seconds"]) for r in runs), max(float(r["extra_mib"]) for r in runs))  # type: ignore[arg-type]
        for name, runs in results.items()
    }
    ours = results["driftloop"][0]["verdicts"]
    theirs = results["evidently"][0]["verdicts"]
    assert isinstance(ours, dict) and isinstance(theirs, dict)
    agree = [c for c in ours if theirs.get(c) == ours[c]]
    print(f"{args.rows:,} vs {args.rows:,} rows x 25 columns (20 numeric, 5 categorical), median of {args.repeats}")
    print(f"{'':32}{'seconds':>9}{'peak MiB':>10}")
    for name, label in (("driftloop", "driftloop profiles + tests"), ("evidently", "Evidently DataDriftPreset"),
                        ("ceiling", "ceiling: bare numpy binning")):  # fmt: skip
        print(f"{label:32}{summary[name][0]:9.2f}{summary[name][1]:10,.0f}")
    speed = summary["evidently"][0] / summary["driftloop"][0]
    memory = summary["evidently"][1] / max(summary["driftloop"][1], 1.0)
    print(f"driftloop is {speed:.1f}x faster than Evidently and uses {1 / memory:.2f}x its peak memory")
    print(f"per-column verdicts agree on {len(agree)}/{len(ours)} columns ({len(agree) / len(ours):.0%})")
    differ = sorted(set(ours) - set(agree))
    if differ:
        print("differ:", ", ".join(f"{c} (driftloop {ours[c]}, Evidently {theirs.get(c)})" for c in differ))
    print("drifted by driftloop:", sorted(c for c, v in ours.items() if v))


if __name__ == "__main__":
    main()
