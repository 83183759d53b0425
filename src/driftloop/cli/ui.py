"""``driftloop ui``: the live dashboard of a project, read from its lake and registry."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from driftloop.cli.common import ProjectOption, err, handled
from driftloop.errors import MissingDependency
from driftloop.project import Project


@handled
def ui(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.", min=0, max=65535)] = 8050,
    refresh: Annotated[float, typer.Option(help="Seconds between a page's reloads.", min=1)] = 30.0,
    server: Annotated[
        str | None, typer.Option(help="A prediction server (http://host:port) whose latency the Traffic page shows.")
    ] = None,
    project_dir: ProjectOption = Path(),
) -> None:
    """The dashboard: the champion and the versions, the decision timeline, the metric over time per stream, drift
    per input, quarantined rows by rule and batch, the rollout and its guards, requests a minute per source and (with
    --server) each endpoint's latency. It reads the lake and the registry
    and writes nothing; ending a rollout or rolling back takes the admin token (DRIFTLOOP_ADMIN_TOKEN)."""
    from driftloop.ui.app import TOKEN_VARIABLE, create_ui

    try:
        import uvicorn
    except ModuleNotFoundError as missing:
        raise MissingDependency.of(missing, extra="serve", purpose="driftloop ui") from missing

    project = Project.load(project_dir)
    token = os.environ.get(TOKEN_VARIABLE) or None
    admin = "enabled" if token else f"disabled (set {TOKEN_VARIABLE})"
    err.print(f"driftloop ui: {project.settings.project.name} on http://{host}:{port}, every page reloading each "
              f"{refresh:g} s; admin actions {admin}", highlight=False)  # fmt: skip
    metrics = f"{server.rstrip('/')}/metrics" if server else None
    uvicorn.run(create_ui(project, admin_token=token, refresh_seconds=refresh, metrics_url=metrics), host=host,
                port=port, log_level="warning")  # fmt: skip
