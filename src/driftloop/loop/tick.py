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

from collections.abc import Callable
from datetime import date, datetime, timedelta

from driftloop.data.clock import day_span, window_start
from driftloop.data.sources import READERS
from driftloop.errors import LakeError, MonitorError, PredictError, TrainingError
from driftloop.feature_table import materialize
from driftloop.ingest import BatchStatus, IngestSummary, ingest
from driftloop.lake import TABLES, Compaction, Table
from driftloop.loop.policy import RetrainDecision
from driftloop.loop.steps import (
    LABELS_FOLDER,
    TRAINING_STEP,
    RetrainPolicy,
    TickReport,
    after_retrain,
    ask_policy,
    raise_alert,
    resume_promotions,
    training_since,
)
from driftloop.model.data import training_rows
from driftloop.monitor.window import monitor_window
from driftloop.predict import predict_window
from driftloop.project import Project
from driftloop.registry import Registry


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
        raise_alert(
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
    resume_promotions(registry, report, end, step)
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
    serving = registry.champion()
    if serving is None:  # rolled back to nothing while the tick ran: nothing to judge the policy by
        report.notes.append("the champion alias was removed during the tick; the policy was not asked")
        return report
    new_labels = _new_labels(project, registry.load(serving).lineage.get("data_until"))
    decision = ask_policy(project, report, registry, new_labels, end, policy)
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
    after_retrain(registry, report, version, decision, end, step)


def _new_labels(project: Project, data_until: str | None) -> int:
    """Rows with ground truth (in the row or a later label) after the champion's training data."""
    since = datetime.fromisoformat(data_until) + timedelta(microseconds=1) if data_until else None
    try:
        rows, _ = training_rows(project.lake, project.feature_set(), since=since)
    except TrainingError:  # nothing labelled yet
        return 0
    return rows.height
