"""Ingest benchmark: 1M rows x 25 mixed columns, ~1% bad rows, validated and written to Delta.

Prints, each the median of --repeats runs in a fresh process (peak memory is that process's
own, above what it held once the frame was loaded):
  - driftloop end to end: check + quarantine + raw + batch log, from a typed frame and from CSV;
  - driftloop's check alone against pandera checking the same rules on the same frame (ratio);
  - the ceiling: bare ``write_deltalake`` of the same rows, no checks, no partitioning.

    python benchmarks/bench_ingest.py [--rows 1000000] [--repeats 3]
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
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

FLOATS = [f"f{i}" for i in range(15)]
INTS = [f"i{i}" for i in range(4)]
CATEGORIES = {"colour": ["red", "green", "blue"], "site": ["a", "b", "c", "d"], "mode": ["on", "off"]}


def make_frame(rows: int, seed: int = 0) -> pl.DataFrame:
    """Typed rows; about 1% are bad: out of range, null where not allowed, unknown category, repeated id."""
    rng = np.random.default_rng(seed)
    start = datetime(2024, 1, 1)
    data: dict[str, object] = {
        "id": [f"e{i}" for i in range(rows)],
        "ts": pl.datetime_range(start, start + timedelta(minutes=rows - 1), "1m", eager=True),
        "flag": rng.random(rows) < 0.5,
    }
    for name in FLOATS:
        data[name] = rng.normal(50, 10, rows).clip(0, 100)
    for name in INTS:
        data[name] = rng.integers(0, 1000, rows)
    for name, values in CATEGORIES.items():
        data[name] = rng.choice(values, rows)
    frame = pl.DataFrame(data)
    bad = rng.choice(rows, size=rows // 100, replace=False)
    quarter = len(bad) // 4
    out_of_range, nulls, unknown, repeated = (bad[i * quarter : (i + 1) * quarter] for i in range(4))
    index = pl.int_range(pl.len())
    return frame.with_columns(
        pl.when(index.is_in(out_of_range)).then(500.0).otherwise(pl.col("f0")).alias("f0"),
        pl.when(index.is_in(nulls)).then(None).otherwise(pl.col("f1")).alias("f1"),
        pl.when(index.is_in(unknown)).then(pl.lit("purple")).otherwise(pl.col("colour")).alias("colour"),
        pl.when(index.is_in(repeated)).then(pl.lit("e0")).otherwise(pl.col("id")).alias("id"),
    )


def contract_dict() -> dict[str, object]:
    columns: dict[str, dict[str, object]] = {
        "id": {"type": "string", "role": "id"},
        "ts": {"type": "datetime", "role": "event_time"},
        "flag": {"type": "bool"},
    }
    columns.update({n: {"type": "float", "nullable": False, "min": 0, "max": 100} for n in FLOATS})
    columns.update({n: {"type": "int", "min": 0, "max": 999} for n in INTS})
    columns.update({n: {"type": "string", "allowed": v} for n, v in CATEGORIES.items()})
    return {"columns": columns}


def run_driftloop(frame: pl.DataFrame, source: str, workdir: Path) -> dict[str, float]:
    from driftloop.data.contract import Contract
    from driftloop.data.sources import from_frame, read_file
    from driftloop.ingest import ingest_batch
    from driftloop.lake import Lake

    contract = Contract.model_validate(contract_dict())
    started = time.perf_counter()
    batch = read_file(Path(source)) if source.endswith(".csv") else from_frame(frame, batch_id="bench")
    summary = ingest_batch(Lake(workdir / "lake"), contract, batch)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "raw": summary.rows_raw, "quarantined": summary.rows_quarantined}


def run_check(frame: pl.DataFrame) -> dict[str, float]:
    from driftloop.data.contract import Contract
    from driftloop.data.validate import check_batch

    contract = Contract.model_validate(contract_dict())
    started = time.perf_counter()
    result = check_batch(frame, contract)
    return {"seconds": time.perf_counter() - started, "quarantined": result.rejected.height}


def run_pandera(frame: pl.DataFrame) -> dict[str, float]:
    import pandera.polars as pa
    from pandera.errors import SchemaErrors

    columns = {
        "id": pa.Column(pl.String, unique=True, nullable=False),
        "ts": pa.Column(pl.Datetime("us"), nullable=False),
        "flag": pa.Column(pl.Boolean, nullable=True),
    }
    columns.update({n: pa.Column(pl.Float64, pa.Check.in_range(0, 100), nullable=False) for n in FLOATS})
    columns.update({n: pa.Column(pl.Int64, pa.Check.in_range(0, 999), nullable=True) for n in INTS})
    columns.update({n: pa.Column(pl.String, pa.Check.isin(v), nullable=True) for n, v in CATEGORIES.items()})
    schema = pa.DataFrameSchema(columns)
    started = time.perf_counter()
    failures = 0
    try:
        schema.validate(frame, lazy=True)  # lazy: collect every failure, as one must to quarantine rows
    except SchemaErrors as exc:
        failures = len(exc.failure_cases)
    return {"seconds": time.perf_counter() - started, "failures": failures}


def run_pandera_pandas(frame: pl.DataFrame) -> dict[str, float]:
    import pandera.pandas as pa
    from pandera.errors import SchemaErrors

    data = frame.to_pandas()  # conversion not timed: a pandas user has the frame already
    columns = {
        "id": pa.Column(str, unique=True, nullable=False),
        "ts": pa.Column("datetime64[us]", nullable=False),
        "flag": pa.Column(bool, nullable=True),
    }
    columns.update({n: pa.Column(float, pa.Check.in_range(0, 100), nullable=False) for n in FLOATS})
    columns.update({n: pa.Column(int, pa.Check.in_range(0, 999), nullable=True) for n in INTS})
    columns.update({n: pa.Column(str, pa.Check.isin(v), nullable=True) for n, v in CATEGORIES.items()})
    schema = pa.DataFrameSchema(columns)
    started = time.perf_counter()
    failures = 0
    try:
        schema.validate(data, lazy=True)
    except SchemaErrors as exc:
        failures = len(exc.failure_cases)
    return {"seconds": time.perf_counter() - started, "failures": failures}


def run_ceiling(frame: pl.DataFrame, workdir: Path) -> dict[str, float]:
    from deltalake import write_deltalake

    started = time.perf_counter()
    write_deltalake(str(workdir / "bare"), frame.to_arrow())
    return {"seconds": time.perf_counter() - started}


def child(kind: str, data: str) -> None:
    """One measurement in this fresh process; prints JSON with seconds and peak memory above baseline."""
    import deltalake  # noqa: F401  (imports are not what is measured)
    import pandera.pandas
    import pandera.polars  # noqa: F401

    import driftloop.ingest  # noqa: F401

    frame = pl.read_parquet(data)
    baseline = _rss_mib()
    with tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder)
        if kind == "driftloop":
            result = run_driftloop(frame, data, workdir)
        elif kind == "driftloop-csv":
            result = run_driftloop(frame, str(Path(data).with_suffix(".csv")), workdir)
        elif kind == "check":
            result = run_check(frame)
        elif kind == "pandera":
            result = run_pandera(frame)
        elif kind == "pandera-pandas":
            result = run_pandera_pandas(frame)
        else:
            result = run_ceiling(frame, workdir)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({**result, "extra_mib": max(peak - baseline, 0.0)}))


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def measure(kind: str, data: Path, repeats: int) -> dict[str, float]:
    runs = []
    for _ in range(repeats):
        done = subprocess.run(
            [sys.executable, __file__, "--child", kind, "--data", str(data)],
            capture_output=True,
            text=True,
            check=True,
            timeout=900,
        )
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    merged = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
    merged["max_extra_mib"] = max(r["extra_mib"] for r in runs)
    return merged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child")
    parser.add_argument("--data")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.data)
        return
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder) / "frame.parquet"
        frame = make_frame(args.rows)
        frame.write_parquet(data)
        frame.write_csv(data.with_suffix(".csv"))
        size_mib = frame.estimated_size("mb")
        print(f"{args.rows:,} rows x {frame.width} columns, {size_mib:,.0f} MiB in memory, median of {args.repeats}")
        results = {
            kind: measure(kind, data, args.repeats)
            for kind in ("driftloop", "driftloop-csv", "check", "pandera", "pandera-pandas", "ceiling")
        }
    rows = args.rows
    labels = {
        "driftloop": "driftloop ingest (typed frame)",
        "driftloop-csv": "driftloop ingest (CSV file)",
        "check": "driftloop check only",
        "pandera": "pandera.polars, same rules",
        "pandera-pandas": "pandera on pandas, same rules",
        "ceiling": "ceiling: bare write_deltalake",
    }
    print(f"{'':34}{'seconds':>9}{'rows/s':>12}{'peak MiB':>10}{'x frame':>9}")
    for kind, label in labels.items():
        r = results[kind]
        memory = r["max_extra_mib"]
        print(f"{label:34}{r['seconds']:9.2f}{rows / r['seconds']:12,.0f}{memory:10,.0f}{memory / size_mib:9.2f}")
    ingest, check, ceiling = results["driftloop"], results["check"], results["ceiling"]
    print(f"rows to raw / quarantine: {ingest['raw']:,.0f} / {ingest['quarantined']:,.0f}")
    for kind in ("pandera", "pandera-pandas"):
        print(f"check vs {labels[kind]}: {results[kind]['seconds'] / check['seconds']:.1f}x faster")
        print(f"whole ingest vs {labels[kind]} (check only): {results[kind]['seconds'] / ingest['seconds']:.2f}x")
    print(f"whole ingest vs ceiling: {ceiling['seconds'] / ingest['seconds']:.0%} of bare write_deltalake's speed")


if __name__ == "__main__":
    main()
