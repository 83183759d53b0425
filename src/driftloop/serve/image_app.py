"""The prediction server of an image project, answering with its champion.

Endpoints: ``GET /`` (a page to upload a photo and see its verdict), ``POST /v1/predict`` (a
multipart upload of one or more files in ``image`` fields, or JSON ``{"image": base64}`` or
``{"images": [base64, ...]}``), the Open Inference Protocol v2 (``/v2/models/{name}/infer`` with a
``BYTES`` input of base64 files, ``/v2/models/{name}``, ``/v2/health/live|ready``),
``/health/live|ready``, ``/metrics`` (Prometheus) and ``POST /admin/reload`` (bearer token).

The routes are plain ASGI, as the table server's are (:mod:`driftloop.serve.routes`): FastAPI's
per-request machinery and its form parsing cost more than a small network's forward pass, and a
device serves an image model with no FastAPI. Every answered image is logged to ``predictions`` (its
content hash as the entity, its statistics as the inputs; not the image) through the bounded,
spilling log the table server uses; with ``[serve] keep_images`` the image itself goes to the
``images`` table too (once per content, unlabelled), to be labelled later and trained on. A body
larger than the image contract allows is refused with 413 before it is read whole, a file that
breaks the contract with 422 naming the file and the rule: never a 500.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import polars as pl

from driftloop.errors import MissingDependency, RequestRefused

try:
    from driftloop.serve.image_bodies import MAX_IMAGES, predict_files, v2_files
    from driftloop.serve.metrics import ServerMetrics
    from driftloop.serve.operations import V2_METADATA, Api, Behind, Followed, assembled, same_model, serving
    from driftloop.serve.routes import Call, Route, scoring_route
except ModuleNotFoundError as missing:  # the serving stack is an extra: say which
    raise MissingDependency.of(missing, extra="serve", purpose="the prediction server") from missing
from driftloop.images import Decoded
from driftloop.lake import (
    CAPTURED_AT,
    IMAGE_ID,
    PredictionSource,
    Table,
)
from driftloop.predict import Stamp
from driftloop.predict_images import joined_predictions, prediction_rows
from driftloop.project import Project
from driftloop.serve.image_scoring import ImageBatcher, ImageChampion, ScoredImages, ServedImageModel
from driftloop.serve.logbook import SPILL_FOLDER, Logbook, PredictionLog
from driftloop.serve.upload_page import upload_page
from driftloop.settings.serve import ServeSettings

if TYPE_CHECKING:
    from starlette.types import ASGIApp

# Room a body has beyond the files it carries: multipart boundaries and headers, JSON quoting.
ENVELOPE_BYTES = 64 * 1024
# Requests whose files are larger than this are decoded in a thread.
INLINE_BYTES = 256 * 1024
BASE64_FILE = {"type": "string", "contentEncoding": "base64", "description": "An image file (JPEG, PNG, ...) in base64"}
PREDICT_JSON = {
    "type": "object",
    "properties": {"image": BASE64_FILE, "images": {"type": "array", "items": BASE64_FILE, "maxItems": MAX_IMAGES}},
}
PREDICT_FORM = {
    "type": "object",
    "properties": {"image": {"type": "string", "format": "binary", "description": "An image file"}},
    "required": ["image"],
}
PREDICTION = {
    "type": "object",
    "properties": {
        "prediction_id": {"type": "string"},
        "image_id": {"type": "string", "description": "SHA-256 of the file"},
        "label": {"type": "string"},
        "confidence": {"type": "number"},
        "probabilities": {"type": "object", "additionalProperties": {"type": "number"}},
    },
    "required": ["prediction_id", "image_id", "label", "confidence", "probabilities"],
}
ANSWER = {
    "type": "object",
    "properties": {
        "model": {"type": "string"},
        "model_version": {"type": "string"},
        "request_id": {"type": "string"},
        "predictions": {"type": "array", "items": PREDICTION},
    },
    "required": ["model", "model_version", "request_id", "predictions"],
}
V2_TENSOR = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "datatype": {"type": "string"},
        "shape": {"type": "array", "items": {"type": "integer"}},
        "data": {"type": "array"},
    },
    "required": ["name", "datatype", "shape", "data"],
}
V2_BODY = {"type": "object", "properties": {"inputs": {"type": "array", "items": V2_TENSOR}}, "required": ["inputs"]}
V2_ANSWER = {
    "type": "object",
    "properties": {"model_name": {"type": "string"}, "model_version": {"type": "string"}, "id": {"type": "string"},
                   "outputs": {"type": "array", "items": V2_TENSOR}},
    "required": ["model_name", "model_version", "id", "outputs"],
}  # fmt: skip


@dataclass(frozen=True)
class ServedImages:
    """What an image server serves, whoever keeps its versions: the model's name, its classes, the
    largest file its image contract takes, the server's title and its id."""

    model_name: str
    classes: list[str]
    max_file_bytes: int
    title: str
    server_id: str


