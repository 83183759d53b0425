"""The prediction server: FastAPI on uvicorn, answering with the project's champion.

Endpoints: ``POST /v1/predict`` (driftloop's JSON), ``POST /invocations`` (MLflow's scoring
formats), the Open Inference Protocol v2 (``/v2/models/{name}/infer``, ``/v2/models/{name}``,
``/v2/health/live|ready``), ``/health/live|ready``, ``/metrics`` (Prometheus) and
``POST /admin/reload`` (bearer token). Every answered prediction is logged to ``predictions``
(:mod:`driftloop.serve.logbook`); on shutdown the server finishes the queued requests and
flushes the log before it exits.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime
from typing import Any

import polars as pl
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from driftloop.config import Project
from driftloop.errors import RequestRefused
from driftloop.lake import EVENT_DATE
from driftloop.predict import PREDICTION_ID
from driftloop.serve.batcher import MicroBatcher, Scored
from driftloop.serve.logbook import SPILL_FOLDER, PredictionLog
from driftloop.serve.metrics import ServerMetrics
from driftloop.serve.models import LoadedModel, ModelHolder
from driftloop.serve.payloads import (
    Columns,
    from_mlflow,
    from_records,
    from_v2,
    openapi_body,
    request_schemas,
    v2_outputs,
)

PROJECT_ENV = "DRIFTLOOP_PROJECT"  # how `driftloop serve --workers N` tells each worker its project
Parser = Callable[..., Columns]


def create_app(project: Project, *, admin_token: str | None = None) -> FastAPI:
    """The server of ``project``; ``admin_token`` enables ``POST /admin/reload``."""
    settings = project.settings.serve
    holder = ModelHolder(project, shadow=settings.shadow)
    metrics = ServerMetrics()
    log = PredictionLog(
        project.lake, project.root / SPILL_FOLDER, capacity=settings.log_buffer_rows,
        flush_seconds=settings.flush_seconds,
    )  # fmt: skip
    server_id = f"serve-{uuid.uuid4().hex[:12]}"

    def on_batch(rows: int, seconds: float) -> None:
        metrics.batch_rows.observe(rows)
        metrics.batch_seconds.observe(seconds)

    batcher = MicroBatcher(
        lambda: (holder.champion, holder.challenger),
        lambda scored: log.add(logged_rows(project, scored, server_id)),  # once a batch, in its worker thread
        max_rows=settings.max_batch_rows,
        max_wait_ms=settings.max_wait_ms,
        on_batch=on_batch,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(holder.try_refresh)
        await asyncio.to_thread(log.start)
        batcher.start()
        poller = asyncio.create_task(_follow_champion(holder, settings.poll_seconds), name="driftloop-poller")
        try:
            yield
        finally:  # uvicorn has stopped accepting and answered what was in flight
            poller.cancel()
            with suppress(asyncio.CancelledError):
                await poller
            await batcher.stop()
            await asyncio.to_thread(log.close)

    app = FastAPI(
        title=f"driftloop: {project.settings.project.name}",
        description="Predictions of the project's champion; every one is logged for monitoring.",
        lifespan=lifespan,
    )
    app.state.holder, app.state.log, app.state.metrics = holder, log, metrics
    bodies = {k: openapi_body(v) for k, v in request_schemas(project.contract).items()}

    async def score(request: Request, parse: Parser) -> tuple[Scored, str]:
        body = await _read_json(request, settings.max_body_bytes)
        columns = parse(body, max_rows=settings.max_rows)
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
        return await batcher.score(columns, request_id), request_id

    @app.post("/v1/predict", summary="Predict for one record or a list of records (raw columns of the contract)",
              openapi_extra=bodies["v1"])  # fmt: skip
    async def predict(request: Request) -> dict[str, Any]:
        scored, request_id = await score(request, from_records)
        rows = scored.outputs.with_columns(pl.Series(PREDICTION_ID, scored.prediction_ids)).to_dicts()
        return {"model": scored.model.name, "model_version": scored.model.version, "request_id": request_id,
                "predictions": rows}  # fmt: skip

    @app.post(
        "/invocations", summary="MLflow's scoring protocol: dataframe_split, dataframe_records, instances, inputs"
    )
    async def invocations(request: Request) -> dict[str, Any]:
        scored, _ = await score(request, from_mlflow)
        return {"predictions": scored.outputs.to_dicts()}

    @app.post("/v2/models/{name}/infer", summary="Open Inference Protocol v2: one input tensor per column",
              openapi_extra=bodies["v2"])  # fmt: skip
    async def infer(name: str, request: Request) -> dict[str, Any]:
        _same_model(name, project)
        scored, request_id = await score(request, from_v2)
        return {"model_name": scored.model.name, "model_version": scored.model.version, "id": request_id,
                "outputs": v2_outputs(scored.outputs)}  # fmt: skip

    @app.get("/v2/models/{name}", summary="Open Inference Protocol v2: model metadata")
    async def model_metadata(name: str) -> dict[str, Any]:
        _same_model(name, project)
        model = _ready(holder.champion)
        contract = model.package.contract
        inputs = [c for c in contract.stored_columns if c not in contract.targets]
        return {
            "name": model.name,
            "versions": [model.version],
            "platform": "driftloop",
            "inputs": [
                {"name": c, "datatype": _v2_type(contract.columns[c].type.value), "shape": [-1]} for c in inputs
            ],
            "outputs": [{"name": t, "datatype": "FP64", "shape": [-1]} for t in contract.targets],
        }

    @app.get("/health/live", summary="The process is up")
    @app.get("/v2/health/live", summary="Open Inference Protocol v2: the process is up")
    async def live() -> dict[str, str]:
        return {"status": "live"}

    @app.get("/health/ready", summary="A model is loaded and requests are answered")
    @app.get("/v2/health/ready", summary="Open Inference Protocol v2: ready to answer")
    async def ready() -> dict[str, str]:
        model = _ready(holder.champion)
        return {"status": "ready", "model": model.name, "model_version": model.version}

    @app.get("/metrics", summary="Prometheus metrics")
    async def prometheus() -> Response:
        if holder.champion is not None:
            metrics.model_version.labels(holder.champion.name).set(float(holder.champion.version))
        metrics.model_swaps.set(holder.swaps)
        metrics.log_queue.set(log.depth)
        metrics.log_written.set(log.written)
        metrics.log_spilled.set(log.spilled)
        return Response(metrics.render(), media_type="text/plain; version=0.0.4")

    @app.post("/admin/reload", summary="Load the champion now (bearer token)")
    async def reload(request: Request) -> dict[str, Any]:
        _authorise(request, admin_token, settings.admin_token_env)
        changed = await asyncio.to_thread(holder.refresh)
        model = _ready(holder.champion)
        return {"reloaded": changed, "model_version": model.version}

    @app.exception_handler(RequestRefused)
    async def refused(_: Request, exc: RequestRefused) -> JSONResponse:
        return JSONResponse({"detail": str(exc), "errors": _jsonable(exc.errors)}, status_code=exc.status)

    @app.middleware("http")
    async def measure(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        endpoint = getattr(route, "path", "unmatched")
        metrics.requests.labels(endpoint, str(response.status_code)).inc()
        metrics.latency.labels(endpoint).observe(time.perf_counter() - started)
        return response

    return app


def app_from_environment() -> FastAPI:
    """The app of the project named by ``DRIFTLOOP_PROJECT``: what each ``--workers`` process runs."""
    project = Project.load(os.environ[PROJECT_ENV])
    return create_app(project, admin_token=os.environ.get(project.settings.serve.admin_token_env) or None)


def logged_rows(project: Project, scored: Scored, server_id: str) -> pl.DataFrame:
    """The rows that log a batch's predictions (and its shadow's) to ``predictions``."""
    frames = [_rows(project, scored.typed, scored.outputs, scored.model, scored.prediction_ids, server_id, "online")]
    if scored.shadow is not None:
        shadow, outputs = scored.shadow
        frames.append(_rows(project, scored.typed, outputs, shadow, scored.prediction_ids, server_id, "shadow"))
    return pl.concat(frames, how="vertical")


def _rows(
    project: Project, typed: pl.DataFrame, outputs: pl.DataFrame, model: LoadedModel, ids: list[str],
    server_id: str, source: str,
) -> pl.DataFrame:  # fmt: skip
    contract = project.contract
    now = datetime.now(UTC)
    clock = contract.event_time_column
    event_time = pl.col(clock).cast(pl.Datetime("us")) if clock else pl.lit(None, pl.Datetime("us"))
    event_time = pl.coalesce(event_time, pl.lit(now.replace(tzinfo=None)).cast(pl.Datetime("us")))
    entity = pl.col(contract.id_column).cast(pl.String) if contract.id_column else pl.lit(None, pl.String)
    inputs = [c for c in typed.columns if c not in contract.targets and not c.startswith("_")]
    meta = typed.select(
        pl.Series(PREDICTION_ID, ids, dtype=pl.String),
        entity.alias("entity_id"),
        event_time.alias("event_time"),
        pl.lit(now).cast(pl.Datetime("us", "UTC")).alias("scored_at"),
        pl.lit(model.name).alias("model_name"),
        pl.lit(model.version).alias("model_version"),
        pl.lit(model.run_id).alias("run_id"),
        pl.lit(server_id).alias("job_id"),
        pl.lit(source).alias("source"),
        pl.Series("request_id", [i.rpartition("|")[0] for i in ids], dtype=pl.String),
        pl.struct(inputs).struct.json_encode().alias("inputs"),
        event_time.cast(pl.Date).alias(EVENT_DATE),
    )
    return pl.concat([meta, outputs.cast(pl.Float64)], how="horizontal")


async def _follow_champion(holder: ModelHolder, seconds: float) -> None:
    while True:
        await asyncio.sleep(seconds)
        await asyncio.to_thread(holder.try_refresh)


async def _read_json(request: Request, limit: int) -> Any:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise RequestRefused(f"the body is {declared} bytes, more than the {limit} allowed ([serve] max_body_bytes)",
                             status=413)  # fmt: skip
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise RequestRefused(f"the body is more than the {limit} bytes allowed ([serve] max_body_bytes)",
                                 status=413)  # fmt: skip
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RequestRefused(f"the body is not valid JSON: {exc}") from exc


def _ready(model: LoadedModel | None) -> LoadedModel:
    if model is None:
        raise RequestRefused("no model is loaded: the project has no champion yet (`driftloop promote`)", status=503)
    return model


def _same_model(name: str, project: Project) -> None:
    if name != project.settings.project.name:
        raise RequestRefused(f"no model named {name!r} here; this server serves {project.settings.project.name!r}",
                             status=404)  # fmt: skip


def _authorise(request: Request, token: str | None, variable: str) -> None:
    if not token:
        raise RequestRefused(f"admin actions are disabled: set {variable} before starting the server", status=403)
    given = request.headers.get("authorization", "")
    if not given.lower().startswith("bearer "):
        raise RequestRefused("admin actions need 'Authorization: Bearer <token>'", status=401)
    if not hmac.compare_digest(given[7:].strip().encode(), token.encode()):
        raise RequestRefused("the bearer token is not the admin token", status=403)


def _v2_type(contract_type: str) -> str:
    return {"int": "INT64", "float": "FP64", "bool": "BOOL"}.get(contract_type, "BYTES")


def _jsonable(errors: list[dict[str, object]]) -> list[dict[str, object]]:
    return [{k: (v if isinstance(v, str | int | float | bool | list) or v is None else str(v)) for k, v in e.items()}
            for e in errors]  # fmt: skip
