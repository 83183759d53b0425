"""One tick of the loop, for one day: what a daily job runs.

inbox -> ingest (data, then labels from ``inbox/labels``) -> features -> compact tables whose
files have piled up -> score the last
``monitor_days`` (ending with the day) with the champion -> monitor them -> retrain policy ->
(train on the configured window -> gates -> promote or reject) -> events and alerts.

Every step is idempotent (a file already ingested is skipped, features are incremental,
predictions and monitoring rows of a window are replaced), so a tick killed anywhere and run
again ends in the same state. Time is the tick's own day: the policy's cool-downs and every
decision recorded (retrain, gates, promotion) carry it, so a replay of history reads in
simulated time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import polars as pl

from driftloop.data.clock import day_span, window_start
from driftloop.data.sources import READERS
from driftloop.errors import LakeError, MonitorError, PredictError, TrainingError
from driftloop.feature_table import FeatureRun, materialize
from driftloop.ingest import BatchStatus, IngestSummary, ingest
from driftloop.lake import TABLES, Compaction, Table
from driftloop.loop.alerts import alert
from driftloop.loop.policy import RetrainDecision, TickFacts
from driftloop.model.data import training_rows
from driftloop.monitor.window import WindowReport, monitor_window
from driftloop.predict import PredictRun, predict_window
from driftloop.project import Project
from driftloop.registry import Decision, DecisionKind, Registry
from driftloop.registry.decisions import DECISION_TAG

LABELS_FOLDER = "labels"
# Tag on versions the loop trained (its value: the tick's day), so an interrupted tick's
# version is still judged by the next one.
LOOP_TAG = "trained_by_loop"
# The step of a tick that trains a model (a replay times it); "promotion gates" follows it.
TRAINING_STEP = "training"
GATES_STEP = "promotion gates"


@dataclass
class TickReport:
    """What one tick did, step by step."""

    day: date
    ingested: list[IngestSummary] = field(default_factory=list)
    labels: list[IngestSummary] = field(default_factory=list)
    features: FeatureRun | None = None
    compacted: list[Compaction] = field(default_factory=list)
    predicted: PredictRun | None = None
    monitored: WindowReport | None = None
    retrain: RetrainDecision | None = None
    trained_version: str | None = None
    decisions: list[Decision] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    alerts: list[threading.Thread] = field(default_factory=list)

    def wait_for_alerts(self, seconds: float) -> None:
        """Give background webhook posts up to ``seconds`` in all to finish."""
        deadline = datetime.now() + timedelta(seconds=seconds)
        for sender in self.alerts:
            sender.join(max(0.0, (deadline - datetime.now()).total_seconds()))


# Asked once per tick, after monitoring, whether to retrain (default: the project's ``[loop]``
# settings); a replay of several policies asks each of them here.
RetrainPolicy = Callable[[TickFacts], RetrainDecision]


def tick(
    project: Project, day: date, *, on_step: Callable[[str], None] | None = None, policy: RetrainPolicy | None = None
) -> TickReport:
    """Run the loop once for ``day``; ``policy`` decides whether it retrains (default: the
    project's ``[loop]`` settings)."""
    step = on_step or (lambda _: None)
    report = TickReport(day)
    zone_name = project.contract.timezone
    end = day_span(day, zone_name)[1]
    step("ingesting the inbox")
    report.ingested, report.labels = _ingest_inbox(project)
    for refused in (s for s in report.ingested + report.labels if s.status is BatchStatus.REFUSED):
        _alert(
            project,
            report,
            "batch refused",
            f"{refused.source}: {'; '.join(refused.problems)}",
            {"batch": refused.batch_id},
        )
    if not project.lake.exists(Table.RAW):
        report.notes.append("nothing ingested yet")
        return report
    step("features")
    report.features = materialize(project.lake, project.feature_set(), engine=project.engine)
    report.compacted = _compact(project, report, step)
    registry = Registry(project)
    _resume_promotions(registry, report, end, step)
    if registry.champion() is None:
        _retrain(project, report, RetrainDecision(True, "no champion yet"), end, step)
        if registry.champion() is None:
            return report
    # The whole monitored window is scored, not only the day: a day missed by an earlier tick
    # catches up, and rows the champion already scored are replaced by the same values.
    start = window_start(day, project.settings.loop.monitor_days, zone_name)
    step("predicting")
    try:
        report.predicted = predict_window(project, start, end)
    except PredictError as exc:
        report.notes.append(f"predict: {exc}")
    step("monitoring")
    try:
        report.monitored = monitor_window(project, start, end)
    except MonitorError as exc:
        report.notes.append(f"monitor: {exc}")
        return report
    verdict = report.monitored.verdict
    if verdict.retrain_signal:
        _alert(project, report, verdict.level, "; ".join(verdict.reasons), {"window_end": end})
    serving = registry.champion()
    if serving is None:  # rolled back to nothing while the tick ran: nothing to judge the policy by
        report.notes.append("the champion alias was removed during the tick; the policy was not asked")
        return report
    champion = registry.load(serving)
    facts = TickFacts(
        frozenset(verdict.signals),
        _new_labels(project, champion.lineage.get("data_until")),
        _last_retrain(registry),
        end,
    )
    decision = policy(facts) if policy is not None else facts.decide(project.settings.loop)
    report.retrain = decision
    if decision.retrain:
        _retrain(project, report, decision, end, step)
    return report


def _compact(project: Project, report: TickReport, step: Callable[[str], None]) -> list[Compaction]:
    """Compact the tables where a tick's file a day has piled up (``[loop] compact_files``)."""
    threshold = project.settings.loop.compact_files
    if not threshold:
        return []
    step("compacting the lake")
    done = []
    for table in TABLES:
        try:
            compaction = project.lake.compact(table, min_files=threshold)
        except LakeError as exc:  # nothing changed; the next tick tries again
            report.notes.append(f"compact: {exc}")
            continue
        if compaction is not None:
            done.append(compaction)
    return done


def _ingest_inbox(project: Project) -> tuple[list[IngestSummary], list[IngestSummary]]:
    inbox = project.inbox
    if not inbox.is_dir():
        return [], []
    data = sorted(p for p in inbox.iterdir() if p.is_file() and p.suffix.lower() in READERS)
    labels_folder = inbox / LABELS_FOLDER
    labels = sorted(p for p in labels_folder.iterdir() if p.is_file()) if labels_folder.is_dir() else []
    ingested = ingest(project, data, on_refused="continue") if data else []
    truth = ingest(project, labels, on_refused="continue", labels=True) if labels else []
    return ingested, truth


def training_since(project: Project, day: date) -> datetime | None:
    """Where the training window of a retrain at the end of ``day`` starts: the last
    ``window_days`` days with a sliding window, everything (None) with an expanding one."""
    settings = project.settings.loop
    if settings.training_window == "expanding":
        return None
    return window_start(day, settings.window_days, project.contract.timezone)


def _retrain(
    project: Project, report: TickReport, decision: RetrainDecision, end: datetime, step: Callable[[str], None]
) -> None:
    # Imported here: torch and the tracker load only on the ticks that train.
    from driftloop.model.trainer import train_project
    from driftloop.monitor.prepare import prepare_monitoring
    from driftloop.registry.mlflow.tracking import MlflowTracker

    since = training_since(project, report.day)
    registry = Registry(project)
    step(TRAINING_STEP)
    try:
        with MlflowTracker(project, run_name=f"retrain {end:%Y-%m-%d}") as tracker:
            trained = train_project(project, since=since, until=end, callbacks=[tracker])
            prepare_monitoring(trained, project)
            version = tracker.record(trained)
    except TrainingError as exc:
        report.notes.append(f"retrain: {exc}")
        return
    report.trained_version = version
    registry.tag(version, {LOOP_TAG: str(end.date())})
    registry.record_event(DecisionKind.RETRAIN, version, decision.reason, at=end)
    _promote(registry, report, version, end, step)


def _promote(registry: Registry, report: TickReport, version: str, at: datetime, step: Callable[[str], None]) -> None:
    step(GATES_STEP)
    decisions = registry.promote(version, at=at)  # none while it waits for the days it is judged on
    report.decisions += decisions
    if decisions:
        final = decisions[-1]
        _alert(registry.project, report, final.kind, f"version {version}: {final.reason}", {"version": version})


def _resume_promotions(registry: Registry, report: TickReport, at: datetime, step: Callable[[str], None]) -> None:
    """Judge the versions the loop trained that wait in qa, and promote those it did not get to
    judge (a tick killed in between).

    A version's latest decision is tagged on it: the retrain that made it until the gates judge
    it (one rejected at qa stays in dev, so the stage alone cannot tell), then its promotion to
    qa until it is judged against the champion (with ``[promote] judge_days``, once the days
    after its training data are labelled). Oldest first, each against the champion the one
    before left.
    """
    for pending in reversed(registry.versions()):
        if LOOP_TAG not in pending.tags:
            continue
        latest = pending.tags.get(DECISION_TAG, DecisionKind.RETRAIN)
        if latest == DecisionKind.RETRAIN:
            report.notes.append(f"resumed the promotion of version {pending.version}, trained by an interrupted tick")
        elif latest != DecisionKind.PROMOTED_TO_QA:
            continue
        _promote(registry, report, pending.version, at, step)


def _new_labels(project: Project, data_until: str | None) -> int:
    """Rows with ground truth (in the row or a later label) after the champion's training data."""
    since = datetime.fromisoformat(data_until) + timedelta(microseconds=1) if data_until else None
    try:
        rows, _ = training_rows(project.lake, project.feature_set(), since=since)
    except TrainingError:  # nothing labelled yet
        return 0
    return rows.height


def _last_retrain(registry: Registry) -> datetime | None:
    events = registry.events().filter(pl.col("kind") == DecisionKind.RETRAIN)
    return None if events.is_empty() else events.get_column("at")[-1].replace(tzinfo=None)


def _alert(project: Project, report: TickReport, kind: str, message: str, details: dict[str, object]) -> None:
    settings = project.settings.loop
    sender = alert(
        kind,
        message,
        {**details, "project": project.settings.project.name, "day": str(report.day)},
        url=settings.webhook_url,
        attempts=settings.webhook_attempts,
        timeout=settings.webhook_timeout_seconds,
    )
    if sender is not None:
        report.alerts.append(sender)
