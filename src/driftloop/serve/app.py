"""The prediction server on uvicorn, answering with the project's champion.

Endpoints: ``POST /v1/predict`` (driftloop's JSON), ``POST /invocations`` (MLflow's scoring
formats), the Open Inference Protocol v2 (``/v2/models/{name}/infer``, ``/v2/models/{name}``,
``/v2/health/live|ready``), ``/health/live|ready``, ``/metrics`` (Prometheus) and
``POST /admin/reload`` (bearer token). These are plain ASGI (:mod:`driftloop.serve.routes`);
a central server puts FastAPI behind them for its extras and its docs, and the OpenAPI spec
covers both.
Every answered prediction is logged to ``predictions`` (:mod:`driftloop.serve.logbook`); on
shutdown the server finishes the queued requests and flushes the log before it exits.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import polars as pl

from driftloop.errors import MissingDependency, RequestRefused

try:
    from driftloop.serve.metrics import ServerMetrics
    from driftloop.serve.operations import V2_METADATA, Api, Behind, Followed, assembled, same_model, serving
    from driftloop.serve.routes import Call, Route, scoring_route
except ModuleNotFoundError as missing:  # the serving stack is an extra: say which
    raise MissingDependency.of(missing, extra="serve", purpose="the prediction server") from missing
from driftloop.data.contract import Contract
from driftloop.lake import EVENT_DATE, PREDICTION_ID
from driftloop.rollout.guards import GuardWatch
from driftloop.rollout.routing import sticky_key
from driftloop.serve.batcher import Answer, MicroBatcher, Scored
from driftloop.serve.deployments import Deployment, Deployments, Live, kinds
from driftloop.serve.loaded import LoadedModel
from driftloop.serve.logbook import SPILL_FOLDER, Logbook, PredictionLog
from driftloop.serve.payloads import (
    Rows,
    answer_schemas,
    from_mlflow,
    from_records,
    from_v2,
    output_schemas,
    request_schemas,
    v2_outputs,
)
from driftloop.settings.serve import ServeSettings

if TYPE_CHECKING:
    from fastapi import FastAPI
    from starlette.types import ASGIApp

    from driftloop.project import Project

# How `driftloop serve --workers N` tells each worker its project.
PROJECT_ENV = "DRIFTLOOP_PROJECT"

# Turns a request's body into rows: one per protocol.
Parser = Callable[..., Rows]


def create_app(project: Project, *, admin_token: str | None = None) -> ASGIApp:
    """The server of ``project``: its deployments, followed in the registry, and every answer
    logged to its lake; ``admin_token`` enables ``POST /admin/reload``.

    The server's routes are plain ASGI (:mod:`driftloop.serve.routes`) in front of a FastAPI app
    that answers the rest (bundles, device reports) and writes the OpenAPI spec of all of them.
    """
    settings = project.settings.serve
    server_id = f"serve-{uuid.uuid4().hex[:12]}"
    contract = project.contract
    log = PredictionLog(
        project.lake, project.root / SPILL_FOLDER, capacity=settings.log_buffer_rows,
        flush_seconds=settings.flush_seconds, render=lambda batches: logged_rows(contract, batches, server_id),
    )  # fmt: skip
    from driftloop.serve.documented import documented  # without FastAPI, it names the extra
    from driftloop.serve.guarding import guard_rollouts

    deployments = Deployments(project, kinds(settings))
    watch = GuardWatch()

    def for_devices(app: FastAPI) -> None:  # the champion as a bundle, and where devices report
        from driftloop.serve.bundles import add_bundle_route
        from driftloop.serve.devices import add_device_route

        add_bundle_route(app, project, deployments)
        add_device_route(app, project, admin_token, settings.admin_token_env)

    return scoring_app(
        Served(project.model_name, contract, f"driftloop: {project.settings.project.name}", server_id),
        settings, deployments, log, admin_token=admin_token, behind=documented(for_devices), watch=watch,
        background=[lambda: guard_rollouts(project, deployments, watch)],
    )  # fmt: skip


@dataclass(frozen=True)
class Served:
    """What a table server serves, whoever keeps its versions: the model's name, the contract its
    requests follow, the server's title and its id (the first part of every request id)."""

    model_name: str
    contract: Contract
    title: str
    server_id: str


class Answering(Followed, Protocol):
    """Deployments a table server answers with: the set in front of traffic now, kept in step
    with wherever its versions come from."""

    live: Live


