"""The three strategies a replay compares, scored on the same days against the same truth.

- ``driftloop``: the loop as it ran, each day scored by the champion of that day's tick;
- ``static``: the first model, never retrained;
- ``daily``: a model retrained at the end of every day on what was labelled by then (the
  same training window and settings as the loop), deployed the next day without gates.

Ground truth is the latest label of each row (:mod:`driftloop.truth`), read once all the
replayed days' labels have arrived.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

import polars as pl

from driftloop.data.clock import day_span, local_days
from driftloop.errors import ReplayError, TrainingError
from driftloop.lake import PredictionSource, Table
from driftloop.loop.steps import training_since
from driftloop.model.data import training_rows
from driftloop.model.metrics import METRICS, target_metrics
from driftloop.monitor.logged import key_columns
from driftloop.monitor.performance import ACTUAL
from driftloop.predict import event_clock
from driftloop.project import Project
from driftloop.registry import Registry
from driftloop.replay.run import LoopRun
from driftloop.runtime.targets import prediction_columns

STRATEGIES = ("driftloop", "static", "daily")
DAY = "day"


@dataclass
class StrategyResult:
    """How one strategy did over the replayed days."""

    name: str
    per_day: pl.DataFrame  # day, target, rows, mae, rmse, smape, r2
    overall: dict[str, dict[str, float]]  # target -> metric -> value
    trainings: int
    training_seconds: float
    retrains: int = 0
    promotions: int = 0
    rejections: int = 0
    drift_days: int = 0
    notes: list[str] = field(default_factory=list)


def compare_strategies(
    project: Project, run: LoopRun, *, daily: bool = True, on_daily: Callable[[date], None] | None = None
) -> list[StrategyResult]:
    """Score the loop, the static model and (with ``daily``) daily retraining on the replayed days."""
    truth = _truth(project, run)
    results = [_loop_result(project, run, truth), _static_result(project, run, truth)]
    if daily:
        results.append(_daily_result(project, run, truth, on_daily))
    return results


def _truth(project: Project, run: LoopRun) -> pl.DataFrame:
    since, until = run.span(project.contract.timezone)
    try:
        rows, _ = training_rows(project.lake, project.feature_set(), since=since, until=until)
    except TrainingError as exc:
        raise ReplayError(f"no ground truth for the replayed days {since:%Y-%m-%d} to {until:%Y-%m-%d}: {exc}") from exc
    return rows


def _loop_result(project: Project, run: LoopRun, truth: pl.DataFrame) -> StrategyResult:
    """Each day as the loop served it: the predictions of the version that scored it on its own tick."""
    contract = project.contract
    scored_by = pl.DataFrame(
        {DAY: [r.day for r in run.records], "model_version": [r.scored_by for r in run.records]},
        schema={DAY: pl.Date, "model_version": pl.String},
    )
    since, until = run.span(contract.timezone)
    served = (
        project.lake.read(Table.PREDICTIONS, since=since, until=until, time_column="event_time")
        .filter(pl.col("source") == PredictionSource.BATCH)
        .with_columns(local_days(pl.col("event_time"), contract.timezone).alias(DAY))
        .join(scored_by, on=[DAY, "model_version"], how="semi")
    )
    outputs = [c for columns in prediction_columns(contract).values() for c in columns]
    predicted = served.select(*key_columns(contract), *outputs)
    records = run.records
    return StrategyResult(
        "driftloop",
        *_score(predicted, truth, project),
        trainings=1 + sum(r.retrained for r in records),
        training_seconds=run.bootstrap_training_seconds + sum(r.training_seconds for r in records),
        retrains=sum(r.retrained for r in records),
        promotions=sum(r.promoted for r in records),
        rejections=sum(r.rejected for r in records),
        drift_days=sum(r.verdict is not None and r.verdict.signals_retrain for r in records),
        notes=[f"{r.day}: scored by no model ({r.retrain_reason})" for r in records if r.scored_by is None],
    )


def _static_result(project: Project, run: LoopRun, truth: pl.DataFrame) -> StrategyResult:
    package = Registry(project).load(run.first_version)
    predicted = truth.select(*project.contract.key).hstack(package.predict_valid(truth))
    return StrategyResult(
        "static", *_score(predicted, truth, project), trainings=1, training_seconds=run.bootstrap_training_seconds
    )


def _daily_result(
    project: Project, run: LoopRun, truth: pl.DataFrame, on_daily: Callable[[date], None] | None
) -> StrategyResult:
    """Retrain after every day on what was labelled by its end; the model scores the next day."""
    from driftloop.model.trainer import train_project  # torch loads only when a baseline trains

    clock = event_clock(project)
    package = Registry(project).load(run.first_version)  # the first day is scored by the first model
    seconds, trainings, parts = run.bootstrap_training_seconds, 1, []
    for i, day in enumerate(run.replay_days):
        rows = truth.filter(clock.days() == day)
        if rows.height:
            parts.append(rows.select(*project.contract.key).hstack(package.predict_valid(rows)))
        if i + 1 == len(run.replay_days):
            break
        end = day_span(day, clock.zone)[1]  # rows labelled by then are those at least the delay older
        since = training_since(project, day)
        started = time.perf_counter()
        try:
            package = train_project(project, since=since, until=end - run.label_delay).package
        except TrainingError:
            pass  # too little labelled data in the window yet: yesterday's model serves another day
        else:
            trainings += 1
        seconds += time.perf_counter() - started
        if on_daily:
            on_daily(day)
    predicted = pl.concat(parts) if parts else truth.select(*project.contract.key, *project.contract.targets).head(0)
    return StrategyResult(
        "daily",
        *_score(predicted, truth, project),
        trainings=trainings,
        training_seconds=seconds,
        retrains=trainings - 1,
        promotions=trainings - 1,
    )


def _score(
    predicted: pl.DataFrame, truth: pl.DataFrame, project: Project
) -> tuple[pl.DataFrame, dict[str, dict[str, float]]]:
    """Per-day and overall metrics of ``predicted`` (each target's prediction columns) against
    ``truth``, per target."""
    contract = project.contract
    actual = truth.select(*contract.key, *(pl.col(t).alias(ACTUAL + t) for t in contract.targets))
    pairs = actual.join(predicted, on=contract.key, how="inner").with_columns(event_clock(project).days().alias(DAY))
    per_day, overall = [], {}
    for target, outputs in prediction_columns(contract).items():
        classes = contract.columns[target].classes
        both = pairs.select(DAY, ACTUAL + target, *outputs).drop_nulls()
        overall[target] = target_metrics(both.get_column(ACTUAL + target), both.select(outputs), target, classes)
        for (day,), group in both.group_by(DAY, maintain_order=True):
            values = target_metrics(group.get_column(ACTUAL + target), group.select(outputs), target, classes)
            per_day.append({DAY: day, "target": target, "rows": group.height, **values})
    schema = {DAY: pl.Date, "target": pl.String, "rows": pl.Int64, **dict.fromkeys(METRICS, pl.Float64)}
    return pl.DataFrame(per_day, schema=schema).sort(DAY, "target"), overall