class ImageModels(Followed, Protocol):
    """The image model a server answers with, kept in step with wherever its versions come from
    (:class:`~driftloop.serve.image_scoring.ImageChampion`: the registry; a device's store)."""

    @property
    def current(self) -> ServedImageModel | None: ...


def create_image_app(project: Project, *, admin_token: str | None = None) -> ASGIApp:
    """The server of the image ``project``: its champion, followed in the registry, every answer
    logged to its lake (and with ``[serve] keep_images`` the images too); ``admin_token`` enables
    ``POST /admin/reload``."""
    from driftloop.registry import Registry
    from driftloop.serve.image_keeping import kept_images

    settings, images = project.settings.serve, project.settings.images
    if images is None:
        raise RequestRefused(f"{project.root} is not an image project", status=500)
    server_id = f"serve-{uuid.uuid4().hex[:12]}"
    log = PredictionLog(
        project.lake, project.root / SPILL_FOLDER, capacity=settings.log_buffer_rows,
        flush_seconds=settings.flush_seconds, render=lambda batches: logged_rows(batches, server_id),
    )  # fmt: skip
    # With keep_images, a log of its own stores the answered images in the images table.
    kept = [
        PredictionLog(project.lake, project.root / SPILL_FOLDER, capacity=settings.log_buffer_rows,
                      flush_seconds=settings.flush_seconds, render=lambda entries: kept_images(project, entries),
                      table=Table.IMAGES)
    ] if settings.keep_images else []  # fmt: skip
    served = ServedImages(project.model_name, list(project.contract.columns["label"].classes or []), images.max_bytes,
                          f"driftloop: {project.settings.project.name}", server_id)  # fmt: skip
    from driftloop.serve.documented import documented

    return image_scoring_app(served, settings, ImageChampion(Registry(project)), log, kept=kept,
                             admin_token=admin_token, behind=documented())  # fmt: skip


