"""A server's own routes as plain ASGI, and what stands behind them.

Every route a prediction server has whatever it serves (scoring, health, metrics, the admin
reload, model metadata) is answered here, with no web framework: scoring requests are the
traffic of a prediction server, and FastAPI's per-request machinery (its middleware stack,
dependency solving, response handling) was about half of the event loop's time on them; and a
device's server, which has nothing else, does not import FastAPI at all (15 MB of its memory).
A central server puts FastAPI behind these routes for its own extras (bundles, device reports,
the dashboard) and its docs page; :func:`openapi_paths` writes these routes' part of its spec.

A handler takes a :class:`Call` (the parsed body, the path parameters, the headers) and returns
the answer's payload: JSON, or the bytes of the route's media type; a
:class:`~driftloop.errors.RequestRefused` becomes its status with the message and field-level
errors, anything else a logged 500.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from driftloop.errors import RequestRefused

if TYPE_CHECKING:  # Starlette's ASGI types: a name for the typing, not a library a device needs
    from starlette.types import ASGIApp, Receive, Scope, Send

    from driftloop.serve.metrics import ServerMetrics

logger = logging.getLogger("driftloop.serve")
# Turns a request's body (and its content type) into what the handler takes.
BodyParser = Callable[[bytes, str | None], Any]
JSON = "application/json"
# The refusals every scoring route may answer with (and 404 where a path names the model).
SCORING_REFUSALS = ("413", "422", "503")


def json_body(body: bytes, content_type: str | None = None) -> Any:
    """The body parsed as JSON (whatever the content type says: clients often leave it out)."""
    try:
        return orjson.loads(body)  # a C parser: json.loads was a tenth of the event loop's time
    except orjson.JSONDecodeError as exc:
        raise RequestRefused(f"the body is not valid JSON: {exc}") from exc


@dataclass(frozen=True)
class Call:
    """What a handler is given: the parsed body (None where its route reads none), the path's
    parameters and the request's ASGI scope (its headers)."""

    body: Any
    params: dict[str, str]
    scope: Scope

    def header(self, name: str) -> str | None:
        """The value of the header ``name`` (lower case), None without one."""
        return _header(self.scope, name.encode())

    @property
    def request_id(self) -> str | None:
        """The client's own id of its request (``X-Request-Id``), if it gave one."""
        return self.header("x-request-id")


Handler = Callable[[Call], Awaitable[Any]]


