"""The image demo: a camera line whose lamp fails, replayed day by day through the loop.

The photos are the handwritten digits of the UCI "Optical Recognition of Handwritten Digits" data
set (E. Alpaydin and C. Kaynak, UCI Machine Learning Repository), as scikit-learn ships them
(``sklearn.datasets.load_digits``: 1,797 scans of 8x8 pixels at 17 grey levels, nothing
downloaded), scaled to 32x32 photos. The first :data:`HISTORY_IMAGES` are the lab's labelled
history; then each day the line photographs :data:`PER_DAY` more, whose labels an inspector sends
the next day. From day :data:`DIM_FROM` the lamp fails: each photo has 40% of the light and the
sensor's noise (a normal spread of 12 grey levels), and the model trained in the lab fails on them.

:func:`replay_images` runs one tick a day (:func:`~driftloop.loop.image_tick.image_tick`) and then
reads what the loop served each day beside what the lab's model would have said: the
"static" model that was never replaced.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from PIL import Image

from driftloop.demo import emptied
from driftloop.errors import ConfigError, MissingDependency
from driftloop.image_labels import label_images
from driftloop.images import Standardisation
from driftloop.ingest_images import ingest_images
from driftloop.lake import CAPTURED_AT, IMAGE_ID, IMAGE_LABEL, PredictionSource, Table
from driftloop.loop import LABELS_FOLDER
from driftloop.loop.image_tick import image_tick
from driftloop.model.image_data import image_metrics
from driftloop.project import Project, init_project
from driftloop.registry import Registry
from driftloop.runtime.kinds import image_package
from driftloop.settings.images import Augmentation, ImageTrainSettings
from driftloop.settings.loop import LoopSettings
from driftloop.settings.promote import PromoteSettings

HISTORY_DAY = date(2026, 3, 1)
HISTORY_IMAGES = 500
PER_DAY = 100
DAYS = 12  # 500 + 12 x 100 of the 1,797 digits
DIM_FROM = 4  # the first replayed day whose photos are dim
DIM_LIGHT, NOISE = 0.4, 12.0
# Digits are small and not mirror images of themselves: 16x16 grey, no flips.
DEMO_STANDARDISE = Standardisation(width=16, height=16, mode="L")
DEMO_TRAIN = ImageTrainSettings(epochs=30, augment=Augmentation(flip=False))
# Each tick watches its own day and the day before, whose labels have come by then (so a window's
# realised accuracy is known); a retrain needs 50 new labels and waits 2 days after the last; a
# challenger is judged on the photos of the day after its data, which neither model saw.
DEMO_LOOP = LoopSettings(monitor_days=2, cooldown_days=2, min_new_labels=50, training_window="expanding")
DEMO_PROMOTE = PromoteSettings(judge_days=1)


@dataclass(frozen=True)
class ImageDay:
    """One replayed day: its lighting, the tick's verdict and decisions, and how right the model
    the loop served was, beside the lab's model."""

    day: date
    dim: bool
    verdict: str | None
    reasons: list[str]
    served: str | None  # the version whose predictions the tick logged
    loop_accuracy: float | None
    static_accuracy: float
    decisions: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ImageReplay:
    """The whole replay, and what it says."""

    days: list[ImageDay]

    def accuracy(self, which: str, *, dim: bool) -> float:
        """Mean accuracy of the ``loop`` or ``static`` model over the dim (or lab-lit) days."""
        values = [getattr(d, f"{which}_accuracy") for d in self.days if d.dim == dim]
        known = [v for v in values if v is not None]
        return float(np.mean(known)) if known else float("nan")

    @property
    def detected(self) -> date | None:
        """The first dim day whose verdict found drift (or worse)."""
        flagged = [d.day for d in self.days if d.dim and d.verdict in ("drift", "estimated_degraded", "degraded")]
        return flagged[0] if flagged else None

    @property
    def recovered(self) -> date | None:
        """The first dim day the loop served a model as right as the lab's model was in the lab (within 5 points)."""
        lab = self.accuracy("static", dim=False)
        good = [d.day for d in self.days if d.dim and d.loop_accuracy is not None and d.loop_accuracy >= lab - 0.05]
        return good[0] if good else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "days": [asdict(d) for d in self.days],
            "detected": self.detected,
            "recovered": self.recovered,
            "accuracy": {
                f"{which}_{light}": self.accuracy(which, dim=light == "dim")
                for which in ("loop", "static")
                for light in ("lab", "dim")
            },
        }


