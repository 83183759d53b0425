"""Monitor one window: drift of inputs and predictions against the model's training profile,
performance where labels exist and its estimate for every row, labelled or not, a verdict,
and rows in the ``monitoring`` table.

Two streams are monitored apart: ``batch`` (the features table and the batch predictions of
the window) and ``online`` (the requests the server answered: their logged inputs and
outputs, and the challenger's shadow outputs when shadow mode is on). The model is the one
whose predictions cover the window (the champion's when several did). Rerunning a window
replaces its monitoring rows of the same stream.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime

import polars as pl

from driftloop.data.contract import Contract
from driftloop.errors import MonitorError
from driftloop.lake import TABLES, PredictionSource, Table, Where
from driftloop.monitor import Stream
from driftloop.monitor.drift import DriftReport, compare
from driftloop.monitor.estimates import TargetEstimate, estimate_window
from driftloop.monitor.performance import TargetPerformance, actuals, evaluate
from driftloop.monitor.thresholds import CALIBRATION
from driftloop.monitor.traffic import ShadowComparison, compare_shadow, logged_inputs
from driftloop.monitor.verdict import Verdict, decide
from driftloop.profiles import Profile
from driftloop.project import Project
from driftloop.registry import Registry
from driftloop.runtime.package import ModelPackage

SECTIONS = ("input", "prediction", "performance", "estimate", "verdict")
SHADOW = "shadow"  # the section of a shadow's comparison with the champion (online only)


def section_of(source: Stream, part: str) -> str:
    """The ``monitoring`` section of one part of a stream's results: batch keeps the plain names
    (as before there were two streams), online ones are prefixed; shadow is online's alone."""
    return part if source is Stream.BATCH or part == SHADOW else f"{source} {part}"


@dataclass(frozen=True)
class WindowReport:
    """Everything one monitoring run found."""

    since: datetime
    until: datetime
    model_version: str
    rows: int
    inputs: DriftReport
    predictions: DriftReport | None
    performance: list[TargetPerformance]
    verdict: Verdict
    reference: Profile  # the model's training inputs
    current: Profile  # the window's inputs, on the reference's bins
    source: Stream = Stream.BATCH
    shadow: list[ShadowComparison] = field(default_factory=list)  # online, in shadow mode
    estimates: list[TargetEstimate] = field(default_factory=list)  # performance before the labels


def monitor_window(
    project: Project, since: datetime, until: datetime, *, version: str | None = None, source: Stream = Stream.BATCH
) -> WindowReport:
    """Monitor ``since <= event time < until`` of one stream and write the results to ``monitoring``."""
    contract, lake, registry = project.contract, project.lake, Registry(project)
    events = contract.clock
    if events is None:
        raise MonitorError("monitoring windows are by event time; the contract has no event_time column")
    clock, (low, high) = events.column, events.bounds(since, until)
    if source not in set(Stream):
        raise MonitorError(f"no stream {source!r} to monitor; choose one of {[s.value for s in Stream]}")
    source = Stream(source)  # a caller may pass the stream's name as text
    # Read once: the window's predictions name the version and hold the outputs (and the shadow's).
    every = _predictions(project, since, until)
    in_window = every.filter(pl.col("source") == source) if every.height else every
    chosen = version or _version_in(in_window, registry) or registry.champion()
    if chosen is None:
        raise MonitorError("no model to monitor: nothing scored this window and there is no champion")
    package = registry.load(chosen)
    scored = in_window.filter(pl.col("model_version") == chosen) if in_window.height else in_window
    window = (
        lake.read(Table.FEATURES, since=low, until=high, time_column=clock) if lake.exists(Table.FEATURES) else None
    )
    rows = window if source is Stream.BATCH else logged_inputs(scored, contract) if scored.height else None
    if rows is None or rows.is_empty():
        what = "feature rows" if source is Stream.BATCH else f"online predictions of version {chosen}"
        raise MonitorError(f"no {what} between {since} and {until}; nothing to monitor")
    inputs, reference, current = input_drift(package, rows, project)
    predictions = prediction_drift(package, scored, project) if scored.height else None
    labels = lake.read(Table.LABELS, since=low, until=high, time_column=clock) if lake.exists(Table.LABELS) else None
    truth = actuals(contract, _with_known_targets(rows, window, contract) if source is Stream.ONLINE else rows, labels)
    test_metrics = package.metrics.get("expected") or package.metrics.get("network", {}).get("test", {})
    promote = project.settings.promote
    performance = evaluate(scored, truth, contract, test_metrics, promote) if scored.height else []
    estimates = estimate_window(package, rows, test_metrics, promote)
    verdict = decide(inputs, predictions, performance, project.settings.monitor, estimates)
    shadow = (
        compare_shadow(scored, every.filter(pl.col("source") == PredictionSource.SHADOW), truth, contract)
        if source is Stream.ONLINE
        else []
    )
    report = WindowReport(
        since, until, chosen, rows.height, inputs, predictions, performance, verdict, reference, current, source,
        shadow, estimates,
    )  # fmt: skip
    _write(project, registry.name, report)
    return report


