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
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

import narwhals as nw
import polars as pl

from driftloop.data.contract import Contract
from driftloop.engine import Engine, PolarsEngine
from driftloop.errors import MonitorError
from driftloop.lake import TABLES, PredictionSource, Table, Where
from driftloop.monitor import Stream
from driftloop.monitor.drift import DriftReport, compare
from driftloop.monitor.estimates import TargetEstimate, estimate_window
from driftloop.monitor.logged import logged_inputs
from driftloop.monitor.performance import TargetPerformance, actuals, evaluate, labelled_pairs
from driftloop.monitor.thresholds import CALIBRATION
from driftloop.monitor.traffic import ShadowComparison, compare_shadow
from driftloop.monitor.verdict import Verdict, decide
from driftloop.profiles import Profile
from driftloop.project import Project
from driftloop.registry import Registry
from driftloop.runtime.package import ModelPackage

SECTIONS = ("input", "prediction", "embedding", "performance", "estimate", "verdict")
# Rows of a window the estimates are computed on, at most: they are means over rows, which a
# uniform sample this large pins down far inside their interval (its rows' sampling term then
# counts this many rows), and on Spark these rows come to this process.
ESTIMATE_ROWS = 200_000
HASH_SPAN = 2**20
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
    """Monitor ``since <= event time < until`` of one stream and write the results to ``monitoring``.

    The batch stream runs on the project's engine: on Spark the window's rows stay there, and
    what comes to this process is the profiles, the labelled rows' predictions and truth, and
    at most ``ESTIMATE_ROWS`` rows for the estimates. The online stream, what servers logged,
    is read here.
    """
    contract, registry = project.contract, Registry(project)
    if contract.clock is None:
        raise MonitorError("monitoring windows are by event time; the contract has no event_time column")
    if source not in set(Stream):
        raise MonitorError(f"no stream {source!r} to monitor; choose one of {[s.value for s in Stream]}")
    window = _read(project, registry, Stream(source), since, until, version)  # a caller may pass the stream's name
    engine, package = window.engine, registry.load(window.version)
    inputs, reference, current = input_drift(package, window.rows, project, engine)
    predictions = prediction_drift(package, window.scored, project, engine) if window.scored is not None else None
    truth = actuals(contract, window.keyed_targets, window.labels)
    test_metrics = package.metrics.get("expected") or package.metrics.get("network", {}).get("test", {})
    promote = project.settings.promote
    performance = (
        evaluate(labelled_pairs(engine, window.scored, truth, contract), contract, test_metrics, promote)
        if window.scored is not None
        else []
    )
    sample = estimate_sample(engine, window.rows, window.count, contract)
    estimates = estimate_window(package, sample, test_metrics, promote, rows_in_window=window.count)
    verdict = decide(inputs, predictions, performance, project.settings.monitor, estimates)
    shadow = (
        compare_shadow(window.scored, window.shadow, truth, contract)
        if window.scored is not None and window.shadow is not None
        else []
    )
    report = WindowReport(
        since, until, window.version, window.count, inputs, predictions, performance, verdict, reference, current,
        window.source, shadow, estimates,
    )  # fmt: skip
    write_report(project, registry.name, report)
    return report


@dataclass(frozen=True)
class _Window:
    """One stream's window as read, in frames of the engine that read it."""

    source: Stream
    engine: Engine
    version: str  # the model monitored
    rows: Any  # the inputs monitored: feature rows (batch) or logged requests (online)
    count: int
    scored: Any | None  # that version's predictions of the stream; None when there are none
    keyed_targets: Any  # the rows' keys and the targets they came with, for the truth
    labels: Any | None
    shadow: Any | None  # online: the challenger's shadow predictions


def _read(
    project: Project, registry: Registry, source: Stream, since: datetime, until: datetime, version: str | None
) -> _Window:
    """The window of ``source``: batch on the project's engine, online (what servers logged,
    bounded by what they answered) in this process."""
    contract, lake = project.contract, project.lake
    assert contract.clock is not None  # monitor_window checked it
    clock, (low, high) = contract.clock.column, contract.clock.bounds(since, until)
    engine = project.engine if source is Stream.BATCH else PolarsEngine()
    every = _predictions(project, engine, since, until)  # read once: versions, outputs, shadows
    in_stream = _where(every, source=source.value)
    chosen = version or _version_in(engine, in_stream, registry) or registry.champion()
    if chosen is None:
        raise MonitorError("no model to monitor: nothing scored this window and there is no champion")
    scored = _where(in_stream, model_version=chosen)
    if scored is not None and not engine.count(scored):
        scored = None
    features = engine.window(lake, Table.FEATURES, low, high, clock, None) if lake.exists(Table.FEATURES) else None
    labels = engine.window(lake, Table.LABELS, low, high, clock, None) if lake.exists(Table.LABELS) else None
    if source is Stream.BATCH:
        rows, keyed, shadow = features, features, None
    else:
        rows = logged_inputs(scored, contract) if scored is not None else None
        keyed = _with_known_targets(rows, features, contract) if rows is not None else None
        shadow = _where(every, source=PredictionSource.SHADOW.value)
    count = engine.count(rows) if rows is not None else 0
    if not count:
        what = "feature rows" if source is Stream.BATCH else f"online predictions of version {chosen}"
        raise MonitorError(f"no {what} between {since} and {until}; nothing to monitor")
    return _Window(source, engine, chosen, rows, count, scored, keyed, labels, shadow)