@dataclass(frozen=True, kw_only=True)
class Route:
    """An endpoint: its method, its path (``{name}`` marks a path parameter), its handler, and
    what the OpenAPI spec says of it. ``parse`` reads the body (None: the route reads none)."""

    method: str
    path: str
    handler: Handler
    summary: str
    answer_schema: dict[str, Any]
    refusals: tuple[str, ...] = ()
    body_schema: dict[str, Any] | None = None
    parse: BodyParser | None = None
    # The spec's request content by media type, where the body is not only JSON of body_schema.
    body_content: dict[str, Any] | None = None
    # What the handler returns: a payload written as JSON, or the bytes (or text) of this type.
    media_type: str = JSON

    def pattern(self) -> re.Pattern[str]:
        return re.compile("^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(self.path)) + "$")


def scoring_route(
    path: str, handler: Handler, summary: str, body_schema: dict[str, Any], answer_schema: dict[str, Any],
    parse: BodyParser = json_body, body_content: dict[str, Any] | None = None,
) -> Route:  # fmt: skip
    """A POST that scores: its body read with ``parse``, its refusals those of every scoring route."""
    refusals = ("404", *SCORING_REFUSALS) if "{" in path else SCORING_REFUSALS
    return Route(method="POST", path=path, handler=handler, summary=summary, answer_schema=answer_schema,
                 refusals=refusals, body_schema=body_schema, parse=parse, body_content=body_content)  # fmt: skip


# The methods of one path -> their routes.
Methods = dict[str, Route]
Lifespan = Callable[[], AbstractAsyncContextManager[None]]


class Routes:
    """ASGI app answering ``routes`` and handing every other request to ``behind`` (a 404 where
    nothing is behind); ``lifespan`` is the server's life, run here whatever is behind."""

    def __init__(
        self, routes: list[Route], *, behind: ASGIApp | None, lifespan: Lifespan | None, metrics: ServerMetrics,
        max_body_bytes: int,
    ) -> None:  # fmt: skip
        self.behind = behind
        self.lifespan = lifespan
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self._exact: dict[str, Methods] = {}  # one dict lookup for most requests
        patterns: dict[str, Methods] = {}
        for route in routes:
            (patterns if "{" in route.path else self._exact).setdefault(route.path, {})[route.method] = route
        self._patterns = [(next(iter(m.values())).pattern(), m) for m in patterns.values()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan" and self.lifespan is not None:
            await self._live(receive, send)
            return
        methods, params = self._match(scope) if scope["type"] == "http" else (None, {})
        if methods is None:
            await self._pass_on(scope, receive, send)
            return
        started = time.perf_counter()
        method = scope["method"]
        route = methods.get("GET" if method == "HEAD" else method)  # a HEAD is a GET's answer without the body
        if route is None:
            allowed = ", ".join(methods)
            await _send(send, 405, orjson.dumps({"detail": f"{scope['path']} answers {allowed} only"}), JSON,
                        [(b"allow", allowed.encode())])  # fmt: skip
            self.metrics.count(next(iter(methods.values())).path, 405, time.perf_counter() - started)
            return
        status, payload = await self._answer(route, params, scope, receive)
        if status == 0:
            return  # the client went away before its body arrived: nobody to answer
        if status == 200 and route.media_type != JSON:
            body, media_type = payload.encode() if isinstance(payload, str) else payload, route.media_type
        else:
            body, media_type = orjson.dumps(payload), JSON  # a NaN output is written as null: JSON has no NaN
        await _send(send, status, body, media_type, bare=method == "HEAD")
        self.metrics.count(route.path, status, time.perf_counter() - started)

    def _match(self, scope: Scope) -> tuple[Methods | None, dict[str, str]]:
        path = scope["path"]
        methods = self._exact.get(path)
        if methods is not None:
            return methods, {}
        for pattern, candidates in self._patterns:
            found = pattern.match(path)
            if found:
                return candidates, found.groupdict()
        return None, {}

    async def _pass_on(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.behind is not None:
            await self.behind(scope, receive, send)
        elif scope["type"] == "http":
            await _send(send, 404, orjson.dumps({"detail": "Not Found"}), JSON)
            self.metrics.count("unmatched", 404, 0.0)

    async def _answer(self, route: Route, params: dict[str, str], scope: Scope, receive: Receive) -> tuple[int, Any]:
        """The status and payload of the answer; status 0 when the client has gone."""
        try:
            body = None
            if route.parse is not None:
                raw = await self._read(scope, receive)
                if raw is None:
                    return 0, None
                body = route.parse(raw, _header(scope, b"content-type"))
            return 200, await route.handler(Call(body, params, scope))
        except RequestRefused as refused:
            return refused.status, refused.payload()
        except Exception:
            logger.exception("%s %s failed", scope["method"], scope["path"])
            return 500, {"detail": "the server failed on this request; its log has the traceback"}

    async def _read(self, scope: Scope, receive: Receive) -> bytes | None:
        limit = self.max_body_bytes
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise RequestRefused(
                f"the body is {declared} bytes, more than the {limit} allowed ([serve] max_body_bytes)", status=413
            )
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            body += message.get("body", b"")
            if len(body) > limit:
                raise RequestRefused(f"the body is more than the {limit} bytes allowed ([serve] max_body_bytes)",
                                     status=413)  # fmt: skip
            if not message.get("more_body", False):
                return bytes(body)

    async def _live(self, receive: Receive, send: Send) -> None:
        """The ASGI lifespan: the server's life entered at startup and left at shutdown; a failure
        of either is logged and told to the server (which then does not start, or says so)."""
        assert self.lifespan is not None
        async with AsyncExitStack() as life:
            await receive()  # lifespan.startup
            try:
                await life.enter_async_context(self.lifespan())
            except Exception as exc:
                logger.exception("the server failed to start")
                await send({"type": "lifespan.startup.failed", "message": f"{type(exc).__name__}: {exc}"})
                return
            await send({"type": "lifespan.startup.complete"})
            await receive()  # lifespan.shutdown
            try:
                await life.aclose()
            except Exception as exc:
                logger.exception("the server failed to shut down cleanly")
                await send({"type": "lifespan.shutdown.failed", "message": f"{type(exc).__name__}: {exc}"})
                return
        await send({"type": "lifespan.shutdown.complete"})


def openapi_paths(routes: list[Route]) -> dict[str, Any]:
    """The OpenAPI ``paths`` entries of ``routes``."""
    paths: dict[str, Any] = {}
    for route in routes:
        names = re.findall(r"\{(\w+)\}", route.path)
        schema = {"schema": route.answer_schema}
        answer = {"description": "The answer", "content": {route.media_type: schema}}
        operation: dict[str, Any] = {
            "summary": route.summary,
            "operationId": re.sub(r"\W+", "_", route.path).strip("_") + "_" + route.method.lower(),
            "parameters": [{"name": n, "in": "path", "required": True, "schema": {"type": "string"}} for n in names],
            "responses": {"200": answer, **refusal_responses(*route.refusals)},
        }
        if route.body_schema is not None:
            content = route.body_content or {JSON: {"schema": route.body_schema}}
            operation["requestBody"] = {"required": True, "content": content}
        paths.setdefault(route.path, {})[route.method.lower()] = operation
    return paths


REFUSALS = {
    "401": "No bearer token was given",
    "403": "The bearer token is wrong, or admin actions are disabled",
    "404": "No model of that name is served here",
    "409": "It conflicts with what is already kept (a prediction labelled otherwise)",
    "413": "The body or the number of rows is over the limit ([serve] max_body_bytes, max_rows)",
    "422": "Not JSON, not the protocol, or rows the data contract refuses (field-level errors)",
    "503": "No model is loaded yet: the project has no champion",
}
REFUSED_SCHEMA = {
    "type": "object",
    "properties": {"detail": {"type": "string"}, "errors": {"type": "array", "items": {"type": "object"}}},
    "required": ["detail"],
}


def refusal_responses(*codes: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` of refusals with these status codes (our JSON: detail and errors)."""
    return {c: {"description": REFUSALS[c], "content": {JSON: {"schema": REFUSED_SCHEMA}}} for c in codes}


async def _send(
    send: Send, status: int, body: bytes, media_type: str, headers: list[tuple[bytes, bytes]] | None = None,
    *, bare: bool = False,
) -> None:  # fmt: skip
    """Send an answer; ``bare``: its headers only (a HEAD's), the length still the body's."""
    start = [(b"content-type", media_type.encode()), (b"content-length", str(len(body)).encode()), *(headers or [])]
    await send({"type": "http.response.start", "status": status, "headers": start})
    await send({"type": "http.response.body", "body": b"" if bare else body})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:  # uvicorn gives the names in lower case
        if key == name:
            return str(value.decode("latin-1"))
    return None
