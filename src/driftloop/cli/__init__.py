"""The ``driftloop`` command line: one command per stage of the loop.

Exit codes: 0 success, 1 a user error (the message, no traceback), 2 a usage error.
Every command takes ``--project DIR`` (default: the current folder) and ``--json`` for a
machine-readable summary on standard output. Commands live in ``data``, ``models``,
``loop``, ``serve``, ``bundles``, ``edge``, ``replay`` and ``export``; shared options and helpers in ``common``.
"""

from __future__ import annotations

import logging

import typer

from driftloop.cli import bundles, data, edge, export, loop, models, replay, serve

app = typer.Typer(
    name="driftloop",
    help="The closed-loop MLOps pipeline: ingest, validate, version, train, promote, serve, monitor, retrain.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command()(data.init)
app.command("ingest")(data.ingest_command)
app.command()(data.features)
app.command()(data.tables)
app.command()(data.compact)
app.command()(models.train)
app.command()(models.evaluate)
app.command()(models.promote)
app.command()(models.rollback)
app.command("models")(models.models)
app.command()(loop.predict)
app.command()(loop.monitor)
app.command()(loop.run)
app.command()(loop.schedule)
app.command()(serve.serve)
app.command()(bundles.keys)
app.command()(bundles.bundle)
app.command()(replay.replay)
app.command()(replay.demo)
app.add_typer(export.app, name="export")
app.add_typer(edge.app, name="edge")


def main() -> None:
    """Entry point of the ``driftloop`` script."""
    # MLflow reports every registration at INFO; driftloop's own output already says what happened.
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    app()


__all__ = ["app", "main"]
