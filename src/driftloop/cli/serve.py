"""The serve command: the champion over HTTP (FastAPI on uvicorn)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from driftloop.cli.common import ProjectOption, err, handled
from driftloop.errors import MissingDependency
from driftloop.project import Project


@handled
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on (default: [serve] host, 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: [serve] port, 8000).", min=0, max=65535)] = None,
    workers: Annotated[int | None, typer.Option(help="Server processes (default: [serve] workers).", min=1)] = None,
    ui: Annotated[bool, typer.Option("--ui", help="Serve the dashboard (`driftloop ui`) under /ui/ too.")] = False,
    project_dir: ProjectOption = Path(),
) -> None:
    """Serve the champion: /v1/predict, MLflow's /invocations, Open Inference v2, /metrics (an image project's:
    /v1/predict of uploads, v2 BYTES, and an upload page at /). SIGTERM drains."""
    from driftloop.registry import Registry
    from driftloop.serve.app import PROJECT_ENV, app_of  # says which extra to install when it is missing

    try:
        import fastapi  # noqa: F401  (checked here: a central server puts it behind its routes)
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
    page += "dashboard at /ui/; " if ui else ""
    err.print(f"driftloop serve: {project.settings.project.name} on http://{host}:{port} ({workers} worker(s)); "
              f"{page}docs at /docs; POST /admin/reload {admin}", highlight=False)  # fmt: skip
    here = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"  # where the dashboard reads metrics
    # Graceful shutdown: SIGTERM stops accepting, in-flight requests finish, the lifespan flushes the log.
    if workers == 1:
        app = app_of(project, admin_token=token)
        uvicorn.run(with_ui(app, project, token, here) if ui else app, host=host, port=port, log_level="warning",
                    timeout_graceful_shutdown=30)  # fmt: skip
        return
    os.environ[PROJECT_ENV] = str(project.root)  # each worker process builds its app from it
    os.environ[UI_ENV] = here if ui else ""
    uvicorn.run("driftloop.cli.serve:worker_app", factory=True, host=host, port=port, workers=workers,
                log_level="warning", timeout_graceful_shutdown=30)  # fmt: skip


# The server's address, set for the worker processes when they serve the dashboard too.
UI_ENV = "DRIFTLOOP_SERVE_UI"


def with_ui(app: Any, project: Project, token: str | None, here: str | None = None) -> Any:
    """``app`` with the dashboard mounted under /ui/ (its pages' links are relative); ``here`` is
    the server's own address, whose metrics the dashboard reads."""
    from driftloop.ui.app import create_ui

    inner = app.behind  # the FastAPI app behind the server's plain-ASGI routes
    metrics = f"{here}/metrics" if here else None
    inner.mount("/ui", create_ui(project, admin_token=token, refresh_seconds=30.0, metrics_url=metrics))
    return app


def worker_app() -> Any:
    """What each ``--workers`` process runs: the project's server, with the dashboard when asked."""
    from driftloop.serve.app import PROJECT_ENV, app_from_environment

    app = app_from_environment()
    here = os.environ.get(UI_ENV)
    if here:
        project = Project.load(os.environ[PROJECT_ENV])
        app = with_ui(app, project, os.environ.get(project.settings.serve.admin_token_env) or None, here)
    return app