def create_image_demo(folder: Path, *, force: bool = False) -> Project:
    """A fresh image project in ``folder`` whose lab history (the first digits, labelled) is ingested."""
    folder = emptied(folder, force=force)
    project = init_project(folder, name="digits-line", image_classes=[str(d) for d in range(10)])
    assert project.settings.images is not None  # an image project's
    images = project.settings.images.model_copy(update={"standardise": DEMO_STANDARDISE, "train": DEMO_TRAIN})
    settings = project.settings.model_copy(update={"images": images, "loop": DEMO_LOOP, "promote": DEMO_PROMOTE})
    project = Project(project.root, settings)
    project.save()
    history = _photos(folder / "history", range(HISTORY_IMAGES), HISTORY_DAY, dim=False, by_class=True)
    ingest_images(project, history)
    return project


def replay_images(
    project: Project, *, days: int = DAYS, on_day: Callable[[ImageDay], None] | None = None
) -> ImageReplay:
    """Replay ``days`` days of the line through the loop: each day's photos arrive unlabelled in
    the inbox with the labels of the day before, and one tick runs."""
    if not 1 <= days <= DAYS:
        raise ConfigError(f"the image demo replays 1 to {DAYS} days, not {days}")
    inbox = project.inbox
    (inbox / LABELS_FOLDER).mkdir(parents=True, exist_ok=True)
    replayed: list[tuple[date, bool, Any]] = []
    for number in range(1, days + 1):
        day = HISTORY_DAY + timedelta(days=number)
        dim = number >= DIM_FROM
        first = HISTORY_IMAGES + (number - 1) * PER_DAY
        _photos(inbox / day.isoformat(), range(first, first + PER_DAY), day, dim=dim, by_class=False)
        if number > 1:  # yesterday's verdicts from the inspector
            _labels(inbox / LABELS_FOLDER / f"{day - timedelta(days=1)}.csv", range(first - PER_DAY, first))
        report = image_tick(project, day)
        replayed.append((day, dim, report))
        if on_day is not None:
            on_day(_day(project, day, dim, report, static=None))
    # The last day's verdicts, which the next tick would bring in, to measure that day too.
    last = inbox / LABELS_FOLDER / f"{HISTORY_DAY + timedelta(days=days)}.csv"
    _labels(last, range(first, first + PER_DAY))
    label_images(project, last)
    static = _static_version(project)
    return ImageReplay([_day(project, day, dim, report, static) for day, dim, report in replayed])


