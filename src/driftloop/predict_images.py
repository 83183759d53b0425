"""Batch inference for images: score the images captured in a window with a registered network
and write one row per image to ``predictions``.

Each row carries the image's content hash as its entity id, its capture time as its event time,
the class and every class's probability, the model version, run and job, and the image's
statistics (as the ``inputs`` JSON): what the monitoring of the window and a later look at "what
did the model see" need, without the image itself. The rows of the same version over the window
are replaced in one commit, so a rerun ends in the same table.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from driftloop.errors import ModelPackageError, PredictError
from driftloop.lake import CAPTURED_AT, EVENT_DATE, IMAGE_ID, IMAGE_LABEL, PREDICTION_ID, PredictionSource, Table, Where
from driftloop.predict import PredictRun, Stamp, prediction_ids, scoring_version
from driftloop.project import Project
from driftloop.runtime.image_package import ImagePackage, ImagePredictions
from driftloop.runtime.kinds import image_package

if TYPE_CHECKING:
    pass  # imported where used: it needs MLflow and PyTorch

# Images decoded and scored at a time: their bytes and pixels are in memory together.
CHUNK_IMAGES = 1_000


@dataclass(frozen=True)
class ScoredImages:
    """A window's images as scored: the job, the package, what it said of each image (with the
    embeddings monitoring tests), and each image's id, capture time and label where known."""

    run: PredictRun
    package: ImagePackage
    predictions: ImagePredictions
    records: pl.DataFrame  # image_id, captured_at, label (null until labelled), in scoring order


def predict_images(project: Project, since: datetime, until: datetime, *, version: str | None = None) -> ScoredImages:
    """Score the images with ``since <= capture time < until`` (naive UTC) with ``version``
    (default: the champion) and write them to ``predictions``."""
    from driftloop.registry import Registry  # here, not at the top: a device scores without MLflow

    registry = Registry(project)
    chosen = scoring_version(registry, since, until, version)
    package = image_package(registry.package(chosen), f"version {chosen} of {registry.name!r}")
    lake = project.lake
    if lake.version(Table.IMAGES) is None:
        raise PredictError("the images table is empty: ingest images with `driftloop ingest FOLDER` first")
    window = lake.scan(Table.IMAGES).filter((pl.col(CAPTURED_AT) >= since) & (pl.col(CAPTURED_AT) < until))
    records = window.select(IMAGE_ID, CAPTURED_AT, IMAGE_LABEL).collect().sort(CAPTURED_AT, IMAGE_ID)
    if records.is_empty():
        raise PredictError(f"no image was captured between {since} and {until}")
    run = PredictRun(uuid.uuid4().hex, chosen, since, until)
    parts = [
        _score(package, window, records.slice(start, CHUNK_IMAGES)) for start in range(0, records.height, CHUNK_IMAGES)
    ]
    predictions = joined_predictions(parts)
    stamp = Stamp(registry.name, chosen, registry.version(chosen).run_id, run.job_id, datetime.now(UTC))
    where = Where(
        equal={"source": PredictionSource.BATCH, "model_name": registry.name, "model_version": chosen},
        between={"event_time": (since, until)},
    )
    run.table_version = lake.replace(
        Table.PREDICTIONS, prediction_rows(records, predictions, stamp), where=where,
        metadata={"driftloop.job_id": run.job_id, "driftloop.from": str(since)},
    )  # fmt: skip
    run.rows = records.height
    run.days = sorted({str(d) for d in records.get_column(CAPTURED_AT).dt.date()})
    return ScoredImages(run, package, predictions, records)


def prediction_rows(
    records: pl.DataFrame,
    predictions: ImagePredictions,
    stamp: Stamp,
    *,
    source: PredictionSource = PredictionSource.BATCH,
    request_ids: list[str] | None = None,
) -> pl.DataFrame:
    """The rows ``predictions`` stores for scored images (``records``: their ids and capture
    times): outputs, ids, times, the stamp, and each image's statistics as its ``inputs``. A
    server's rows (``source`` online) carry their request's id, and a prediction id made of it."""
    event_time = pl.col(CAPTURED_AT)
    ids: pl.Expr | pl.Series = (
        prediction_ids(pl.col(IMAGE_ID), event_time, stamp.version)
        if request_ids is None
        else pl.Series(online_ids(request_ids), dtype=pl.String)
    )
    bookkeeping = records.select(
        ids.alias(PREDICTION_ID),
        pl.col(IMAGE_ID).alias("entity_id"),
        event_time.alias("event_time"),
        *stamp.columns(source),
        pl.Series("request_id", request_ids or [None] * records.height, pl.String),
        pl.Series("inputs", [json.dumps(s) for s in predictions.stats], pl.String),
        event_time.cast(pl.Date).alias(EVENT_DATE),
    )
    return pl.concat([bookkeeping, predictions.frame()], how="horizontal")


def online_ids(request_ids: list[str]) -> list[str]:
    """Each image's prediction id in a server's answer: its request's id and its place there."""
    seen: dict[str, int] = {}
    ids = []
    for request in request_ids:
        place = seen.get(request, 0)
        seen[request] = place + 1
        ids.append(f"{request}|{place}")
    return ids


def _score(package: ImagePackage, window: pl.LazyFrame, chunk: pl.DataFrame) -> ImagePredictions:
    ids = chunk.get_column(IMAGE_ID)
    contents = dict(
        window.filter(pl.col(IMAGE_ID).is_in(ids.implode())).select(IMAGE_ID, "content").collect().iter_rows()
    )
    try:
        return package.predict([contents[i] for i in ids])
    except ModelPackageError as exc:  # the lake took them under the project's rules; the model's are other
        raise PredictError(
            f"the model's image contract refuses images the lake holds ({exc}); retrain it on the project's rules"
        ) from exc


def joined_predictions(parts: list[ImagePredictions]) -> ImagePredictions:
    """Predictions of several batches of one package's, as one."""
    return ImagePredictions(
        parts[0].target,
        parts[0].classes,
        np.concatenate([p.probabilities for p in parts]),
        np.concatenate([p.embeddings for p in parts]),
        [i for p in parts for i in p.image_ids],
        [s for p in parts for s in p.stats],
    )
