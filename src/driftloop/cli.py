"""The ``driftloop`` command line: one command per stage of the loop.

Exit codes: 0 success, 1 a user error (the message, no traceback), 2 a usage error.
Every command takes ``--project DIR`` (default: the current folder) and ``--json`` for a
machine-readable summary on standard output.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from driftloop.config import PROJECT_FILE, Project, init_project
from driftloop.errors import ConfigError, DriftloopError
from driftloop.features import materialize
from driftloop.ingest import IngestSummary, ingest
from driftloop.lake import TABLES
from driftloop.sources import expand_paths, read_file

app = typer.Typer(
    name="driftloop",
    help="The closed-loop MLOps pipeline: ingest, validate, version, train, promote, serve, monitor, retrain.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
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
            err.print(f"[bold red]error:[/] {exc}", highlight=False)
            raise typer.Exit(1) from exc

    return run  # type: ignore[return-value]


def _emit_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


@app.command()
@handled
def init(
    folder: Annotated[Path, typer.Argument(help="Folder of the new project (created if needed).")],
    data: Annotated[Path | None, typer.Option("--data", help="Sample file the contract is drafted from.")] = None,
    id_column: Annotated[str | None, typer.Option("--id", help="Column that identifies an entity.")] = None,
    time_column: Annotated[str | None, typer.Option("--time", help="Column holding the event time.")] = None,
    target: Annotated[list[str] | None, typer.Option("--target", help="A column to predict (repeatable).")] = None,
    name: Annotated[str | None, typer.Option(help="Project name (default: the folder's name).")] = None,
    sample_rows: Annotated[int, typer.Option(help="Rows of the sample read to draft the contract.", min=1)] = 100_000,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing driftloop.toml.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Create a project: driftloop.toml with a data contract drafted from a sample."""
    sample = read_file(expand_paths([data])[0]).frame.head(sample_rows) if data else None
    project = init_project(
        folder,
        sample=sample,
        name=name,
        id_column=id_column,
        time_column=time_column,
        targets=tuple(target or ()),
        force=force,
    )
    contract = project.contract
    summary = {
        "project": str(project.root / PROJECT_FILE),
        "columns": len(contract.columns),
        "id": contract.id_column,
        "event_time": contract.event_time_column,
        "targets": contract.targets,
        "features": project.feature_set().inputs,
    }
    if as_json:
        _emit_json(summary)
        return
    out.print(f"[green]created[/] {summary['project']}")
    if contract.columns:
        table = Table("column", "type", "role", "nullable", "rule", title="Drafted contract")
        for column_name, column in contract.columns.items():
            rule = _rule_text(column.min, column.max, column.allowed)
            table.add_row(column_name, column.type.value, column.role.value, str(column.nullable), rule)
        out.print(table)
        out.print("Ranges are the sample's widened by its own span; review them, then `driftloop ingest`.")
    else:
        out.print("The contract is empty: rerun with --data SAMPLE to draft it, or add [contract.columns.NAME].")


@app.command("ingest")
@handled
def ingest_command(
    paths: Annotated[list[Path], typer.Argument(help="CSV, Parquet or NDJSON files, or folders of them.")],
    project_dir: ProjectOption = Path(),
    as_json: JsonOption = False,
) -> None:
    """Validate files into the raw table; rows breaking a rule go to quarantine with reasons."""
    project = Project.load(project_dir)
    files = expand_paths(paths)
    with _progress(as_json) as progress:
        task = progress.add_task("ingest", total=len(files))

        def on_step(source: str, step: str) -> None:
            progress.update(task, description=f"{Path(source).name}: {step}")

        summaries = []
        for path in files:
            summaries += ingest(project, path, on_refused="continue", on_step=on_step)
            progress.advance(task)
    if as_json:
        _emit_json([s.to_dict() for s in summaries])
    else:
        _show_ingest(summaries)
    if any(s.status == "refused" for s in summaries):
        raise typer.Exit(1)


