"""What every prediction server has beside its scoring routes, whatever it serves: its life
(:func:`serving`: load, follow the registry, drain and flush at the end), liveness, readiness,
Prometheus metrics and the admin reload with its bearer token (:func:`operation_routes`), and
how a server's routes are put together with these and what stands behind them
(:func:`assembled`): a central server's FastAPI, or on a device nothing but the routes and
their OpenAPI spec."""

from __future__ import annotations

import asyncio
import gc
import hmac
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from driftloop.about import VERSION
from driftloop.errors import RequestRefused
from driftloop.serve.logbook import Logbook
from driftloop.serve.metrics import ServerMetrics
from driftloop.serve.routes import Call, Lifespan, Route, Routes, openapi_paths

if TYPE_CHECKING:
    from starlette.types import ASGIApp

STATUS = {"type": "object", "properties": {"status": {"type": "string"}}, "required": ["status"]}
READY = {
    "type": "object",
    "properties": {"status": {"type": "string"}, "model": {"type": "string"}, "model_version": {"type": "string"}},
    "required": ["status", "model", "model_version"],
}
RELOADED = {
    "type": "object",
    "properties": {"reloaded": {"type": "boolean"}, "model_version": {"type": "string"}},
    "required": ["reloaded", "model_version"],
}
PROMETHEUS = "text/plain; version=0.0.4"
# The Open Inference Protocol v2's model metadata.
V2_METADATA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "versions": {"type": "array", "items": {"type": "string"}},
                   "platform": {"type": "string"}, "inputs": {"type": "array", "items": {"type": "object"}},
                   "outputs": {"type": "array", "items": {"type": "object"}}},
    "required": ["name", "versions", "platform", "inputs", "outputs"],
}  # fmt: skip


class Batching(Protocol):
    """A server's micro-batcher: started with the server, and stopped once the queue is scored."""

    def start(self) -> None: ...

    async def stop(self) -> None: ...


class Followed(Protocol):
    """What a server answers with, kept in step with the registry: a table server's deployments,
    an image server's champion."""

    swaps: int  # times the answering version changed

    def refresh(self) -> bool:
        """Load what the registry names now; whether the answering version changed."""
        ...

    def try_refresh(self) -> None:
        """:meth:`refresh`, logging (not raising) a failure."""
        ...

    def serving(self) -> tuple[str, str] | None:
        """The name and version of the model answering (None before there is one)."""
        ...


@asynccontextmanager
async def serving(
    followed: Followed, batcher: Batching, logs: Sequence[Logbook], poll_seconds: float
) -> AsyncIterator[None]:
    """A server's life: the champion loaded, the logs started (writing what an earlier run spilled),
    the batcher and the registry's follower running; at the end (uvicorn has stopped accepting
    and answered what was in flight), the queue scored and the log flushed."""
    await asyncio.to_thread(followed.try_refresh)
    for log in logs:
        await asyncio.to_thread(log.start)
    # Everything loaded so far (libraries, the model) lives as long as the server: out of the
    # collector's sight, a full collection no longer walks it in the middle of requests
    # (those pauses made the p99 at 32 connections 260 ms against a 35 ms median).
    gc.freeze()
    batcher.start()
    poller = asyncio.create_task(follow_registry(followed, poll_seconds), name="driftloop-poller")
    try:
        yield
    finally:
        poller.cancel()
        with suppress(asyncio.CancelledError):
            await poller
        await batcher.stop()
        for log in logs:
            await asyncio.to_thread(log.close)


