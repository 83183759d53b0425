"""``driftloop edge serve``: the HTTP API of ``driftloop serve`` on a device, from its store.

The same routes and answers (``/v1/predict``, ``/invocations``, the Open Inference Protocol v2,
health, metrics, ``POST /admin/reload``), built by :func:`driftloop.serve.app.scoring_app` with
nothing behind them (no FastAPI: ``GET /openapi.json`` is their spec);
only where the versions come from (the device's store) and where answers are logged (its
SQLite file) differ; an image model's bundle is served by the image server's core the same way.
A device also takes labels for its predictions (``POST /v1/labels``). Needs no registry, lake or
PyTorch.

``python -m driftloop.edge.server STORE HOST PORT`` serves what a store holds already: what
``driftloop edge serve`` becomes once it has verified and installed its bundle, so the server
process never loads the CLI nor the signature library (a device counts every megabyte).
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from driftloop.edge import ADMIN_TOKEN_ENV
from driftloop.edge.deployments import DeviceDeployments
from driftloop.edge.labels import label_route
from driftloop.edge.logbook import DeviceLog
from driftloop.edge.store import DeviceStore
from driftloop.errors import BundleError
from driftloop.runtime.kinds import AnyPackage, image_package, load_package, table_package, targets_of
from driftloop.runtime.package import IMAGE_KIND, TABLE_KIND
from driftloop.serve.app import Served, logged_rows, scoring_app
from driftloop.settings.serve import ServeSettings

if TYPE_CHECKING:
    from starlette.types import ASGIApp

# How often a device's server looks at its store's pointer: a local file, cheap to read, and the
# agent waits on it after a swap.
POLL_SECONDS = 2.0


def create_edge_app(
    store: DeviceStore, *, settings: ServeSettings | None = None, admin_token: str | None = None
) -> ASGIApp:
    """The server of the version ``store`` names, a table model's or an image model's; it follows
    the store's pointer (``POST /admin/reload``, or every ``poll_seconds``)."""
    version = store.serving()
    if version is None:
        raise BundleError(f"{store.folder} names no version to serve: install a bundle first")
    manifest = store.manifest(version)
    server = SERVERS.get(str(manifest.get("kind")))
    if server is None:
        raise BundleError(f"version {version} is a model of kind {manifest.get('kind')!r}; a device serves "
                          f"{sorted(SERVERS)} models")  # fmt: skip
    package = load_package(store.package(version))
    return server(store, manifest["model"], package, settings or ServeSettings(), admin_token)


def _table_server(
    store: DeviceStore, model: str, package: AnyPackage, settings: ServeSettings, admin_token: str | None
) -> ASGIApp:
    contract = table_package(package, f"{model} on this device").contract
    server_id = f"edge-{uuid.uuid4().hex[:12]}"
    log = DeviceLog(store.log_path, render=lambda batches: logged_rows(contract, batches, server_id))
    served = Served(model, contract, f"driftloop edge: {model}", server_id)
    return scoring_app(served, settings, DeviceDeployments(store, model), log, admin_token=admin_token,
                       extra=[label_route(log, targets_of(package))])  # fmt: skip


def _image_server(
    store: DeviceStore, model: str, package: AnyPackage, settings: ServeSettings, admin_token: str | None
) -> ASGIApp:
    # Here, not at the top: a table model's device never loads the image libraries.
    from driftloop.edge.image_deployments import DeviceImageModel
    from driftloop.serve.image_app import ServedImages, image_scoring_app
    from driftloop.serve.image_app import logged_rows as image_logged_rows

    images = image_package(package, f"{model} on this device")
    server_id = f"edge-{uuid.uuid4().hex[:12]}"
    log = DeviceLog(store.log_path, render=lambda batches: image_logged_rows(batches, server_id))
    served = ServedImages(model, list(images.classes), images.rules.max_bytes, f"driftloop edge: {model}", server_id)
    return image_scoring_app(served, settings, DeviceImageModel(store, model), log, admin_token=admin_token,
                             extra=[label_route(log, targets_of(package))])  # fmt: skip


# A bundle's kind -> the server of it.
SERVERS: dict[str, Callable[[DeviceStore, str, AnyPackage, ServeSettings, str | None], ASGIApp]] = {
    TABLE_KIND: _table_server,
    IMAGE_KIND: _image_server,
}


def serve_store(store: DeviceStore, host: str, port: int) -> None:
    """Serve the version ``store`` names (installed and verified already) until stopped."""
    import uvicorn

    settings = ServeSettings(poll_seconds=POLL_SECONDS)
    app = create_edge_app(store, settings=settings, admin_token=os.environ.get(ADMIN_TOKEN_ENV) or None)
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=30)


def main(argv: list[str]) -> None:
    """``python -m driftloop.edge.server STORE HOST PORT``."""
    store, host, port = argv
    serve_store(DeviceStore(Path(store)), host, int(port))


if __name__ == "__main__":
    main(sys.argv[1:])


__all__ = ["POLL_SECONDS", "create_edge_app", "main", "serve_store"]
