"""FastAPI behind a central server's own routes: the extras only a central server has (the
champion's bundle, device reports, the dashboard) and the docs page of the whole API.

A device's server has none of it (:func:`driftloop.serve.operations.assembled`), so nothing a
device imports needs FastAPI.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from driftloop.errors import MissingDependency, RequestRefused

try:
    from fastapi import FastAPI, Request
    from fastapi.openapi.utils import get_openapi
    from fastapi.responses import JSONResponse
    from starlette.types import ASGIApp, Message, Receive, Scope, Send
except ModuleNotFoundError as missing:  # a central server's extra: say which (a device's server never gets here)
    raise MissingDependency.of(missing, extra="serve", purpose="the central prediction server") from missing
from driftloop.serve.metrics import ServerMetrics
from driftloop.serve.operations import Api, Behind
from driftloop.serve.routes import openapi_paths


def documented(extend: Callable[[FastAPI], None] | None = None) -> Behind:
    """What builds a FastAPI app to stand behind a server's routes: ``extend`` adds its extras,
    its spec shows the routes in front too, and its requests are counted in the server's metrics."""

    def behind(api: Api, metrics: ServerMetrics) -> ASGIApp:
        app = FastAPI(title=api.title, description=api.description)

        @app.exception_handler(RequestRefused)
        async def refused(_: Request, exc: RequestRefused) -> JSONResponse:
            return JSONResponse(exc.payload(), status_code=exc.status)

        if extend is not None:
            extend(app)

        def openapi() -> dict[str, Any]:
            if app.openapi_schema is None:
                spec = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
                spec["paths"] = {**openapi_paths(api.routes), **spec["paths"]}
                app.openapi_schema = spec
            return app.openapi_schema

        app.openapi = openapi  # type: ignore[method-assign]
        app.add_middleware(MeasuredRequests, metrics=metrics)
        return app

    return behind


class MeasuredRequests:
    """ASGI middleware counting requests by endpoint and status and timing them.

    Plain ASGI: Starlette's ``BaseHTTPMiddleware`` runs every request through an extra task and
    a response stream, a cost paid on every prediction.
    """

    def __init__(self, app: ASGIApp, metrics: ServerMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the server answers if the app fails before it starts a response

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            route: Any = scope.get("route")  # set by the router on the same scope
            # A mounted app's routes (the dashboard's, under /ui) are named with their mount.
            endpoint = scope.get("root_path", "") + route.path if hasattr(route, "path") else "unmatched"
            self.metrics.count(endpoint, status, time.perf_counter() - started)
