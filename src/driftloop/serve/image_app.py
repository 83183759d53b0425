"""The prediction server of an image project, answering with its champion.

Endpoints: ``GET /`` (a page to upload a photo and see its verdict), ``POST /v1/predict`` (a
multipart upload of one or more files in ``image`` fields, or JSON ``{"image": base64}`` or
``{"images": [base64, ...]}``), the Open Inference Protocol v2 (``/v2/models/{name}/infer`` with a
``BYTES`` input of base64 files, ``/v2/models/{name}``, ``/v2/health/live|ready``),
``/health/live|ready``, ``/metrics`` (Prometheus) and ``POST /admin/reload`` (bearer token).

Every answered image is logged to ``predictions`` (its content hash as the entity, its
statistics as the inputs; not the image) through the bounded, spilling log the table server
uses. A body larger than the image contract allows is refused with 413 before it is read
whole, a file that breaks the contract with 422 naming the file and the rule: never a 500.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import gc
import itertools
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

import polars as pl

from driftloop.errors import MissingDependency, RequestRefused

try:
    from fastapi import FastAPI, Request, Response
    from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
    from starlette.datastructures import UploadFile

    from driftloop.serve.metrics import MeasuredRequests, ServerMetrics
    from driftloop.serve.routes import refusal_responses
except ModuleNotFoundError as missing:  # the serving stack is an extra: say which
    raise MissingDependency.of(missing, extra="serve", purpose="the prediction server") from missing
from driftloop.lake import CAPTURED_AT, IMAGE_ID, PredictionSource
from driftloop.predict import Stamp
from driftloop.predict_images import joined_predictions, prediction_rows
from driftloop.project import Project
from driftloop.registry import Registry
from driftloop.serve.app import authorise, follow_registry
from driftloop.serve.image_scoring import ImageBatcher, ImageChampion, ScoredImages, ServedImageModel
from driftloop.serve.logbook import SPILL_FOLDER, PredictionLog
from driftloop.serve.upload_page import upload_page

# Room a body has beyond the files it carries: multipart boundaries and headers, JSON quoting.
ENVELOPE_BYTES = 64 * 1024
# Images one request may carry.
MAX_IMAGES = 64


def create_image_app(project: Project, *, admin_token: str | None = None) -> FastAPI:
    """The server of the image ``project``; ``admin_token`` enables ``POST /admin/reload``."""
    settings, images = project.settings.serve, project.settings.images
    if images is None:
        raise RequestRefused(f"{project.root} is not an image project", status=500)
    champion = ImageChampion(Registry(project))
    metrics = ServerMetrics()
    server_id = f"serve-{uuid.uuid4().hex[:12]}"
    numbers = itertools.count(1)
    log = PredictionLog(
        project.lake, project.root / SPILL_FOLDER, capacity=settings.log_buffer_rows,
        flush_seconds=settings.flush_seconds, render=lambda batches: logged_rows(batches, server_id),
    )  # fmt: skip

    def on_batch(count: int, seconds: float) -> None:
        metrics.batch_rows.observe(count)
        metrics.batch_seconds.observe(seconds)

    batcher = ImageBatcher(
        lambda scored: log.add(scored, len(scored.predictions.image_ids)),
        max_images=settings.max_batch_rows, max_wait_ms=settings.max_wait_ms, gap_ms=settings.max_gap_ms,
        on_batch=on_batch,
    )  # fmt: skip
    # A file may be as large as the image contract allows, base64 (4/3) included.
    max_body = max(settings.max_body_bytes, images.max_bytes * 4 // 3 + ENVELOPE_BYTES)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(champion.try_refresh)
        await asyncio.to_thread(log.start)
        gc.freeze()  # what is loaded lives as long as the server: out of the collector's walks
        batcher.start()
        poller = asyncio.create_task(follow_registry(champion, settings.poll_seconds), name="driftloop-poller")
        try:
            yield
        finally:
            poller.cancel()
            with suppress(asyncio.CancelledError):
                await poller
            await batcher.stop()
            await asyncio.to_thread(log.close)

    app = FastAPI(
        title=f"driftloop: {project.settings.project.name}",
        description="Verdicts of the project's champion on images; every one is logged for monitoring.",
        lifespan=lifespan,
    )
    classes = project.contract.columns["label"].classes or []
    page = upload_page(project.settings.project.name, classes)

    async def scored(request: Request, files: list[bytes]) -> tuple[ScoredImages, str]:
        model = _ready(champion.current)
        if not files:
            raise RequestRefused("no image in the request: send a file in an 'image' field, or base64 JSON")
        if len(files) > MAX_IMAGES:
            raise RequestRefused(f"{len(files)} images in one request; at most {MAX_IMAGES}", status=413)
        decoded = await asyncio.to_thread(model.decoded, files)
        request_id = request.headers.get("x-request-id") or f"{server_id}-{next(numbers)}"
        return await batcher.score(model, decoded, request_id), request_id

    @app.get("/", response_class=HTMLResponse, summary="A page to upload a photo and see its verdict")
    async def home() -> HTMLResponse:
        return HTMLResponse(page)

    @app.post("/v1/predict", summary="The verdict on one or more images: a multipart upload, or base64 JSON",
              responses=refusal_responses("413", "422", "503"))  # fmt: skip
    async def predict(request: Request) -> dict[str, Any]:
        files = await _files(request, max_body)
        result, request_id = await scored(request, files)
        predictions = result.predictions
        rows = zip(predictions.image_ids, predictions.predicted, predictions.probabilities, strict=True)
        answers = [
            {"prediction_id": f"{request_id}|{n}", "image_id": image_id, "label": label, "confidence": float(p.max()),
             "probabilities": {c: float(v) for c, v in zip(predictions.classes, p, strict=True)}}
            for n, (image_id, label, p) in enumerate(rows)
        ]  # fmt: skip
        return {"model": result.model.name, "model_version": result.model.version, "request_id": request_id,
                "predictions": answers}  # fmt: skip

    @app.post("/v2/models/{name}/infer", summary="Open Inference Protocol v2: a BYTES input of base64 image files",
              responses=refusal_responses("404", "413", "422", "503"))  # fmt: skip
    async def infer(name: str, request: Request) -> dict[str, Any]:
        _same_model(name, project)
        files = _v2_files(await _json(request, max_body))
        result, request_id = await scored(request, files)
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

    @app.get("/v2/models/{name}", summary="Open Inference Protocol v2: model metadata",
             responses=refusal_responses("404", "503"))  # fmt: skip
    async def metadata(name: str) -> dict[str, Any]:
        _same_model(name, project)
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

    @app.get("/health/live", summary="The process is up")
    @app.get("/v2/health/live", summary="Open Inference Protocol v2: the process is up")
    async def live() -> dict[str, str]:
        return {"status": "live"}

    @app.get("/health/ready", summary="A model is loaded", responses=refusal_responses("503"))
    @app.get("/v2/health/ready", summary="Open Inference Protocol v2: ready", responses=refusal_responses("503"))
    async def ready() -> dict[str, str]:
        model = _ready(champion.current)
        return {"status": "ready", "model": model.name, "model_version": model.version}

    @app.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
    async def prometheus() -> Response:
        if champion.current is not None:
            metrics.model_version.labels(champion.current.name).set(float(champion.current.version))
        metrics.model_swaps.set(champion.loads)
        metrics.log_queue.set(log.depth)
        metrics.log_written.set(log.written)
        metrics.log_spilled.set(log.spilled)
        return Response(metrics.render(), media_type="text/plain; version=0.0.4")

    @app.post("/admin/reload", summary="Load the champion now (bearer token)",
              responses=refusal_responses("401", "403", "503"))  # fmt: skip
    async def reload(request: Request) -> dict[str, Any]:
        authorise(request, admin_token, settings.admin_token_env)
        changed = await asyncio.to_thread(champion.refresh)
        return {"reloaded": changed, "model_version": _ready(champion.current).version}

    @app.exception_handler(RequestRefused)
    async def refused(_: Request, exc: RequestRefused) -> JSONResponse:
        return JSONResponse(exc.payload(), status_code=exc.status)

    app.add_middleware(MeasuredRequests, metrics=metrics)
    app.state.champion, app.state.log = champion, log
    return app


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


async def _files(request: Request, limit: int) -> list[bytes]:
    """The image files of a multipart upload (every file field) or of base64 JSON."""
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        body = await _body(request, limit)

        async def replay() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        try:
            form = await Request(request.scope, replay).form(max_files=MAX_IMAGES, max_fields=MAX_IMAGES)
        except Exception as exc:  # Starlette's parser says what was wrong with the form
            raise RequestRefused(f"the multipart form cannot be read: {exc}") from exc
        uploads = [value for _, value in form.multi_items() if isinstance(value, UploadFile)]
        return [await upload.read() for upload in uploads]
    payload = await _json(request, limit)
    if not isinstance(payload, dict) or not ({"image", "images"} & set(payload)):
        raise RequestRefused(
            'send the image as a multipart upload (field "image"), or JSON {"image": "<base64>"} or '
            '{"images": ["<base64>", ...]}'
        )
    given = payload.get("images", [payload.get("image")])
    if not isinstance(given, list):
        raise RequestRefused('"images" must be a list of base64 strings')
    return [_base64(text, f"images[{n}]" if "images" in payload else "image") for n, text in enumerate(given)]


def _v2_files(payload: Any) -> list[bytes]:
    """The files of a v2 request's one ``BYTES`` input (its data base64 strings)."""
    inputs = payload.get("inputs") if isinstance(payload, dict) else None
    if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], dict):
        raise RequestRefused('a v2 request has "inputs": one tensor {"name": "image", "datatype": "BYTES", ...}')
    tensor = inputs[0]
    if tensor.get("datatype") != "BYTES" or not isinstance(tensor.get("data"), list):
        raise RequestRefused(
            f'the input {tensor.get("name")!r} must be datatype "BYTES" with "data": a list of base64 image files'
        )
    return [_base64(text, f"inputs[0].data[{n}]") for n, text in enumerate(tensor["data"])]


def _base64(text: Any, where: str) -> bytes:
    if not isinstance(text, str):
        raise RequestRefused(f"{where} must be a base64 string of an image file, not {type(text).__name__}")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise RequestRefused(f"{where} is not base64: {exc}") from exc


async def _json(request: Request, limit: int) -> Any:
    import orjson

    body = await _body(request, limit)
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise RequestRefused(f"the body is not valid JSON: {exc}") from exc


async def _body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it is known to be over ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise RequestRefused(
            f"the body is {declared} bytes, more than the {limit} the image contract allows", status=413
        )
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise RequestRefused(f"the body is more than the {limit} bytes the image contract allows", status=413)
    return bytes(body)


def _ready(model: ServedImageModel | None) -> ServedImageModel:
    if model is None:
        raise RequestRefused("no model is loaded: the project has no champion yet (`driftloop promote`)", status=503)
    return model


def _same_model(name: str, project: Project) -> None:
    if name != project.model_name:
        raise RequestRefused(f"no model named {name!r} here; this server serves {project.model_name!r}", status=404)
