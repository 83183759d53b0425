"""The image project's side of the commands: training the network (``driftloop train`` in an
image project), scoring and watching a window of images (``predict``, ``monitor``), and the
camera-line demo (``driftloop demo --images``)."""

from __future__ import annotations

import json
import logging
from datetime import datetime
from pathlib import Path

from rich.markup import escape
from rich.table import Table

from driftloop.cli.common import (
    EpochProgress,
    emit_json,
    metrics_table,
    out,
    progress_bar,
    show_metrics,
    show_verdict,
)
from driftloop.errors import ConfigError, MissingDependency
from driftloop.project import Project


def train_image_network(project: Project, project_dir: Path, as_json: bool) -> None:
    """Train the image network on the lake's labelled images, track the run, register a dev version."""
    from driftloop.model.image_trainer import train_images
    from driftloop.monitor.images import prepare_image_monitoring
    from driftloop.registry.mlflow.image_tracking import ImageTracker

    assert project.settings.images is not None  # the caller chose this path for an image project
    epochs = project.settings.images.train.epochs
    with progress_bar(as_json, bar=True) as progress, ImageTracker(project) as tracker:
        task = progress.add_task("reading and standardising the images", total=epochs)
        trained = train_images(project, callbacks=[tracker, EpochProgress(progress, task)])
        progress.update(task, completed=epochs, description="measuring the reference for drift")
        prepare_image_monitoring(trained)
        progress.update(task, description="recording the run")
        version = tracker.record(trained)
    metrics = trained.package.metrics
    summary = {
        "model": tracker.model_name,
        "version": version,
        "run_id": tracker.run_id,
        "images_version": trained.package.lineage["images_version"],
        "images": trained.rows,
        "epochs": len(trained.fit.history),
        "best_epoch": trained.fit.best_epoch,
        "train_seconds": round(trained.fit.seconds, 2),
        "refit_images": sum(trained.rows.values()) if trained.refit is not None else None,
        "metrics": metrics["network"],
        "baseline": metrics["baseline"],
    }
    if as_json:
        emit_json(summary)
        return
    out.print(
        f"[green]registered[/] {tracker.model_name} version {version} (stage dev) from images version "
        f"{summary['images_version']}: {trained.rows['train']:,} training images, best epoch "
        f"{trained.fit.best_epoch} of {len(trained.fit.history)}, {trained.fit.seconds:.1f} s"
        + (f", then refit on all {sum(trained.rows.values()):,} images" if trained.refit is not None else "")
    )
    show_metrics(
        f"Test images ({trained.rows['test']:,}, the newest, held out of the fit)",
        metrics["network"]["test"],
        metrics["baseline"]["test"],
        "class shares",
    )
    out.print(
        f"Next: `driftloop promote {version} --project {project_dir}`; "
        f"runs: `mlflow ui --backend-store-uri {project.tracking_uri}`"
    )


def image_demo(folder: Path, days: int | None, *, force: bool) -> None:
    """Make the camera-line project, replay its days through the loop, and show what it served."""
    from driftloop.demo.images import DAYS, DIM_FROM, HISTORY_IMAGES, ImageDay, create_image_demo, draw, replay_images

    if days is not None and not 1 <= days <= DAYS:
        raise ConfigError(f"the image demo replays 1 to {DAYS} days, not {days}")
    # Each tick's alert would be a log line a day; the replay's table says what each day found.
    logging.getLogger("driftloop.alerts").setLevel(logging.ERROR)
    with progress_bar(False) as progress:
        progress.add_task("ingesting the lab's photos", total=None)
        project = create_image_demo(folder, force=force)
    days = days or DAYS
    out.print(
        f"[bold]driftloop demo --images[/] in {project.root}: UCI's handwritten digits (as scikit-learn ships them), "
        f"{HISTORY_IMAGES} photographed in the lab, then {days} days of a camera line with labels a day late; "
        f"from day {DIM_FROM} its lamp fails"
    )
    with progress_bar(False, bar=True) as progress:
        task = progress.add_task("replaying", total=days)

        def on_day(day: ImageDay) -> None:
            progress.update(task, advance=1, description=f"{day.day}: {day.verdict or 'no verdict'}")
            for decision in day.decisions:
                progress.console.print(f"  {day.day}: {escape(decision)}", highlight=False)

        replay = replay_images(project, days=days, on_day=on_day)
    table = Table("day", "lamp", "verdict", "served", "accuracy", "lab model's", title="The line, day by day")
    for day in replay.days:
        shown = "" if day.loop_accuracy is None else f"{day.loop_accuracy:.0%}"
        served = f"v{day.served}" if day.served else "none"
        table.add_row(str(day.day), "failing" if day.dim else "ok", day.verdict or "", served, shown,
                      f"{day.static_accuracy:.0%}", style="yellow" if day.dim else None)  # fmt: skip
    out.print(table)
    summary = replay.to_dict()
    (project.root / "image_demo.json").write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
    loop, static = replay.accuracy("loop", dim=True), replay.accuracy("static", dim=True)
    out.print(
        f"Under the failing lamp the loop's champions were right on {loop:.0%} of the photos, the lab's model on "
        f"{static:.0%}. Drift was found on {replay.detected or 'no day'}; the loop served a model as good as "
        f"the lab's again from {replay.recovered or 'no day'}."
    )
    try:
        chart = draw(replay, project.root / "image_demo.png")
        out.print(f"Chart: {chart}")
    except MissingDependency as missing:
        out.print(f"[yellow]no chart[/]: {missing}")
    out.print(f"Next: `driftloop models --project {folder}`, `mlflow ui --backend-store-uri {project.tracking_uri}`")


