"""One tick of the loop for an image project, for one day: what a camera line's daily job runs.

inbox -> ingest images (each file or folder of the inbox one batch; a folder's class subfolders
are labels) and late labels (``inbox/labels/*.csv``: image_id or file, label) -> score the images
of the last ``monitor_days`` with the champion -> monitor them (image statistics, confidence and
classes, embeddings, accuracy where labelled) -> retrain policy -> (train on the configured
window -> gates -> promote or reject) -> events and alerts.

Every step is idempotent, as the table tick's: images are stored once by content, a labels file
applied again changes nothing, and a window's predictions and monitoring rows are replaced.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime

import polars as pl

from driftloop.data.clock import day_span, window_start
from driftloop.errors import MonitorError, PredictError, SourceError, TrainingError
from driftloop.image_labels import label_images
from driftloop.ingest_images import IMAGE_SUFFIXES, ingest_images
from driftloop.lake import CAPTURED_AT, IMAGE_LABEL, Table
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
from driftloop.monitor.image_window import monitor_images
from driftloop.predict_images import predict_images
from driftloop.project import Project
from driftloop.registry import Registry


def image_tick(
    project: Project, day: date, *, on_step: Callable[[str], None] | None = None, policy: RetrainPolicy | None = None
) -> TickReport:
    """Run the loop once for ``day`` in an image project; ``policy`` decides whether it retrains
    (default: the project's ``[loop]`` settings)."""
    step = on_step or (lambda _: None)
    report = TickReport(day)
    zone_name = project.contract.timezone
    end = day_span(day, zone_name)[1]
    step("ingesting the inbox")
    _ingest_inbox(project, report)
    if project.lake.version(Table.IMAGES) is None:
        report.notes.append("no image ingested yet")
        return report
    registry = Registry(project)
    resume_promotions(registry, report, end, step)
    if registry.champion() is None:
        _retrain(project, report, RetrainDecision(True, "no champion yet"), end, step)
        if registry.champion() is None:
            return report
    start = window_start(day, project.settings.loop.monitor_days, zone_name)
    step("predicting")
    try:
        scored = predict_images(project, start, end)
    except PredictError as exc:
        report.notes.append(f"predict: {exc}")
        return report
    report.predicted = scored.run
    step("monitoring")
    labels = scored.records.get_column(IMAGE_LABEL).to_list()
    try:
        monitored = monitor_images(
            project, scored.package, scored.run.model_version, scored.predictions, labels, start, end
        )
    except MonitorError as exc:
        report.notes.append(f"monitor: {exc}")
        return report
    report.monitored = monitored.window
    new_labels = _new_labels(project, scored.package.lineage.get("data_until"))
    decision = ask_policy(project, report, registry, new_labels, end, policy)
    if decision.retrain:
        _retrain(project, report, decision, end, step)
    return report


def _ingest_inbox(project: Project, report: TickReport) -> None:
    """Each image file and folder of the inbox as a batch, then each labels file; a refused
    labels file is a note and an alert, and the tick goes on."""
    inbox = project.inbox
    if not inbox.is_dir():
        return
    entries = sorted(
        p for p in inbox.iterdir() if (p.is_dir() and p.name != LABELS_FOLDER) or p.suffix.lower() in IMAGE_SUFFIXES
    )
    report.ingested = [ingest_images(project, entry) for entry in entries]
    labels_folder = inbox / LABELS_FOLDER
    for path in sorted(labels_folder.glob("*.csv")) if labels_folder.is_dir() else []:
        try:
            applied = label_images(project, path)
        except SourceError as exc:
            report.notes.append(f"labels: {exc}")
            raise_alert(project, report, "labels refused", str(exc), {"labels": str(path)})
            continue
        if applied.labelled or applied.relabelled:
            report.notes.append(f"labels {path.name}: {applied.labelled} labelled, {applied.relabelled} relabelled")


def _retrain(
    project: Project, report: TickReport, decision: RetrainDecision, end: datetime, step: Callable[[str], None]
) -> None:
    # Imported here: torch and the tracker load only on the ticks that train.
    from driftloop.model.image_trainer import train_images
    from driftloop.monitor.images import prepare_image_monitoring
    from driftloop.registry.mlflow.image_tracking import ImageTracker

    step(TRAINING_STEP)
    try:
        with ImageTracker(project, run_name=f"retrain {end:%Y-%m-%d}") as tracker:
            trained = train_images(project, since=training_since(project, report.day), until=end, callbacks=[tracker])
            prepare_image_monitoring(trained)
            version = tracker.record(trained)
    except TrainingError as exc:
        report.notes.append(f"retrain: {exc}")
        return
    after_retrain(Registry(project), report, version, decision, end, step)


def _new_labels(project: Project, data_until: str | None) -> int:
    """Labelled images captured after the champion's training images."""
    scan = project.lake.scan(Table.IMAGES).filter(pl.col(IMAGE_LABEL).is_not_null())
    if data_until:
        scan = scan.filter(pl.col(CAPTURED_AT) > datetime.fromisoformat(data_until))
    return int(scan.select(pl.len()).collect().item())