@app.command()
@handled
def features(project_dir: ProjectOption = Path(), as_json: JsonOption = False) -> None:
    """Materialise the features table from raw, computing only batches not yet included."""
    project = Project.load(project_dir)
    with _progress(as_json) as progress:
        progress.add_task("computing features", total=None)
        run = materialize(project.lake, project.feature_set())
    if as_json:
        _emit_json(run.__dict__)
    elif not run.batches:
        out.print(f"features are up to date (table version {run.version}, from raw version {run.raw_version})")
    else:
        out.print(
            f"[green]features[/] version {run.version}: {run.rows:,} rows from {len(run.batches)} new "
            f"batch(es) (raw version {run.raw_version})"
        )


@app.command()
@handled
def tables(
    name: Annotated[str | None, typer.Argument(help="A table, to show its version history.")] = None,
    limit: Annotated[int, typer.Option(help="Versions shown in a history.", min=1)] = 20,
    project_dir: ProjectOption = Path(),
    as_json: JsonOption = False,
) -> None:
    """List the lake's tables with versions and row counts, or one table's history."""
    lake = Project.load(project_dir).lake
    if name is None:
        listing = [(t, lake.version(t), lake.row_count(t), spec.row) for t, spec in TABLES.items()]
        if as_json:
            _emit_json([{"table": t, "version": v, "rows": n, "row": row} for t, v, n, row in listing])
            return
        table = Table("table", "version", "rows", "one row is", title=f"Lake at {lake.root}")
        for table_name, version, rows, row in listing:
            table.add_row(table_name, "-" if version is None else str(version), f"{rows:,}", row)
        out.print(table)
        return
    history = lake.history(name, limit=limit)
    if as_json:
        _emit_json([v.__dict__ for v in history])
        return
    table = Table("version", "time (UTC)", "operation", "rows added", "rows", title=f"History of {name}")
    for v in history:
        added = "" if v.rows_added is None else f"{v.rows_added:,}"
        table.add_row(str(v.version), f"{v.timestamp:%Y-%m-%d %H:%M:%S}", v.operation, added, f"{v.rows:,}")
    out.print(table)