def predict_image_window(project: Project, start: datetime, end: datetime, version: str | None, as_json: bool) -> None:
    """Score the images captured in the window and write them to the predictions table."""
    from driftloop.predict_images import predict_images

    with progress_bar(as_json) as progress:
        progress.add_task("scoring the window's images", total=None)
        scored = predict_images(project, start, end, version=version)
    run = scored.run
    if as_json:
        emit_json(run.__dict__)
        return
    out.print(
        f"[green]scored[/] {run.rows:,} images over {len(run.days)} day(s) with version {run.model_version} "
        f"(job {run.job_id}); predictions table version {run.table_version}"
    )


def monitor_image_window(
    project: Project, start: datetime, end: datetime, version: str | None, as_json: bool, report_dir: Path | None
) -> None:
    """Score the window's images, and watch them: statistics, outputs, embeddings, accuracy where
    labelled; the HTML and PNG report goes to ``report_dir`` (None: no report)."""
    from driftloop.lake import IMAGE_LABEL
    from driftloop.monitor.image_window import monitor_images
    from driftloop.predict_images import predict_images

    if report_dir is not None:  # before the work: a missing plotting library is said at once, not after it
        from driftloop.monitor.report import write_report

    with progress_bar(as_json) as progress:
        progress.add_task("scoring and watching the window's images", total=None)
        scored = predict_images(project, start, end, version=version)
        labels = scored.records.get_column(IMAGE_LABEL).to_list()
        found = monitor_images(
            project, scored.package, scored.run.model_version, scored.predictions, labels, start, end
        )
        pages = None if report_dir is None else write_report(project, found.window, report_dir, images=found.drift)
    report, drift = found.window, found.drift
    if as_json:
        emit_json({
            "since": start, "until": end, "model_version": report.model_version, "images": report.rows,
            "verdict": report.verdict.level, "reasons": report.verdict.reasons,
            "drifted_statistics": drift.images.drifted, "drifted_outputs": drift.outputs.drifted,
            "embeddings": {"statistic": drift.embeddings.statistic, "p_value": drift.embeddings.p_value,
                           "drifted": drift.embeddings.drifted},
            "performance": [p.to_dict() for p in report.performance],
            "report": [str(p) for p in pages] if pages else None,
        })  # fmt: skip
        return
    verdict = report.verdict
    show_verdict(verdict.level, verdict.reasons, start, end, f"{report.rows:,} images", report.model_version)
    table = Table("look", "test", "statistic", "threshold", "drifted", title="What moved")
    for section, found_drift in (("image", drift.images), ("output", drift.outputs)):
        for column in found_drift.columns:
            r = column.result
            table.add_row(f"{section} {column.column}", r.test, f"{r.statistic:.4g}", f"{r.threshold:g}",
                          "[red]yes[/]" if r.drifted else "no")  # fmt: skip
    e = drift.embeddings
    p_value = "" if e.p_value is None else f" (p {e.p_value:.3g})"
    table.add_row("embeddings", e.test, f"{e.statistic:.4g}{p_value}", f"{e.threshold:g}",
                  "[red]yes[/]" if e.drifted else "no")  # fmt: skip
    out.print(table)
    if report.performance:
        rows = [(f"{p.target} ({p.rows:,} labelled)", p.metrics, [f"{p.worsening:+.0%} {p.metric} vs test"], "")
                for p in report.performance]  # fmt: skip
        out.print(metrics_table("Accuracy where labels have come", "target", rows))
    if pages:
        out.print(f"report: {pages[0]} (summary: {pages[1].name})")
