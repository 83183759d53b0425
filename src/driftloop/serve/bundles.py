"""``GET /v1/bundles/champion``: the champion as a signed bundle, for the devices that follow it.

A table server publishes the version it answers with, signed with the project's key
(``[bundle]``), made once per version and kept under ``PROJECT/bundles/``. The answer names the
version in ``X-Model-Version`` and in its ``ETag``: a device that asks with the tag of the
version it serves (``If-None-Match``) gets a 304 and no body. A device's agent verifies a bundle
against the public key it holds, whatever the network between them did.
"""

from __future__ import annotations

import asyncio
import threading

from fastapi import FastAPI, Request, Response
from fastapi.responses import FileResponse

from driftloop.errors import BundleError, RequestRefused
from driftloop.project import Project
from driftloop.runtime.bundle import bundle_tag, write_bundle
from driftloop.serve.operations import Followed, ready_model
from driftloop.serve.routes import refusal_responses

BUNDLES_FOLDER = "bundles"


def add_bundle_route(app: FastAPI, project: Project, followed: Followed) -> None:
    """Add ``GET /v1/bundles/champion`` to ``app``, publishing the version ``followed`` answers with."""
    building = threading.Lock()  # one bundle written at a time: two requests for a new version make it once

    def bundled(version: str) -> str:
        from driftloop.registry import Registry

        path = project.root / BUNDLES_FOLDER / f"{project.model_name}-{version}.bundle"
        with building:
            if not path.exists():
                try:
                    key = project.signing_key()
                except BundleError as exc:
                    # No key, no bundles here: a resource this server does not have, not a failure of it.
                    raise RequestRefused(f"this server publishes no bundles: {exc}", status=404) from exc
                write_bundle(
                    Registry(project).package(version), path, key, model=project.model_name, model_version=version
                )
        return str(path)

    @app.get("/v1/bundles/champion", summary="The champion as a signed bundle, for devices",
             response_class=FileResponse, responses=refusal_responses("404", "503"))  # fmt: skip
    async def champion_bundle(request: Request) -> Response:
        _, version = ready_model(followed)
        headers = {"X-Model-Version": version, "ETag": bundle_tag(project.model_name, version)}
        if request.headers.get("if-none-match") == headers["ETag"]:
            return Response(status_code=304, headers=headers)  # the device has it: nothing to send
        path = await asyncio.to_thread(bundled, version)
        return FileResponse(path, media_type="application/zip", headers=headers,
                            filename=f"{project.model_name}-{version}.bundle")  # fmt: skip


__all__ = ["BUNDLES_FOLDER", "add_bundle_route"]
