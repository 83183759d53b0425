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
import gc
import hmac
import itertools
import os
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from typing import Any

import orjson
import polars as pl
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from driftloop.config import Project
from driftloop.errors import RequestRefused
from driftloop.lake import EVENT_DATE
from driftloop.predict import PREDICTION_ID
from driftloop.serve.batcher import Answer, MicroBatcher, Scored
from driftloop.serve.logbook import SPILL_FOLDER, PredictionLog
from driftloop.serve.metrics import MeasuredRequests, ServerMetrics
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
    server_id = f"serve-{uuid.uuid4().hex[:12]}"
    numbers = itertools.count(1)  # request ids: unique per server, and servers have unique ids
    log = PredictionLog(
        project.lake, project.root / SPILL_FOLDER, capacity=settings.log_buffer_rows,
        flush_seconds=settings.flush_seconds, render=lambda batches: logged_rows(project, batches, server_id),
    )  # fmt: skip

    def on_batch(rows: int, seconds: float) -> None:
        metrics.batch_rows.observe(rows)
        metrics.batch_seconds.observe(seconds)

    batcher = MicroBatcher(
        lambda: (holder.champion, holder.challenger),
        lambda scored: log.add(scored, scored.outputs.height),  # rows are built by the log's writer
        max_rows=settings.max_batch_rows,
        max_wait_ms=settings.max_wait_ms,
        on_batch=on_batch,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(holder.try_refresh)
        await asyncio.to_thread(log.start)
        # Everything loaded so far (libraries, the model) lives as long as the server: out of the
        # collector's sight, a full collection no longer walks it in the middle of requests
        # (those pauses made the p99 at 32 connections 260 ms against a 35 ms median).
        gc.freeze()
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

    async def score(request: Request, parse: Parser) -> tuple[Answer, str]:
        body = await _read_json(request, settings.max_body_bytes)
        columns = parse(body, max_rows=settings.max_rows)
        request_id = request.headers.get("x-request-id") or f"{server_id}-{next(numbers)}"
        return await batcher.score(columns, request_id), request_id

    @app.post("/v1/predict", summary="Predict for one record or a list of records (raw columns of the contract)",
              openapi_extra=bodies["v1"])  # fmt: skip
    async def predict(request: Request) -> Response:
        scored, request_id = await score(request, from_records)
        rows = [{**row, PREDICTION_ID: i} for row, i in zip(scored.outputs, scored.prediction_ids, strict=True)]
        return _json({"model": scored.model.name, "model_version": scored.model.version, "request_id": request_id,
                      "predictions": rows})  # fmt: skip

    @app.post(
        "/invocations", summary="MLflow's scoring protocol: dataframe_split, dataframe_records, instances, inputs"
    )
    async def invocations(request: Request) -> Response:
        scored, _ = await score(request, from_mlflow)
        return _json({"predictions": scored.outputs})

    @app.post("/v2/models/{name}/infer", summary="Open Inference Protocol v2: one input tensor per column",
              openapi_extra=bodies["v2"])  # fmt: skip
    async def infer(name: str, request: Request) -> Response:
        _same_model(name, project)
        scored, request_id = await score(request, from_v2)
        return _json({"model_name": scored.model.name, "model_version": scored.model.version, "id": request_id,
                      "outputs": v2_outputs(scored.outputs)})  # fmt: skip

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

    app.add_middleware(MeasuredRequests, metrics=metrics)
    return app


def app_from_environment() -> FastAPI:
    """The app of the project named by ``DRIFTLOOP_PROJECT``: what each ``--workers`` process runs."""
    project = Project.load(os.environ[PROJECT_ENV])
    return create_app(project, admin_token=os.environ.get(project.settings.serve.admin_token_env) or None)


def logged_rows(project: Project, batches: list[Scored], server_id: str) -> pl.DataFrame:
    """The rows that log scored batches (and their shadows) to ``predictions``: one frame per
    model and source, so building them costs the same for one batch or a thousand."""
    groups: dict[tuple[str, str, str, str], list[tuple[Scored, pl.DataFrame]]] = {}
    for scored in batches:
        groups.setdefault(("online", *_identity(scored.model)), []).append((scored, scored.outputs))
        if scored.shadow is not None:
            shadow, outputs = scored.shadow
            groups.setdefault(("shadow", *_identity(shadow)), []).append((scored, outputs))
    frames = [_rows(project, members, source, name, version, run_id, server_id)
              for (source, name, version, run_id), members in groups.items()]  # fmt: skip
    return pl.concat(frames, how="diagonal_relaxed")


def _identity(model: LoadedModel) -> tuple[str, str, str]:
    return model.name, model.version, model.run_id


def _rows(
    project: Project, members: list[tuple[Scored, pl.DataFrame]], source: str, name: str, version: str, run_id: str,
    server_id: str,
) -> pl.DataFrame:  # fmt: skip
    contract = project.contract
    typed = pl.concat([scored.typed for scored, _ in members], how="vertical_relaxed")
    outputs = pl.concat([outputs for _, outputs in members], how="vertical_relaxed")
    ids = [i for scored, _ in members for i in scored.prediction_ids]
    scored_at = pl.Series("_scored_at", [s.scored_at for s, o in members for _ in range(o.height)])
    clock = contract.event_time_column
    event_time = pl.col(clock).cast(pl.Datetime("us")) if clock else pl.lit(None, pl.Datetime("us"))
    # A request without an event time is logged at the time it was scored.
    event_time = pl.coalesce(event_time, pl.col("_scored_at").dt.replace_time_zone(None)).cast(pl.Datetime("us"))
    entity = pl.col(contract.id_column).cast(pl.String) if contract.id_column else pl.lit(None, pl.String)
    inputs = [c for c in typed.columns if c not in contract.targets and not c.startswith("_")]
    meta = typed.with_columns(scored_at.cast(pl.Datetime("us", "UTC"))).select(
        pl.Series(PREDICTION_ID, ids, dtype=pl.String),
        entity.alias("entity_id"),
        event_time.alias("event_time"),
        pl.col("_scored_at").alias("scored_at"),
        pl.lit(name).alias("model_name"),
        pl.lit(version).alias("model_version"),
        pl.lit(run_id).alias("run_id"),
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
        return orjson.loads(body)  # a C parser: json.loads was a tenth of the event loop's time
    except orjson.JSONDecodeError as exc:
        raise RequestRefused(f"the body is not valid JSON: {exc}") from exc


def _json(payload: Any) -> Response:
    """A JSON answer serialised in one call (FastAPI's encoder would first walk every value);
    a NaN output is written as null, as JSON has no NaN."""
    return Response(orjson.dumps(payload), media_type="application/json")


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