def operation_routes(
    followed: Followed, metrics: ServerMetrics, log: Logbook, *, admin_token: str | None, token_variable: str
) -> list[Route]:
    """The routes every server has; ``admin_token`` enables ``POST /admin/reload``
    (``token_variable`` names where it is set, for the refusal when it is not)."""

    async def live(_: Call) -> dict[str, str]:
        return {"status": "live"}

    async def ready(_: Call) -> dict[str, str]:
        name, version = ready_model(followed)
        return {"status": "ready", "model": name, "model_version": version}

    async def prometheus(_: Call) -> bytes:
        serving = followed.serving()
        if serving is not None:
            metrics.model_version.labels(serving[0]).set(float(serving[1]))
        metrics.model_swaps.set(followed.swaps)
        metrics.log_queue.set(log.depth)
        metrics.log_written.set(log.written)
        metrics.log_spilled.set(log.spilled)
        return metrics.render()

    async def reload(call: Call) -> dict[str, Any]:
        authorise(call.header("authorization"), admin_token, token_variable)
        changed = await asyncio.to_thread(followed.refresh)
        return {"reloaded": changed, "model_version": ready_model(followed)[1]}

    return [
        Route(method="GET", path="/health/live", handler=live, summary="The process is up", answer_schema=STATUS),
        Route(method="GET", path="/v2/health/live", handler=live, answer_schema=STATUS,
              summary="Open Inference Protocol v2: the process is up"),
        Route(method="GET", path="/health/ready", handler=ready, answer_schema=READY, refusals=("503",),
              summary="A model is loaded and requests are answered"),
        Route(method="GET", path="/v2/health/ready", handler=ready, answer_schema=READY, refusals=("503",),
              summary="Open Inference Protocol v2: ready to answer"),
        Route(method="GET", path="/metrics", handler=prometheus, summary="Prometheus metrics",
              answer_schema={"type": "string"}, media_type=PROMETHEUS),
        Route(method="POST", path="/admin/reload", handler=reload, answer_schema=RELOADED,
              refusals=("401", "403", "503"), summary="Load the champion now (bearer token)"),
    ]  # fmt: skip


@dataclass(frozen=True)
class Api:
    """A server's own routes with its title and description: what its OpenAPI spec shows."""

    title: str
    description: str
    routes: list[Route]

    def spec(self) -> dict[str, Any]:
        """The OpenAPI document of the routes."""
        info = {"title": self.title, "description": self.description, "version": VERSION}
        return {"openapi": "3.1.0", "info": info, "paths": openapi_paths(self.routes)}


# Builds what stands behind a server's routes, given them (for its spec) and the server's metrics.
Behind = Callable[[Api, ServerMetrics], "ASGIApp"]


def assembled(
    api: Api, followed: Followed, log: Logbook, *, metrics: ServerMetrics, admin_token: str | None,
    token_variable: str, behind: Behind | None, lifespan: Lifespan, max_body_bytes: int,
) -> Routes:  # fmt: skip
    """The server: ``api``'s routes and those every server has (:func:`operation_routes`) in front
    of ``behind``'s app; with nothing behind (a device's server), the routes alone, and
    ``GET /openapi.json`` their spec."""
    operations = operation_routes(followed, metrics, log, admin_token=admin_token, token_variable=token_variable)
    api = Api(api.title, api.description, [*api.routes, *operations])
    routes = api.routes
    if behind is None:  # nothing to write the spec: the routes serve their own
        spec = api.spec()

        async def openapi(_: Call) -> dict[str, Any]:
            return spec

        routes = [*routes, Route(method="GET", path="/openapi.json", handler=openapi,
                                 summary="This server's OpenAPI spec", answer_schema={"type": "object"})]  # fmt: skip
    return Routes(routes, behind=None if behind is None else behind(api, metrics), lifespan=lifespan, metrics=metrics,
                  max_body_bytes=max_body_bytes)  # fmt: skip


def same_model(name: str, served: str) -> None:
    """A 404 for a request to a model of another name than the one ``served``."""
    if name != served:
        raise RequestRefused(f"no model named {name!r} here; this server serves {served!r}", status=404)


def ready_model(followed: Followed) -> tuple[str, str]:
    """The name and version of the model answering; a 503 before there is one."""
    serving = followed.serving()
    if serving is None:
        raise RequestRefused("no model is loaded: the project has no champion yet (`driftloop promote`)", status=503)
    return serving


async def follow_registry(followed: Followed, seconds: float) -> None:
    """Look every ``seconds`` whether the registry moved the champion, and load it (in a thread)."""
    while True:
        await asyncio.sleep(seconds)
        await asyncio.to_thread(followed.try_refresh)


def authorise(given: str | None, token: str | None, variable: str) -> None:
    """Let an admin request through with the right bearer token (``given``: its Authorization
    header); a 401 or 403 otherwise."""
    if not token:
        raise RequestRefused(f"admin actions are disabled: set {variable} before starting the server", status=403)
    given = given or ""
    if not given.lower().startswith("bearer "):
        raise RequestRefused("admin actions need 'Authorization: Bearer <token>'", status=401)
    if not hmac.compare_digest(given[7:].strip().encode(), token.encode()):
        raise RequestRefused("the bearer token is not the admin token", status=403)
