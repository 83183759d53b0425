"""The image records of the lake a network is trained, tested and judged on, and its metrics there.

Images are read from the ``images`` table by capture time, at a known table version where a
model's lineage names one, so a test window reads the same images whenever it is read again.
"""

from __future__ import annotations

import io
from datetime import datetime, timedelta

import numpy as np
import polars as pl
from PIL import Image

from driftloop.errors import TrainingError
from driftloop.lake import CAPTURED_AT, IMAGE_ID, IMAGE_LABEL, IMAGE_STATS, Lake, Table
from driftloop.model.metrics import classification_metrics
from driftloop.runtime.image_package import ImagePackage

# What a training or judging read takes of each image record.
COLUMNS = (IMAGE_ID, CAPTURED_AT, IMAGE_LABEL, "content", *IMAGE_STATS)


def labelled_images(
    lake: Lake, *, since: datetime | None = None, until: datetime | None = None, version: int | None = None
) -> tuple[pl.DataFrame, int]:
    """The labelled images captured in ``[since, until)`` (naive UTC; open ends by default), oldest
    first, from the ``images`` table at ``version`` (default: the latest), and that version."""
    chosen = lake.version(Table.IMAGES) if version is None else version
    if chosen is None:
        raise TrainingError("the images table is empty: ingest images with `driftloop ingest FOLDER` first")
    scan = _window(lake.scan(Table.IMAGES, version=chosen), since, until).filter(pl.col(IMAGE_LABEL).is_not_null())
    return scan.select(COLUMNS).collect().sort(CAPTURED_AT, IMAGE_ID), chosen


def images_after(lake: Lake, since: datetime, days: float) -> tuple[pl.DataFrame, int]:
    """The labelled images of the ``days`` days after the instant ``since`` (``since < capture time
    <= since + days``), and how many images the lake holds there, labelled or not."""
    if lake.version(Table.IMAGES) is None:
        return pl.DataFrame(schema=dict.fromkeys(COLUMNS)), 0
    start, end = since + timedelta(microseconds=1), since + timedelta(days=days, microseconds=1)
    window = _window(lake.scan(Table.IMAGES), start, end)
    total = int(window.select(pl.len()).collect().item())
    labelled = window.filter(pl.col(IMAGE_LABEL).is_not_null()).select(COLUMNS).collect()
    return labelled.sort(CAPTURED_AT, IMAGE_ID), total


def newest_images(lake: Lake, count: int) -> pl.DataFrame:
    """The ``count`` most recently captured images (labelled or not), newest first."""
    if lake.version(Table.IMAGES) is None:
        raise TrainingError("the images table is empty: ingest images with `driftloop ingest FOLDER` first")
    return lake.scan(Table.IMAGES).select(COLUMNS).sort(CAPTURED_AT, descending=True).head(count).collect()


def opened(images: pl.DataFrame) -> list[Image.Image]:
    """The images of records read from the lake (accepted at ingest, so they decode)."""
    return [Image.open(io.BytesIO(content)) for content in images.get_column("content")]


def image_metrics(package: ImagePackage, images: pl.DataFrame) -> dict[str, dict[str, float]]:
    """The package's label metrics on labelled image records (their label a class it knows), by
    the package's own standardisation, as ``{target: {metric: value}}``."""
    index = {c: i for i, c in enumerate(package.classes)}
    truth = np.array([index.get(label, np.nan) for label in images.get_column(IMAGE_LABEL)], dtype=np.float64)
    probabilities, _ = package.score(package.standardisation.apply(opened(images)))
    return {package.target: classification_metrics(truth, probabilities)}


def _window(scan: pl.LazyFrame, since: datetime | None, until: datetime | None) -> pl.LazyFrame:
    if since is not None:
        scan = scan.filter(pl.col(CAPTURED_AT) >= since)
    if until is not None:
        scan = scan.filter(pl.col(CAPTURED_AT) < until)
    return scan
