"""The serve command: the champion over HTTP (FastAPI on uvicorn)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from driftloop.cli.common import ProjectOption, err, handled
from driftloop.errors import MissingDependency
from driftloop.project import Project


@handled
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on (default: [serve] host, 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: [serve] port, 8000).", min=0, max=65535)] = None,
    workers: Annotated[int | None, typer.Option(help="Server processes (default: [serve] workers).", min=1)] = None,
    project_dir: ProjectOption = Path(),
) -> None:
    """Serve the champion: /v1/predict, MLflow's /invocations, Open Inference v2, /metrics (an image project's:
    /v1/predict of uploads, v2 BYTES, and an upload page at /). SIGTERM drains."""
    from driftloop.registry import Registry
    from driftloop.serve.app import PROJECT_ENV, app_of  # says which extra to install when it is missing

    try:
        import uvicorn
    except ModuleNotFoundError as missing:
        raise MissingDependency.of(missing, extra="serve", purpose="driftloop serve") from missing

    project = Project.load(project_dir)
    settings = project.settings.serve
    host, port, workers = host or settings.host, settings.port if port is None else port, workers or settings.workers
    if Registry(project).champion() is None:
        err.print(f"[yellow]no champion yet: /health/ready answers 503 until one is promoted "
                  f"(checked every {settings.poll_seconds:g} s)[/]")  # fmt: skip
    token = os.environ.get(settings.admin_token_env) or None  # read here, at the edge, once
    admin = "enabled" if token else f"disabled (set {settings.admin_token_env})"
    page = "upload page at /; " if project.settings.images is not None else ""
    err.print(f"driftloop serve: {project.settings.project.name} on http://{host}:{port} ({workers} worker(s)); "
              f"{page}docs at /docs; POST /admin/reload {admin}", highlight=False)  # fmt: skip
    # Graceful shutdown: SIGTERM stops accepting, in-flight requests finish, the lifespan flushes the log.
    if workers == 1:
        uvicorn.run(app_of(project, admin_token=token), host=host, port=port, log_level="warning",
                    timeout_graceful_shutdown=30)  # fmt: skip
        return
    os.environ[PROJECT_ENV] = str(project.root)  # each worker process builds its app from it
    uvicorn.run("driftloop.serve.app:app_from_environment", factory=True, host=host, port=port, workers=workers,
                log_level="warning", timeout_graceful_shutdown=30)  # fmt: skip
