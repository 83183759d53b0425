"""What every command shares: the consoles, the common options, error handling, output helpers."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from driftloop.errors import ConfigError, DriftloopError, MissingDependency
from driftloop.project import Project

out = Console()
err = Console(stderr=True)

ProjectOption = Annotated[Path, typer.Option("--project", "-p", help="Project folder (holds driftloop.toml).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print a machine-readable JSON summary.")]
F = TypeVar("F", bound=Callable[..., Any])


def handled(command: F) -> F:
    """Turn a DriftloopError into its message on stderr and exit code 1, without a traceback; and
    so a library this install lacks, with the extra that brings it."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except ModuleNotFoundError as missing:
            needed = MissingDependency.named(missing, purpose="this command")
            if needed is None:
                raise
            fail(needed)
        except DriftloopError as exc:
            fail(exc)

    return run  # type: ignore[return-value]


def fail(exc: DriftloopError) -> NoReturn:
    """Print ``exc`` as a user error and exit with code 1."""
    # The message is text, not markup: "[train]" in it must stay visible.
    err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
    raise typer.Exit(1) from exc


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


# How each metric is headed in a table.
METRIC_HEADINGS = {"mae": "MAE", "rmse": "RMSE", "smape": "SMAPE %", "r2": "R²", "accuracy": "accuracy",
                   "balanced_accuracy": "balanced acc.", "macro_f1": "macro F1", "roc_auc": "ROC AUC",
                   "log_loss": "log loss", "brier": "Brier"}  # fmt: skip


def metrics_table(title: str, first: str, rows: list[tuple[str, dict[str, float], list[str], str]]) -> Table:
    """A table of metrics, a row each (label, metrics, extra cells, style), with a column for
    every metric any row has: numbers' and labels' side by side in a mixed project."""
    names = [m for m in METRIC_HEADINGS if any(m in values for _, values, _, _ in rows)]
    extra = max((len(cells) for _, _, cells, _ in rows), default=0)
    table = Table(first, *(METRIC_HEADINGS[m] for m in names), *([""] * extra), title=title)
    for label, values, cells, style in rows:
        shown = [f"{values[m]:.4g}" if m in values else "" for m in names]
        table.add_row(label, *shown, *cells, style=style or None)
    return table


def show_metrics(
    title: str, metrics: dict[str, dict[str, float]], other: dict[str, dict[str, float]] | None, other_name: str
) -> None:
    rows: list[tuple[str, dict[str, float], list[str], str]] = []
    for target, values in metrics.items():
        rows.append((target, values, [], ""))
        if other is not None:
            rows.append((f"  {other_name}", other[target], [], "dim"))
    out.print(metrics_table(title, "target", rows))


def show_verdict(level: str, reasons: list[str], start: datetime, end: datetime, watched: str, version: str) -> None:
    """A window's verdict, coloured, with what was watched and the reasons under it."""
    colour = {"ok": "green", "warn": "yellow"}.get(level, "red")
    out.print(
        f"[{colour}]{level}[/] {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M}, {watched}, model version {version}"
    )
    for reason in reasons:
        out.print(f"  - {reason}")


def table_project(folder: Path, command: str) -> Project:
    """The project in ``folder`` for a command that works on tables; a clear error for an image
    project, saying which commands it has."""
    project = Project.load(folder)
    if project.settings.images is not None:
        raise ConfigError(
            f"`driftloop {command}` works on table projects; {project.root} is an image project. Its images go in "
            "with `driftloop ingest FOLDER`, its network trains with `driftloop train` and moves through the "
            "stages with `driftloop promote`"
        )
    return project
