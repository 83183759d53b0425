"""The image project's side of the model commands: training the network (``driftloop train``
in an image project)."""

from __future__ import annotations

from pathlib import Path

from driftloop.cli.common import EpochProgress, emit_json, out, progress_bar, show_metrics
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