def estimate_sample(engine: Engine, rows: Any, count: int, contract: Contract) -> pl.DataFrame:
    """The window's rows the estimates are computed on, in this process: all of them up to
    ``ESTIMATE_ROWS``, beyond that a uniform sample of about that many, chosen by a hash of each
    row's key (the same rows on every engine and every rerun)."""
    if count <= ESTIMATE_ROWS:
        return engine.to_polars(rows)
    chosen = partial(_hashed_share, share=ESTIMATE_ROWS / count, key=contract.key)
    return engine.to_polars(engine.map_batches(rows, chosen))


def _hashed_share(rows: pl.DataFrame, share: float, key: list[str]) -> pl.DataFrame:
    columns = key or rows.columns
    hashed = pl.struct(columns).hash(seed=0) % HASH_SPAN
    return rows.filter(hashed < int(share * HASH_SPAN))


def _where(frame: Any | None, **equal: str) -> Any | None:
    """The rows of ``frame`` (any engine's) whose columns equal the given values."""
    if frame is None:
        return None
    return nw.from_native(frame).filter(*(nw.col(c) == v for c, v in equal.items())).to_native()


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


def input_drift(
    package: ModelPackage, rows: Any, project: Project, engine: Engine | None = None
) -> tuple[DriftReport, Profile, Profile]:
    """Drift of ``rows``' inputs (a frame of ``engine``, the project's by default) against the
    model's training profile (``[monitor]`` tests and thresholds), with the reference and the
    window's profile on its bins."""
    reference = _reference(package, "inputs")
    numeric, categorical = package.features.numeric_inputs, package.features.categorical_inputs
    engine = engine or project.engine
    current = engine.profile(engine.add_features(rows, package.features), numeric, categorical, like=reference)
    inputs_only = Profile(reference.rows, {n: p for n, p in reference.columns.items() if n not in package.targets})
    calibration = package.reference.get(CALIBRATION, {}).get("inputs")
    importance = package.reference.get("importance")
    return compare(inputs_only, current, project.settings.monitor, calibration, importance), inputs_only, current


def prediction_drift(package: ModelPackage, scored: Any, project: Project, engine: Engine | None = None) -> DriftReport:
    """Drift of what the model predicted (``scored``, a frame of ``engine``: its prediction
    columns): the numbers, each label's probabilities, and the balance of the predicted classes."""
    reference = _reference(package, "predictions")
    heads = package.heads
    labels = list(heads.classes)
    numbers = [c for c in heads.output_columns if c not in heads.classes]
    current = (engine or project.engine).profile(scored, numbers, labels, like=reference)
    calibration = package.reference.get(CALIBRATION, {}).get("predictions")
    return compare(reference, current, project.settings.monitor, calibration)


def _predictions(project: Project, engine: Engine, since: datetime, until: datetime) -> Any | None:
    """The window's predictions of every source (a frame of ``engine``; None before any); the
    caller keeps one stream (batch, or online with its shadow), as the same rows scored in batch
    and online would count twice."""
    if not project.lake.exists(Table.PREDICTIONS):
        return None
    return engine.window(project.lake, Table.PREDICTIONS, since, until, "event_time", None)


def _version_in(engine: Engine, scored: Any | None, registry: Registry) -> str | None:
    """The version whose predictions cover the window: the champion if it is among them, else the newest."""
    if scored is None:
        return None
    found = engine.to_polars(nw.from_native(scored).select("model_version").unique().to_native())
    versions = found.get_column("model_version").to_list()
    if not versions:
        return None
    champion = registry.champion()
    if champion in versions:
        return champion
    return str(max(versions, key=int))


def write_report(project: Project, model: str, report: WindowReport, extra: Sequence[dict[str, object]] = ()) -> None:
    """Write ``report``'s rows to ``monitoring`` (``extra`` ones too: section, column, statistic,
    value, threshold, flagged, detail), replacing the stream's rows of the same window and model."""
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
    rows += [{**row, "section": section_of(report.source, str(row["section"]))} for row in extra]
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
