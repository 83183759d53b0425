"""Monitor one window of images: what the champion said of them against what it saw in training,
how right it was where labels have come, a verdict, and rows in the ``monitoring`` table.

The image statistics are the window's inputs and the confidence and predicted classes its
predictions (as for a table's columns, so the dashboards and the policy read them alike); the
embeddings' test is written as the ``embedding`` section. Rerunning a window replaces its rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import polars as pl

from driftloop.lake import IMAGE_STATS
from driftloop.monitor.images import ImageDrift, image_drift, image_verdict
from driftloop.monitor.performance import ACTUAL, TargetPerformance, evaluate
from driftloop.monitor.window import WindowReport, write_report
from driftloop.profiles import Profile
from driftloop.profiles.images import image_profile
from driftloop.project import Project
from driftloop.runtime.image_package import ImagePackage, ImagePredictions


@dataclass(frozen=True)
class ImageWindowReport:
    """What monitoring one window of images found: the report every window has, and the three
    looks at the images (statistics, outputs, embeddings)."""

    window: WindowReport
    drift: ImageDrift


def monitor_images(
    project: Project,
    package: ImagePackage,
    version: str,
    predictions: ImagePredictions,
    labels: list[str | None],
    since: datetime,
    until: datetime,
) -> ImageWindowReport:
    """Monitor the window ``[since, until)`` whose images ``package`` (``version``) scored as
    ``predictions``; ``labels`` are their classes where known (None elsewhere), in that order."""
    settings = project.settings.monitor
    drift = image_drift(package, predictions, settings)
    performance = image_performance(project, package, predictions, labels)
    reference = Profile.from_dict(package.reference["images"])
    stats = pl.DataFrame(predictions.stats, schema=dict.fromkeys(IMAGE_STATS, pl.Float64))
    report = WindowReport(
        since, until, version, len(predictions.image_ids), drift.images, drift.outputs, performance,
        image_verdict(drift, performance, settings), reference, image_profile(stats, like=reference),
    )  # fmt: skip
    embeddings = drift.embeddings
    extra: list[dict[str, object]] = [
        {"section": "embedding", "column": "embedding", "statistic": embeddings.test, "value": embeddings.statistic,
         "threshold": embeddings.threshold, "flagged": embeddings.drifted, "detail": ""},
        {"section": "embedding", "column": "embedding", "statistic": "p_value", "value": embeddings.p_value,
         "threshold": None, "flagged": False, "detail": ""},
    ]  # fmt: skip
    write_report(project, project.model_name, report, extra)
    return ImageWindowReport(report, drift)


def image_performance(
    project: Project, package: ImagePackage, predictions: ImagePredictions, labels: list[str | None]
) -> list[TargetPerformance]:
    """The realised metrics on the window's labelled images, against the package's test metrics."""
    pairs = predictions.frame().with_columns(pl.Series(ACTUAL + package.target, labels, pl.String))
    test = package.metrics["network"]["test"]
    return evaluate(pairs, project.contract, test, project.settings.promote)