def draw(replay: ImageReplay, path: Path) -> Path:
    """A chart of each day's accuracy, the loop's beside the lab model's, with the dim days shaded."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ModuleNotFoundError as missing:
        raise MissingDependency.of(missing, extra="reports", purpose="the image demo's chart") from missing
    figure, axes = plt.subplots(figsize=(8, 4))
    numbers = list(range(1, len(replay.days) + 1))
    loop = [np.nan if d.loop_accuracy is None else d.loop_accuracy for d in replay.days]
    axes.plot(numbers, [d.static_accuracy for d in replay.days], "o--", color="grey", label="lab model, never replaced")
    axes.plot(numbers, loop, "o-", color="tab:blue", label="driftloop's champion")
    dim = [n for n, d in zip(numbers, replay.days, strict=True) if d.dim]
    if dim:
        axes.axvspan(dim[0] - 0.5, dim[-1] + 0.5, color="0.9", label="lamp failing")
    axes.set_xticks(numbers, [f"{d.day:%d %b}" for d in replay.days], rotation=45)
    axes.set_ylim(0, 1.02)
    axes.set_ylabel("accuracy on the day's photos")
    axes.legend(loc="lower left")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def _day(project: Project, day: date, dim: bool, report: Any, static: str | None) -> ImageDay:
    verdict = report.monitored.verdict if report.monitored else None
    served = report.predicted.model_version if report.predicted else None
    return ImageDay(
        day,
        dim,
        verdict.level.value if verdict else None,
        list(verdict.reasons) if verdict else [],
        served,
        _served_accuracy(project, day, served),
        _version_accuracy(project, day, static) if static is not None else float("nan"),
        [f"version {d.version}: {d.kind}" for d in report.decisions] + [n for n in report.notes if "labels" not in n],
    )


def _served_accuracy(project: Project, day: date, version: str | None) -> float | None:
    """How often the predictions the loop logged for the day match the labels known now."""
    if version is None or not project.lake.exists(Table.PREDICTIONS):
        return None
    start = datetime(day.year, day.month, day.day)
    logged = project.lake.scan(Table.PREDICTIONS).filter(
        (pl.col("source") == PredictionSource.BATCH) & (pl.col("model_version") == version)
        & (pl.col("event_time") >= start) & (pl.col("event_time") < start + timedelta(days=1))
    ).select(pl.col("entity_id").alias(IMAGE_ID), pl.col(IMAGE_LABEL).alias("predicted"))  # fmt: skip
    truth = project.lake.scan(Table.IMAGES).select(IMAGE_ID, IMAGE_LABEL)
    pairs = logged.join(truth, on=IMAGE_ID).drop_nulls().collect()
    right = pairs.select((pl.col("predicted") == pl.col(IMAGE_LABEL)).cast(pl.Float64).mean()).item()
    return float(right) if pairs.height else None


def _version_accuracy(project: Project, day: date, version: str) -> float:
    """The accuracy ``version`` has on the day's labelled photos."""
    start = datetime(day.year, day.month, day.day)
    images = (
        project.lake.scan(Table.IMAGES)
        .filter((pl.col(CAPTURED_AT) >= start) & (pl.col(CAPTURED_AT) < start + timedelta(days=1)))
        .filter(pl.col(IMAGE_LABEL).is_not_null())
        .collect()
    )
    package = image_package(Registry(project).package(version), f"version {version}")
    return image_metrics(package, images)[IMAGE_LABEL]["accuracy"]


def _static_version(project: Project) -> str:
    """The first champion: the lab's model, as if the loop had never replaced it."""
    events = Registry(project).events().filter(pl.col("champion_after").is_not_null())
    return str(events.get_column("champion_after")[0])


def _photos(folder: Path, indices: range, day: date, *, dim: bool, by_class: bool) -> Path:
    """The digits of ``indices`` as PNG photos taken on ``day`` from 08:00, a minute apart (dim
    ones at 40% of the light, with noise), in class subfolders or all in ``folder``."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng(indices.start)
    for i in indices:
        pixels = np.kron(digits.images[i] * 255 / 16, np.ones((4, 4)))  # 8x8 -> 32x32, each pixel a 4x4 block
        if dim:
            pixels = pixels * DIM_LIGHT + rng.normal(0, NOISE, pixels.shape)
        photo = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
        path = (folder / str(digits.target[i]) if by_class else folder) / f"digit{i:04d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        photo.save(buffer, "PNG")
        path.write_bytes(buffer.getvalue())
        taken = datetime(day.year, day.month, day.day, 8, tzinfo=UTC) + timedelta(minutes=i - indices.start)
        os.utime(path, (taken.timestamp(), taken.timestamp()))  # ingest reads a file's time as its capture time
    return folder


def _labels(path: Path, indices: range) -> None:
    """The inspector's verdicts on the photos of ``indices``, by file name."""
    from sklearn.datasets import load_digits

    target = load_digits().target
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", IMAGE_LABEL])
        writer.writerows([f"digit{i:04d}.png", str(target[i])] for i in indices)