def scoring_app(
    served: Served,
    settings: ServeSettings,
    deployments: Answering,
    log: Logbook,
    *,
    admin_token: str | None,
    behind: Behind | None = None,
    extra: Sequence[Route] = (),
    watch: GuardWatch | None = None,
    background: Sequence[Callable[[], Coroutine[Any, Any, None]]] = (),
) -> ASGIApp:
    """A table model's server: ``deployments`` answer (the registry's, or a device's bundle),
    ``log`` keeps every answer (the lake, or the device's store); ``behind`` stands behind its
    routes (a central server's FastAPI, with its bundles and docs) and ``extra`` are routes only
    one kind of server has (a device's labels); ``watch`` sees each arm of a canary, and
    ``background`` runs for the server's life (a central one's rollout guards)."""
    metrics = ServerMetrics()
    numbers = itertools.count(1)  # request ids: unique per server, and servers have unique ids
    contract, server_id = served.contract, served.server_id

    def on_batch(rows: int, seconds: float) -> None:
        metrics.batch_rows.observe(rows)
        metrics.batch_seconds.observe(seconds)

    batcher = MicroBatcher(
        lambda: deployments.live,
        lambda scored: log.add(scored, scored.answered),  # rows are built by the log's writer
        max_rows=settings.max_batch_rows,
        max_wait_ms=settings.max_wait_ms,
        gap_ms=settings.max_gap_ms,
        on_batch=on_batch,
        watch=watch,
    )

    @asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        async with serving(deployments, batcher, [log], settings.poll_seconds):
            tasks = [asyncio.create_task(job(), name="driftloop-background") for job in background]
            try:
                yield
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

    schemas = request_schemas(contract)
    ids = contract.id_columns  # a canary sends an entity to the same arm every time

    async def score(call: Call, parse: Parser) -> tuple[Answer, str]:
        rows = parse(call.body, max_rows=settings.max_rows)
        request_id = call.request_id or f"{server_id}-{next(numbers)}"
        return await batcher.score(rows, request_id, sticky_key(rows, ids, request_id)), request_id

    async def predict(call: Call) -> dict[str, Any]:
        scored, request_id = await score(call, from_records)
        rows = [{**row, PREDICTION_ID: i} for row, i in zip(scored.outputs, scored.prediction_ids, strict=True)]
        return {"model": scored.model.name, "model_version": scored.model.version, "request_id": request_id,
                "predictions": rows}  # fmt: skip

    async def invocations(call: Call) -> dict[str, Any]:
        scored, _request_id = await score(call, from_mlflow)
        return {"predictions": scored.outputs}

    async def infer(call: Call) -> dict[str, Any]:
        same_model(call.params["name"], served.model_name)
        scored, request_id = await score(call, from_v2)
        return {"model_name": scored.model.name, "model_version": scored.model.version, "id": request_id,
                "outputs": v2_outputs(scored.outputs)}  # fmt: skip

    async def model_metadata(call: Call) -> dict[str, Any]:
        same_model(call.params["name"], served.model_name)
        model = _ready(deployments.live.answering)
        contract = model.package.contract
        inputs = [c for c in contract.stored_columns if c not in contract.targets]
        return {
            "name": model.name,
            "versions": [model.version],
            "platform": "driftloop",
            "inputs": [
                {"name": c, "datatype": _v2_type(contract.columns[c].type.value), "shape": [-1]} for c in inputs
            ],
            "outputs": [
                {"name": name, "datatype": _v2_type(schema.get("type", "number")), "shape": [-1]}
                for name, schema in output_schemas(contract).items()
            ],
        }

    answers = answer_schemas(contract)
    routes = [
        scoring_route("/v1/predict", predict,
                      "Predict for one record or a list of records (raw columns of the contract)",
                      schemas["v1"], answers["v1"]),
        scoring_route("/invocations", invocations,
                      "MLflow's scoring protocol: dataframe_split, dataframe_records, instances, inputs",
                      schemas["mlflow"], answers["mlflow"]),
        scoring_route("/v2/models/{name}/infer", infer, "Open Inference Protocol v2: one input tensor per column",
                      schemas["v2"], answers["v2"]),
        Route(method="GET", path="/v2/models/{name}", handler=model_metadata, answer_schema=V2_METADATA,
              refusals=("404", "503"), summary="Open Inference Protocol v2: model metadata"),
        *extra,
    ]  # fmt: skip
    api = Api(served.title, "Predictions of the champion; every one is logged for monitoring.", routes)
    return assembled(api, deployments, log, metrics=metrics, admin_token=admin_token,
                     token_variable=settings.admin_token_env, behind=behind, lifespan=lifespan,
                     max_body_bytes=settings.max_body_bytes)  # fmt: skip


