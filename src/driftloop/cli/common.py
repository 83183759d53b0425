"""What every command shares: the consoles, the common options, error handling, output helpers."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

from driftloop.errors import DriftloopError

out = Console()
err = Console(stderr=True)

ProjectOption = Annotated[Path, typer.Option("--project", "-p", help="Project folder (holds driftloop.toml).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print a machine-readable JSON summary.")]
F = TypeVar("F", bound=Callable[..., Any])


def handled(command: F) -> F:
    """Turn a DriftloopError into its message on stderr and exit code 1, without a traceback."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except DriftloopError as exc:
            # The message is text, not markup: "[train]" in it must stay visible.
            err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
            raise typer.Exit(1) from exc

    return run  # type: ignore[return-value]


def emit_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


def progress_bar(quiet: bool, *, bar: bool = False) -> Progress:
    columns = [SpinnerColumn(), TextColumn("{task.description}")]
    if bar:
        columns += [BarColumn(), MofNCompleteColumn()]
    return Progress(*columns, TimeElapsedColumn(), console=err, transient=True, disable=quiet)


class EpochProgress:
    """A training callback that moves the progress bar and shows the validation loss."""

    def __init__(self, progress: Progress, task: TaskID) -> None:
        self.progress, self.task = progress, task

    def on_epoch_end(self, log: Any) -> None:
        self.progress.update(
            self.task, completed=log.epoch, description=f"epoch {log.epoch}: validation loss {log.validation_loss:.4f}"
        )