@app.command()
@handled
def train(
    project_dir: ProjectOption = Path(),
    features_version: Annotated[int | None, typer.Option(help="Features table version to train on.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Train the network on the features table, track the run in MLflow, register a dev version."""
    from driftloop.model.trainer import train_project
    from driftloop.tracking import MlflowTracker

    project = Project.load(project_dir)
    epochs = project.settings.train.epochs
    with _progress(as_json, bar=True) as progress, MlflowTracker(project) as tracker:
        task = progress.add_task("training", total=epochs)
        watcher = _EpochProgress(progress, task)
        trained = train_project(project, features_version=features_version, callbacks=[tracker, watcher])
        progress.update(task, completed=epochs, description="recording the run")
        version = tracker.record(trained)
    summary = {
        "model": tracker.model_name,
        "version": version,
        "run_id": tracker.run_id,
        "features_version": trained.features_version,
        "epochs": len(trained.fit.history),
        "best_epoch": trained.fit.best_epoch,
        "train_seconds": round(trained.fit.seconds, 2),
        "logging_seconds": round(tracker.logging_seconds, 2),
        "metrics": trained.metrics,
        "baseline": trained.baseline_metrics,
    }
    if as_json:
        _emit_json(summary)
        return
    out.print(
        f"[green]registered[/] {tracker.model_name} version {version} (stage dev) from features version "
        f"{trained.features_version}: best epoch {trained.fit.best_epoch} of {len(trained.fit.history)}, "
        f"{trained.fit.seconds:.1f} s"
    )
    _show_metrics("Test window", trained.metrics["test"], trained.baseline_metrics["test"], "baseline")
    out.print(
        f"Next: `driftloop promote {version} --project {project_dir}`; "
        f"runs: `mlflow ui --backend-store-uri {project.tracking_uri}`"
    )


@app.command()
@handled
def evaluate(
    version: Annotated[str, typer.Argument(help="Model version to score.")],
    project_dir: ProjectOption = Path(),
    as_json: JsonOption = False,
) -> None:
    """Score a version (and the champion) on the most recent labelled window."""
    from driftloop.gates import recent_window, score
    from driftloop.model.data import training_rows
    from driftloop.registry import CHAMPION, Registry

    project = Project.load(project_dir)
    registry = Registry(project)
    rows, _ = training_rows(project.lake, project.feature_set())
    clock = project.contract.event_time_column or ""
    window = recent_window(rows, clock, project.settings.promote.window_days)
    metrics = score(registry.load(version), window)
    champion = registry.aliases().get(CHAMPION)
    baseline = score(registry.load(champion), window) if champion and champion != version else None
    if as_json:
        champion_part = {"version": champion, "metrics": baseline} if baseline else None
        _emit_json({"version": version, "rows": window.height, "metrics": metrics, "champion": champion_part})
        return
    title = f"Version {version} on the last {project.settings.promote.window_days:g} days ({window.height:,} rows)"
    _show_metrics(title, metrics, baseline, f"champion v{champion}")


@app.command()
@handled
def promote(
    version: Annotated[str | None, typer.Argument(help="Version to promote (default: newest in dev or qa).")] = None,
    project_dir: ProjectOption = Path(),
    as_json: JsonOption = False,
) -> None:
    """Run the gates: dev -> qa (fresh load, contract, latency, floors, baseline), then qa -> prod."""
    from driftloop.registry import Registry

    with _progress(as_json) as progress:
        progress.add_task("running the promotion gates", total=None)
        decisions = Registry(Project.load(project_dir)).promote(version)
    if as_json:
        _emit_json([d.to_dict() for d in decisions])
        return
    for decision in decisions:
        _show_decision(decision)


@app.command()
@handled
def rollback(project_dir: ProjectOption = Path(), as_json: JsonOption = False) -> None:
    """Make the previous champion the champion again."""
    from driftloop.registry import Registry

    decision = Registry(Project.load(project_dir)).rollback()
    if as_json:
        _emit_json(decision.to_dict())
    else:
        _show_decision(decision)


@app.command()
@handled
def models(
    project_dir: ProjectOption = Path(),
    at: Annotated[str | None, typer.Option(help="Say which version was champion at this date/time (ISO).")] = None,
    as_json: JsonOption = False,
) -> None:
    """List model versions with stage, aliases, test metrics and the decision history."""
    from driftloop.registry import Registry

    project = Project.load(project_dir)
    registry = Registry(project)
    if at is not None:
        when = _parse_when(at)
        champion = registry.champion_at(when)
        if as_json:
            _emit_json({"at": when.isoformat(), "champion": champion})
        else:
            out.print(
                f"champion at {when:%Y-%m-%d %H:%M:%S %Z}: {'none' if champion is None else 'version ' + champion}"
            )
        return
    aliases = registry.aliases()
    by_version: dict[str, list[str]] = {}
    for alias, number in aliases.items():
        by_version.setdefault(number, []).append(alias)
    rows = []
    for v in registry.versions():
        run = registry.client.get_run(v.run_id) if v.run_id else None
        metrics = {k: round(m, 4) for k, m in (run.data.metrics.items() if run else []) if k.startswith("test_")}
        rows.append(
            {
                "version": str(v.version),
                "stage": v.tags.get("stage", "dev"),
                "aliases": sorted(by_version.get(str(v.version), [])),
                "created": datetime.fromtimestamp(v.creation_timestamp / 1000, tz=UTC).isoformat(),
                "test_metrics": metrics,
                "decision": v.tags.get("decision"),
                "reason": v.tags.get("decision_reason"),
            }
        )
    events = registry.events()
    if as_json:
        _emit_json({"versions": rows, "events": events.to_dicts()})
        return
    table = Table("version", "stage", "aliases", "created (UTC)", "test metrics", "last decision", title=registry.name)
    decisive = project.settings.promote.metric
    for row in rows:
        shown = ", ".join(
            f"{k.removeprefix('test_')}={v:g}" for k, v in row["test_metrics"].items() if k.endswith(decisive)
        )
        table.add_row(
            row["version"], row["stage"], ", ".join(row["aliases"]), row["created"][:19], shown, row["decision"] or ""
        )
    out.print(table)
    history = Table("time (UTC)", "version", "decision", "champion after", "reason", title="Decisions")
    for event in events.tail(20).iter_rows(named=True):
        history.add_row(
            f"{event['at']:%Y-%m-%d %H:%M:%S}",
            event["version"],
            event["kind"],
            event["champion_after"] or "",
            event["reason"],
        )
    if history.row_count:
        out.print(history)


@app.command()
@handled
def demo(
    folder: Annotated[Path, typer.Argument(help="Folder of the demo project.")] = Path("driftloop-demo"),
    days: Annotated[int, typer.Option(help="Days of data to ingest.", min=1)] = 21,
    force: Annotated[bool, typer.Option("--force", help="Replace the folder if it holds a project.")] = False,
) -> None:
    """Create a demo project from the UCI Appliances Energy data and run it through the loop."""
    from driftloop.demo import run_demo  # the demo's data helpers are not needed by other commands

    run_demo(folder, days=days, force=force, console=out)


def _progress(quiet: bool, *, bar: bool = False) -> Progress:
    columns = [SpinnerColumn(), TextColumn("{task.description}")]
    if bar:
        columns += [BarColumn(), MofNCompleteColumn()]
    return Progress(*columns, TimeElapsedColumn(), console=err, transient=True, disable=quiet)


class _EpochProgress:
    """A training callback that moves the progress bar and shows the validation loss."""

    def __init__(self, progress: Progress, task: TaskID) -> None:
        self.progress, self.task = progress, task

    def on_epoch_end(self, log: Any) -> None:
        self.progress.update(
            self.task, completed=log.epoch, description=f"epoch {log.epoch}: validation loss {log.validation_loss:.4f}"
        )


def _show_metrics(
    title: str, metrics: dict[str, dict[str, float]], other: dict[str, dict[str, float]] | None, other_name: str
) -> None:
    table = Table("target", "MAE", "RMSE", "SMAPE %", "R²", title=title)
    for target, values in metrics.items():
        table.add_row(target, *(f"{values[m]:.4g}" for m in ("mae", "rmse", "smape", "r2")))
        if other is not None:
            table.add_row(
                f"  {other_name}", *(f"{other[target][m]:.4g}" for m in ("mae", "rmse", "smape", "r2")), style="dim"
            )
    out.print(table)


def _show_decision(decision: Any) -> None:
    colour = "green" if decision.accepted else "red"
    move = f"{decision.stage_before} -> {decision.stage_after}"
    out.print(f"[{colour}]{decision.kind}[/]: version {decision.version} {move}: {decision.reason}")
    if decision.gates:
        table = Table("gate", "passed", "detail")
        for gate in decision.gates:
            table.add_row(gate.name, "[green]yes[/]" if gate.passed else "[red]no[/]", gate.detail)
        out.print(table)


def _parse_when(text: str) -> datetime:
    try:
        when = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ConfigError(
            f"--at {text!r} is not an ISO date or date-time, e.g. 2026-11-22 or 2026-11-22T14:00"
        ) from exc
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _show_ingest(summaries: list[IngestSummary]) -> None:
    table = Table("source", "status", "rows in", "raw", "quarantined", "seconds", title="Ingest")
    for s in summaries:
        colour = {"ingested": "green", "refused": "red"}.get(s.status, "yellow")
        table.add_row(
            Path(s.source).name,
            f"[{colour}]{s.status}[/]",
            f"{s.rows_in:,}",
            f"{s.rows_raw:,}",
            f"{s.rows_quarantined:,}",
            f"{s.seconds:.2f}",
        )
    out.print(table)
    rules = Table("source", "column", "rule", "rows", "examples", title="Quarantined rows by rule")
    for s in summaries:
        for r in s.rule_counts:
            rules.add_row(Path(s.source).name, r.column, r.rule, f"{r.rows:,}", ", ".join(map(repr, r.examples)))
    if rules.row_count:
        out.print(rules)
    for s in summaries:
        if s.ignored_columns:
            out.print(
                f"[yellow]{Path(s.source).name}: columns not in the contract were ignored:[/] {s.ignored_columns}"
            )
        for problem in s.problems:
            err.print(f"[bold red]refused[/] {s.source}: {problem}", highlight=False)


def _rule_text(low: float | None, high: float | None, allowed: list[str] | None) -> str:
    if allowed is not None:
        shown = ", ".join(allowed[:5]) + (", ..." if len(allowed) > 5 else "")
        return f"one of {shown}"
    if low is not None or high is not None:
        return f"{low if low is not None else '-inf'} .. {high if high is not None else 'inf'}"
    return ""


def main() -> None:
    """Entry point of the ``driftloop`` script."""
    # MLflow reports every registration at INFO; driftloop's own output already says what happened.
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    app()
