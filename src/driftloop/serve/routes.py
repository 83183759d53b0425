"""The scoring endpoints as plain ASGI, in front of FastAPI.

The three POSTs that score (``/v1/predict``, ``/invocations``, ``/v2/models/{name}/infer``) are
answered here, and everything else (health, metadata, metrics, admin, the docs) goes on to
FastAPI. Scoring requests are the traffic of a prediction server, and FastAPI's per-request
machinery (its middleware stack, dependency solving, response handling) was about half of the
event loop's time on them: the loop, not the model, bounds a server on two cores. Their OpenAPI
entries are written by :func:`openapi_paths`, so the spec and the docs still show them.

A handler takes the parsed JSON body, the path parameters and the client's ``x-request-id`` (if
any) and returns the answer's payload; a :class:`~driftloop.errors.RequestRefused` becomes its
status with the message and field-level errors, anything else a logged 500.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from driftloop.errors import RequestRefused
from driftloop.serve.metrics import ServerMetrics

logger = logging.getLogger("driftloop.serve")
Handler = Callable[[Any, dict[str, str], str | None], Awaitable[Any]]
# Turns a request's body (and its content type) into what the handler takes.
BodyParser = Callable[[bytes, str | None], Any]
JSON_HEADERS = [(b"content-type", b"application/json")]


def json_body(body: bytes, content_type: str | None = None) -> Any:
    """The body parsed as JSON (whatever the content type says: clients often leave it out)."""
    try:
        return orjson.loads(body)  # a C parser: json.loads was a tenth of the event loop's time
    except orjson.JSONDecodeError as exc:
        raise RequestRefused(f"the body is not valid JSON: {exc}") from exc


@dataclass(frozen=True)
class ScoringRoute:
    """A POST endpoint that scores: its path (``{name}`` marks a path parameter), its handler,
    and what the OpenAPI spec says of it."""

    path: str
    handler: Handler
    summary: str
    body_schema: dict[str, Any]
    answer_schema: dict[str, Any]
    parse: BodyParser = json_body
    # The spec's request content by media type, where the body is not only JSON of body_schema.
    body_content: dict[str, Any] | None = None

    def pattern(self) -> re.Pattern[str]:
        return re.compile("^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(self.path)) + "$")


class ScoringRoutes:
    """ASGI app answering the scoring routes and handing every other request to ``app``."""

    def __init__(
        self, app: ASGIApp, routes: list[ScoringRoute], *, metrics: ServerMetrics, max_body_bytes: int
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self._exact = {r.path: r for r in routes if "{" not in r.path}  # one dict lookup for most requests
        self._patterns = [(r.pattern(), r) for r in routes if "{" in r.path]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route, params = self._match(scope) if scope["type"] == "http" else (None, {})
        if route is None:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status, payload = await self._answer(route, params, scope, receive)
        if status == 0:
            return  # the client went away before its body arrived: nobody to answer
        body = orjson.dumps(payload)  # a NaN output is written as null: JSON has no NaN
        headers = [*JSON_HEADERS, (b"content-length", str(len(body)).encode())]
        if status == 405:
            headers.append((b"allow", b"POST"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        self.metrics.count(route.path, status, time.perf_counter() - started)

    def _match(self, scope: Scope) -> tuple[ScoringRoute | None, dict[str, str]]:
        path = scope["path"]
        route = self._exact.get(path)
        if route is not None:
            return route, {}
        for pattern, candidate in self._patterns:
            found = pattern.match(path)
            if found:
                return candidate, found.groupdict()
        return None, {}

    async def _answer(
        self, route: ScoringRoute, params: dict[str, str], scope: Scope, receive: Receive
    ) -> tuple[int, Any]:
        """The status and payload of the answer; status 0 when the client has gone."""
        if scope["method"] != "POST":
            return 405, {"detail": f"{route.path} answers POST only"}
        try:
            body = await self._read(scope, receive)
            if body is None:
                return 0, None
            parsed = route.parse(body, _header(scope, b"content-type"))
            return 200, await route.handler(parsed, params, _header(scope, b"x-request-id"))
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


def openapi_paths(routes: list[ScoringRoute]) -> dict[str, Any]:
    """The OpenAPI ``paths`` entries of the scoring routes (FastAPI's spec does not see them)."""
    paths: dict[str, Any] = {}
    for route in routes:
        names = re.findall(r"\{(\w+)\}", route.path)
        codes = ["404", "413", "422", "503"] if names else ["413", "422", "503"]
        answer = {"description": "The predictions", "content": {"application/json": {"schema": route.answer_schema}}}
        responses = {"200": answer, **refusal_responses(*codes)}
        parameters = [{"name": n, "in": "path", "required": True, "schema": {"type": "string"}} for n in names]
        content = route.body_content or {"application/json": {"schema": route.body_schema}}
        body = {"required": True, "content": content}
        operation = re.sub(r"\W+", "_", route.path).strip("_") + "_post"
        post = {"summary": route.summary, "operationId": operation, "parameters": parameters,
                "requestBody": body, "responses": responses}  # fmt: skip
        paths[route.path] = {"post": post}
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
    return {c: {"description": REFUSALS[c], "content": {"application/json": {"schema": REFUSED_SCHEMA}}} for c in codes}


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:  # uvicorn gives the names in lower case
        if key == name:
            return str(value.decode("latin-1"))
    return None
