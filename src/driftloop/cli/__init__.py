"""The ``driftloop`` command line: one command per stage of the loop.

Exit codes: 0 success, 1 a user error (the message, no traceback), 2 a usage error.
Every command takes ``--project DIR`` (default: the current folder) and ``--json`` for a
machine-readable summary on standard output. Commands live in ``data``, ``models``,
``loop``, ``serve``, ``ui``, ``rollout``, ``bundles``, ``edge``, ``replay`` and ``export``; shared options and helpers
in ``common``.

A command's module is imported when the command is looked up, not before: a device with only
``driftloop[edge]`` runs ``driftloop edge ...`` without the pipeline's libraries, and a command
whose libraries are not installed is listed, and answers, with the extra that installs them.
"""

from __future__ import annotations

import functools
import importlib
import logging
from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from typer.core import TyperGroup

from driftloop.cli.common import fail
from driftloop.errors import MissingDependency

if TYPE_CHECKING:
    # Typer carries its own click from 0.26 (the group's methods are typed with its classes).
    from typer._click import Command, Context

# Command -> (module of this package, function), in the order `driftloop --help` lists them.
COMMANDS: dict[str, tuple[str, str]] = {
    "init": ("data", "init"),
    "ingest": ("data", "ingest_command"),
    "features": ("data", "features"),
    "tables": ("data", "tables"),
    "compact": ("data", "compact"),
    "train": ("models", "train"),
    "evaluate": ("models", "evaluate"),
    "promote": ("models", "promote"),
    "rollback": ("models", "rollback"),
    "models": ("models", "models"),
    "predict": ("loop", "predict"),
    "monitor": ("loop", "monitor"),
    "run": ("loop", "run"),
    "schedule": ("loop", "schedule"),
    "serve": ("serve", "serve"),
    "ui": ("ui", "ui"),
    "keys": ("bundles", "keys"),
    "bundle": ("bundles", "bundle"),
    "replay": ("replay", "replay"),
    "demo": ("replay", "demo"),
}
# Command groups: each module's own Typer app of subcommands.
GROUPS: dict[str, str] = {"rollout": "rollout", "export": "export", "edge": "edge"}


class Commands(TyperGroup):
    """The top-level group: its commands are built from their modules on first lookup."""

    def list_commands(self, ctx: Context) -> list[str]:
        return [*COMMANDS, *GROUPS]

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        return command(cmd_name)


@functools.cache
def command(name: str) -> Command | None:
    """The command ``name`` (None if there is none), or one that says which extra it needs."""
    if name not in COMMANDS and name not in GROUPS:
        return None
    module_name, function = COMMANDS.get(name, (GROUPS.get(name, ""), ""))
    holder = typer.Typer()
    try:
        module = importlib.import_module(f"driftloop.cli.{module_name}")
    except ModuleNotFoundError as missing:
        needed = MissingDependency.named(missing, purpose=f"`driftloop {name}`")
        if needed is None:
            raise
        declare_unavailable(holder, name, needed)
    else:
        if function:
            holder.command(name)(getattr(module, function))
        else:
            holder.add_typer(module.app, name=name)
    built = typer.main.get_command(holder)
    return _plain_help(built.commands[name] if isinstance(built, TyperGroup) else built)


def _plain_help(command: Command) -> Command:
    """``command`` (and its subcommands and options) with help shown as written: Rich, which
    renders it, took settings sections such as "[rollout] steps" for markup and dropped them."""
    command.help = escape(command.help) if command.help else command.help
    command.short_help = escape(command.short_help) if command.short_help else command.short_help
    for param in command.params:
        help_text = getattr(param, "help", None)
        if help_text:
            param.help = escape(help_text)  # type: ignore[attr-defined]
    for sub in getattr(command, "commands", {}).values():
        _plain_help(sub)
    return command


def declare_unavailable(holder: typer.Typer, name: str, needed: MissingDependency) -> None:
    """Declare a command this install cannot run: listed with the extra it needs, and answering
    any arguments with that message (exit code 1)."""
    holder.command(
        name,
        help=str(needed),
        short_help=f"(needs driftloop[{needed.extra}])",
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []},
    )(lambda: fail(needed))


app = typer.Typer(
    name="driftloop",
    cls=Commands,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """The closed-loop MLOps pipeline: ingest, validate, version, train, promote, serve, monitor, retrain."""


def main() -> None:
    """Entry point of the ``driftloop`` script."""
    # MLflow reports every registration at INFO; driftloop's own output already says what happened.
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    app()


__all__ = ["app", "main"]