def app_of(project: Project, *, admin_token: str | None = None) -> ASGIApp:
    """The server of ``project``: of its table model, or of its image network."""
    if project.settings.images is not None:
        from driftloop.serve.image_app import create_image_app

        return create_image_app(project, admin_token=admin_token)
    return create_app(project, admin_token=admin_token)


def app_from_environment() -> ASGIApp:
    """The app of the project named by ``DRIFTLOOP_PROJECT``: what each ``--workers`` process runs."""
    from driftloop.project import Project

    project = Project.load(os.environ[PROJECT_ENV])
    return app_of(project, admin_token=os.environ.get(project.settings.serve.admin_token_env) or None)


def logged_rows(contract: Contract, batches: list[Scored], server_id: str) -> pl.DataFrame:
    """The rows that log scored batches (and their shadows) to ``predictions``: one frame per
    model and source, so building them costs the same for one batch or a thousand."""
    groups: dict[tuple[str, str, str, str], list[tuple[Scored, pl.DataFrame]]] = {}
    for scored in batches:
        groups.setdefault(_identity(scored.deployment), []).append((scored, scored.outputs))
        for shadow, outputs in scored.shadows:
            groups.setdefault(_identity(shadow), []).append((scored, outputs))
    frames = [_rows(contract, members, source, name, version, run_id, server_id)
              for (source, name, version, run_id), members in groups.items()]  # fmt: skip
    return pl.concat(frames, how="diagonal_relaxed")


def _identity(deployment: Deployment) -> tuple[str, str, str, str]:
    """What a logged row says made it: the source its deployment logs as, and the model."""
    model = deployment.model
    return deployment.source, model.name, model.version, model.run_id


def _rows(
    contract: Contract, members: list[tuple[Scored, pl.DataFrame]], source: str, name: str, version: str,
    run_id: str, server_id: str,
) -> pl.DataFrame:  # fmt: skip
    typed = pl.concat([scored.typed for scored, _ in members], how="vertical_relaxed")
    outputs = pl.concat([outputs for _, outputs in members], how="vertical_relaxed")
    ids = pl.Series(PREDICTION_ID, [i for scored, _ in members for i in scored.prediction_ids], dtype=pl.String)
    scored_at = pl.Series("_scored_at", [s.scored_at for s, o in members for _ in range(o.height)])
    if any(scored.keep is not None for scored, _ in members):  # a rollout's arms: the rows each answered, at once
        keep = pl.Series(np.concatenate([np.ones(o.height, bool) if s.keep is None else s.keep for s, o in members]))
        typed, outputs, ids, scored_at = (
            typed.filter(keep),
            outputs.filter(keep),
            ids.filter(keep),
            scored_at.filter(keep),
        )
    event_time = contract.clock.instants() if contract.clock else pl.lit(None, pl.Datetime("us"))
    # A request without an event time is logged at the time it was scored.
    event_time = pl.coalesce(event_time, pl.col("_scored_at").dt.replace_time_zone(None)).cast(pl.Datetime("us"))
    inputs = [c for c in typed.columns if c not in contract.targets and not c.startswith("_")]
    meta = typed.with_columns(scored_at.cast(pl.Datetime("us", "UTC"))).select(
        ids,
        contract.entity_id().alias("entity_id"),
        event_time.alias("event_time"),
        pl.col("_scored_at").alias("scored_at"),
        pl.lit(name).alias("model_name"),
        pl.lit(version).alias("model_version"),
        pl.lit(run_id).alias("run_id"),
        pl.lit(server_id).alias("job_id"),
        pl.lit(source).alias("source"),
        pl.Series("request_id", [i.rpartition("|")[0] for i in ids.to_list()], dtype=pl.String),
        pl.struct(inputs).struct.json_encode().alias("inputs"),
        event_time.cast(pl.Date).alias(EVENT_DATE),
    )
    return pl.concat([meta, outputs], how="horizontal")


def _ready(answering: Deployment | None) -> LoadedModel:
    """The model answering requests; a 503 before there is one."""
    if answering is None:
        raise RequestRefused("no model is loaded: the project has no champion yet (`driftloop promote`)", status=503)
    return answering.model


def _v2_type(type_name: str) -> str:
    """The v2 datatype of a contract type ("int") or a JSON schema type ("integer")."""
    known = {"int": "INT64", "integer": "INT64", "float": "FP64", "number": "FP64", "bool": "BOOL", "boolean": "BOOL"}
    return known.get(type_name, "BYTES")