def image_scoring_app(
    served: ServedImages,
    settings: ServeSettings,
    champion: ImageModels,
    log: Logbook,
    *,
    kept: Sequence[Logbook] = (),
    admin_token: str | None,
    behind: Behind | None = None,
    extra: Sequence[Route] = (),
) -> ASGIApp:
    """An image server answering with ``champion``: ``log`` keeps every answer (the lake, or the
    device's store), each of ``kept`` gets every answered request's files (:class:`Kept`);
    ``behind`` stands behind its routes (a central server's FastAPI and docs) and ``extra`` are
    the routes of where it runs (a device's labels)."""
    metrics = ServerMetrics()
    server_id = served.server_id
    numbers = itertools.count(1)

    def on_batch(count: int, seconds: float) -> None:
        metrics.batch_rows.observe(count)
        metrics.batch_seconds.observe(seconds)

    batcher = ImageBatcher(
        lambda scored: log.add(scored, len(scored.predictions.image_ids)),
        max_images=settings.max_batch_rows, max_wait_ms=settings.max_wait_ms, gap_ms=settings.max_gap_ms,
        on_batch=on_batch,
    )  # fmt: skip
    # A file may be as large as the image contract allows, base64 (4/3) included.
    max_body = max(settings.max_body_bytes, served.max_file_bytes * 4 // 3 + ENVELOPE_BYTES)

    page = upload_page(served.title.removeprefix("driftloop: "), served.classes)

    async def scored(files: list[bytes], client_id: str | None) -> tuple[ScoredImages, str]:
        model = _ready(champion.current)
        # Small files are decoded here (a 32x32 PNG in 40 us, less than a thread's hand-over);
        # large ones in a thread, so the event loop goes on answering.
        large = sum(len(f) for f in files) > INLINE_BYTES
        decoded = await asyncio.to_thread(model.decoded, files) if large else model.decoded(files)
        request_id = client_id or f"{server_id}-{next(numbers)}"
        result = await batcher.score(model, decoded, request_id)
        for keeper in kept:
            keeper.add(Kept(server_id, result, decoded, files), len(files))
        return result, request_id

    async def home(_: Call) -> str:
        return page

    async def predict(call: Call) -> dict[str, Any]:
        result, request_id = await scored(call.body, call.request_id)
        predictions = result.predictions
        rows = zip(predictions.image_ids, predictions.predicted, predictions.probabilities, strict=True)
        answers = [
            {"prediction_id": f"{request_id}|{n}", "image_id": image_id, "label": label, "confidence": float(p.max()),
             "probabilities": {c: float(v) for c, v in zip(predictions.classes, p, strict=True)}}
            for n, (image_id, label, p) in enumerate(rows)
        ]  # fmt: skip
        return {"model": result.model.name, "model_version": result.model.version, "request_id": request_id,
                "predictions": answers}  # fmt: skip

    async def infer(call: Call) -> dict[str, Any]:
        same_model(call.params["name"], served.model_name)
        files = call.body
        result, request_id = await scored(files, call.request_id)
        predictions = result.predictions
        return {
            "model_name": result.model.name,
            "model_version": result.model.version,
            "id": request_id,
            "outputs": [
                {"name": predictions.target, "datatype": "BYTES", "shape": [len(files)], "data": predictions.predicted},
                {"name": "probabilities", "datatype": "FP64", "shape": list(predictions.probabilities.shape),
                 "data": [float(p) for p in predictions.probabilities.ravel()]},
            ],
        }  # fmt: skip

    async def metadata(call: Call) -> dict[str, Any]:
        same_model(call.params["name"], served.model_name)
        model = _ready(champion.current)
        return {
            "name": model.name,
            "versions": [model.version],
            "platform": "driftloop",
            "inputs": [{"name": "image", "datatype": "BYTES", "shape": [-1]}],
            "outputs": [
                {"name": model.package.target, "datatype": "BYTES", "shape": [-1]},
                {"name": "probabilities", "datatype": "FP64", "shape": [-1, len(model.package.classes)]},
            ],
        }

    routes = [
        Route(method="GET", path="/", handler=home, summary="A page to upload a photo and see its verdict",
              answer_schema={"type": "string"}, media_type="text/html; charset=utf-8"),
        scoring_route("/v1/predict", predict, "The verdict on one or more images: a multipart upload, or base64 JSON",
                      PREDICT_JSON, ANSWER, predict_files, {"multipart/form-data": {"schema": PREDICT_FORM},
                                                            "application/json": {"schema": PREDICT_JSON}}),
        scoring_route("/v2/models/{name}/infer", infer, "Open Inference Protocol v2: a BYTES input of base64 files",
                      V2_BODY, V2_ANSWER, v2_files),
        Route(method="GET", path="/v2/models/{name}", handler=metadata, answer_schema=V2_METADATA,
              refusals=("404", "503"), summary="Open Inference Protocol v2: model metadata"),
        *extra,
    ]  # fmt: skip
    api = Api(served.title, "Verdicts of the champion on images; every one is logged for monitoring.", routes)
    return assembled(api, champion, log, metrics=metrics, admin_token=admin_token,
                     token_variable=settings.admin_token_env, behind=behind,
                     lifespan=lambda: serving(champion, batcher, [log, *kept], settings.poll_seconds),
                     max_body_bytes=max_body)  # fmt: skip


@dataclass(frozen=True)
class Kept:
    """An answered request's images, to be stored in the images table."""

    server_id: str
    scored: ScoredImages
    decoded: list[Decoded]
    files: list[bytes]


def logged_rows(batches: list[ScoredImages], server_id: str) -> pl.DataFrame:
    """The ``predictions`` rows of answered images: one frame per model version."""
    frames = []
    for version in dict.fromkeys(b.model.version for b in batches):
        members = [b for b in batches if b.model.version == version]
        model = members[0].model
        records = pl.DataFrame(
            {
                IMAGE_ID: [i for b in members for i in b.predictions.image_ids],
                # An upload has no capture time of its own: it is logged at the time it was scored.
                CAPTURED_AT: [b.scored_at.replace(tzinfo=None) for b in members for _ in b.predictions.image_ids],
            },
            schema={IMAGE_ID: pl.String, CAPTURED_AT: pl.Datetime("us")},
        )
        predictions = joined_predictions([b.predictions for b in members])
        stamp = Stamp(model.name, model.version, model.run_id, server_id, members[0].scored_at)
        request_ids = [b.request_id for b in members for _ in b.predictions.image_ids]
        frames.append(
            prediction_rows(records, predictions, stamp, source=PredictionSource.ONLINE, request_ids=request_ids)
        )
    return pl.concat(frames, how="diagonal_relaxed")


def _ready(model: ServedImageModel | None) -> ServedImageModel:
    if model is None:
        raise RequestRefused("no model is loaded: the project has no champion yet (`driftloop promote`)", status=503)
    return model