def _with_known_targets(rows: pl.DataFrame, window: pl.DataFrame | None, contract: Contract) -> pl.DataFrame:
    """The keys of online rows (one row per key: a row may be requested many times), with the
    targets raw data of the same keys has carried since; labels come on top of these."""
    keys = rows.select(*contract.key, *contract.targets).unique(contract.key, keep="first")
    if window is None or not contract.key:
        return keys
    known = window.select(*contract.key, *contract.targets).unique(contract.key, keep="last")
    return keys.drop(contract.targets).join(known, on=contract.key, how="left")


def _reference(package: ModelPackage, part: str) -> Profile:
    try:
        return Profile.from_dict(package.reference[part])
    except (KeyError, ValueError) as exc:
        raise MonitorError(f"the model has no usable reference profile of its {part}: {exc}") from exc


def input_drift(package: ModelPackage, rows: pl.DataFrame, project: Project) -> tuple[DriftReport, Profile, Profile]:
    """Drift of ``rows``' inputs against the model's training profile (``[monitor]`` tests and
    thresholds), with the reference and the window's profile on its bins."""
    reference = _reference(package, "inputs")
    numeric, categorical = package.features.numeric_inputs, package.features.categorical_inputs
    engine = project.engine
    current = engine.profile(engine.add_features(rows, package.features), numeric, categorical, like=reference)
    inputs_only = Profile(reference.rows, {n: p for n, p in reference.columns.items() if n not in package.targets})
    calibration = package.reference.get(CALIBRATION, {}).get("inputs")
    importance = package.reference.get("importance")
    return compare(inputs_only, current, project.settings.monitor, calibration, importance), inputs_only, current


def prediction_drift(package: ModelPackage, scored: pl.DataFrame, project: Project) -> DriftReport:
    """Drift of what the model predicted (``scored``: its prediction columns): the numbers, each
    label's probabilities, and the balance of the predicted classes."""
    reference = _reference(package, "predictions")
    heads = package.heads
    labels = list(heads.classes)
    numbers = [c for c in heads.output_columns if c not in heads.classes]
    current = project.engine.profile(scored, numbers, labels, like=reference)
    calibration = package.reference.get(CALIBRATION, {}).get("predictions")
    return compare(reference, current, project.settings.monitor, calibration)


def _predictions(project: Project, since: datetime, until: datetime) -> pl.DataFrame:
    """The window's predictions of every source; the caller keeps one stream (batch, or online
    with its shadow), as the same rows scored in batch and online would count twice."""
    if not project.lake.exists(Table.PREDICTIONS):
        return pl.DataFrame()
    return project.lake.read(Table.PREDICTIONS, since=since, until=until, time_column="event_time")


def _version_in(scored: pl.DataFrame, registry: Registry) -> str | None:
    """The version whose predictions cover the window: the champion if it is among them, else the newest."""
    if scored.is_empty():
        return None
    versions = scored.get_column("model_version").unique().to_list()
    champion = registry.champion()
    if champion in versions:
        return champion
    return str(max(versions, key=int))


