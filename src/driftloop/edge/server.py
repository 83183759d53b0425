"""``driftloop edge serve``: the HTTP API of ``driftloop serve`` on a device, from its store.

The same routes and answers (``/v1/predict``, ``/invocations``, the Open Inference Protocol v2,
health, metrics, ``POST /admin/reload``), built by :func:`driftloop.serve.app.scoring_app`;
only where the versions come from (the device's store) and where answers are logged (its
SQLite file) differ. A device also takes labels for its predictions (``POST /v1/labels``).
Needs no registry, lake or PyTorch.
"""

from __future__ import annotations

import uuid

from starlette.types import ASGIApp

from driftloop.edge.deployments import DeviceDeployments
from driftloop.edge.labels import add_label_route
from driftloop.edge.logbook import DeviceLog
from driftloop.edge.store import DeviceStore
from driftloop.errors import BundleError
from driftloop.runtime.package import ModelPackage
from driftloop.serve.app import Served, logged_rows, scoring_app
from driftloop.settings.serve import ServeSettings


def create_edge_app(
    store: DeviceStore, *, settings: ServeSettings | None = None, admin_token: str | None = None
) -> ASGIApp:
    """The server of the version ``store`` names; it follows the store's pointer (``POST
    /admin/reload``, or every ``poll_seconds``)."""
    version = store.serving()
    if version is None:
        raise BundleError(f"{store.folder} names no version to serve: install a bundle first")
    manifest = store.manifest(version)
    if manifest.get("kind") != "table":
        raise BundleError(
            f"version {version} is a model of kind {manifest.get('kind')!r}; a device serves table models"
        )
    contract = ModelPackage.load(store.package(version)).contract
    server_id = f"edge-{uuid.uuid4().hex[:12]}"
    log = DeviceLog(store.log_path, render=lambda batches: logged_rows(contract, batches, server_id))
    served = Served(manifest["model"], contract, f"driftloop edge: {manifest['model']}", server_id)
    deployments = DeviceDeployments(store, manifest["model"])
    return scoring_app(served, settings or ServeSettings(), deployments, log, admin_token=admin_token,
                       extend=lambda app: add_label_route(app, log, contract))  # fmt: skip


__all__ = ["create_edge_app"]