def _write(project: Project, model: str, report: WindowReport) -> None:
    now = datetime.now(UTC)
    monitor = project.settings.monitor
    rows: list[dict[str, object]] = []

    def add(
        section: str,
        column: str | None,
        statistic: str,
        value: float,
        threshold: float | None,
        flagged: bool,
        detail: str = "",
    ) -> None:
        rows.append({"section": section_of(report.source, section), "column": column, "statistic": statistic,
                     "value": value, "threshold": threshold, "flagged": flagged, "detail": detail})  # fmt: skip

    for section, drift in (("input", report.inputs), ("prediction", report.predictions)):
        for column in drift.columns if drift else []:
            result = column.result
            add(section, column.column, result.test, result.statistic, result.threshold, column.drifted)
            for name, value in column.extra.items():
                add(section, column.column, name, value, None, False)
            add(section, column.column, "null_rate", column.null_rate_current, None, False)
            if column.stuck_at is not None:
                add(section, column.column, "stuck_at", column.stuck_at, None, True)
    for target in report.performance:
        for name, value in target.metrics.items():
            add("performance", target.target, name, value, None, False)
        add("performance", target.target, "residual_mean", target.residual_mean, None, False)
        add("performance", target.target, "residual_std", target.residual_std, None, False)
        add("performance", target.target, "worsening", target.worsening, None, False)
    for estimate in report.estimates:
        for name, interval in estimate.metrics.items():
            add("estimate", estimate.target, name, interval.value, None, False)
            add("estimate", estimate.target, f"{name}_low", interval.low, None, False)
            add("estimate", estimate.target, f"{name}_high", interval.high, None, False)
        # Flagged as the verdict reads it: even the interval's better end is worse than the limit.
        add("estimate", estimate.target, "sure_worsening", estimate.sure_worsening, monitor.degradation,
            estimate.degraded(monitor), estimate.metric)  # fmt: skip
        add("estimate", estimate.target, "worsening", estimate.worsening, None, False, estimate.metric)
        add("estimate", estimate.target, "rows", float(estimate.rows), None, False)
    for pair in report.shadow:
        detail = f"challenger version {pair.challenger_version}"
        add(SHADOW, pair.target, "mean_abs_difference", pair.mean_abs_difference, None, False, detail)
        add(SHADOW, pair.target, "labelled_rows", float(pair.labelled_rows), None, False, detail)
        for name, value in pair.champion.items():
            add(SHADOW, pair.target, f"champion_{name}", value, None, False, detail)
        for name, value in pair.challenger.items():
            add(SHADOW, pair.target, f"challenger_{name}", value, None, False, detail)
    add("verdict", None, report.verdict.level, float(len(report.verdict.reasons)), None,
        report.verdict.retrain_signal, json.dumps(report.verdict.reasons))  # fmt: skip
    frame = (
        pl.DataFrame(rows)
        .with_columns(
            pl.lit(report.since).cast(pl.Datetime("us")).alias("window_start"),
            pl.lit(report.until).cast(pl.Datetime("us")).alias("window_end"),
            pl.lit(now).cast(pl.Datetime("us", "UTC")).alias("computed_at"),
            pl.lit(model).alias("model_name"),
            pl.lit(report.model_version).alias("model_version"),
        )
        .select([pl.col(c).cast(t) for c, t in TABLES[Table.MONITORING].columns.items()])
    )
    parts = SECTIONS if report.source is Stream.BATCH else (*SECTIONS, SHADOW)
    sections = [section_of(report.source, part) for part in parts]
    where = Where(
        equal={
            "model_name": model,
            "model_version": report.model_version,
            "window_start": report.since,
            "window_end": report.until,
        },
        one_of={"section": sections},  # the other stream's rows of the same window stay
    )
    project.lake.replace(Table.MONITORING, frame, where=where)
