"""Commands for models: train, evaluate, promote, rollback, models."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from driftloop.cli.common import (
    EpochProgress,
    JsonOption,
    ProjectOption,
    emit_json,
    handled,
    out,
    progress_bar,
    show_metrics,
    table_project,
)
from driftloop.cli.images import train_image_network
from driftloop.errors import ConfigError
from driftloop.project import Project


@handled
def train(
    project_dir: ProjectOption = Path(),
    features_version: Annotated[int | None, typer.Option(help="Features table version to train on.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Train the network on the features table (an image project's on its labelled images), track the run in
    MLflow, register a dev version."""
    from driftloop.model.trainer import train_project
    from driftloop.monitor.prepare import prepare_monitoring
    from driftloop.registry.mlflow.tracking import MlflowTracker

    project = Project.load(project_dir)
    if project.settings.images is not None:
        if features_version is not None:
            raise ConfigError("--features-version names a features table; an image project trains on its images")
        train_image_network(project, project_dir, as_json)
        return
    epochs = project.settings.train.epochs
    with progress_bar(as_json, bar=True) as progress, MlflowTracker(project) as tracker:
        task = progress.add_task("training", total=epochs)
        watcher = EpochProgress(progress, task)
        trained = train_project(project, features_version=features_version, callbacks=[tracker, watcher])
        progress.update(task, completed=epochs, description="calibrating drift alarms, fitting estimators")
        prepare_monitoring(trained, project)
        progress.update(task, description="recording the run")
        version = tracker.record(trained)
    summary = {
        "model": tracker.model_name,
        "version": version,
        "run_id": tracker.run_id,
        "features_version": trained.features_version,
        "epochs": len(trained.fit.history),
        "best_epoch": trained.fit.best_epoch,
        "train_seconds": round(trained.train_seconds, 2),
        "refit_rows": trained.package.lineage["refit"] and trained.package.lineage["refit"]["rows"],
        "logging_seconds": round(tracker.logging_seconds, 2),
        "metrics": trained.metrics,
        "baseline": trained.baseline_metrics,
        "inputs_left_out": trained.package.lineage["inputs_left_out"],
    }
    if as_json:
        emit_json(summary)
        return
    out.print(
        f"[green]registered[/] {tracker.model_name} version {version} (stage dev) from features version "
        f"{trained.features_version}: best epoch {trained.fit.best_epoch} of {len(trained.fit.history)}, "
        f"{trained.train_seconds:.1f} s"
        + (f", then refit on all {summary['refit_rows']:,} rows" if summary["refit_rows"] else "")
    )
    show_metrics(
        "Test window (held out of the fit that chose the epochs)",
        trained.metrics["test"],
        trained.baseline_metrics["test"],
        "baseline",
    )
    if summary["inputs_left_out"]:
        out.print(
            f"[yellow]left out[/] {', '.join(summary['inputs_left_out'])}: no value in the training window, "
            "nothing to learn from; a later retrain takes them in once they have values"
        )
    out.print(
        f"Next: `driftloop promote {version} --project {project_dir}`; "
        f"runs: `mlflow ui --backend-store-uri {project.tracking_uri}`"
    )


@handled
def evaluate(
    version: Annotated[str, typer.Argument(help="Model version to score.")],
    project_dir: ProjectOption = Path(),
    as_json: JsonOption = False,
) -> None:
    """Score a version (and the champion) on the most recent labelled window."""
    from driftloop.model.data import recent_labelled_rows
    from driftloop.registry import Registry
    from driftloop.registry.gates import score

    project = table_project(project_dir, "evaluate")
    registry = Registry(project)
    window = recent_labelled_rows(project.lake, project.feature_set(), project.settings.promote.window_days)
    metrics = score(registry.load(version), window)
    champion = registry.champion()
    baseline = score(registry.load(champion), window) if champion and champion != version else None
    if as_json:
        champion_part = {"version": champion, "metrics": baseline} if baseline else None
        emit_json({"version": version, "rows": window.height, "metrics": metrics, "champion": champion_part})
        return
    title = f"Version {version} on the last {project.settings.promote.window_days:g} days ({window.height:,} rows)"
    show_metrics(title, metrics, baseline, f"champion v{champion}")


@handled
def promote(
    version: Annotated[str | None, typer.Argument(help="Version to promote (default: newest in dev or qa).")] = None,
    project_dir: ProjectOption = Path(),
    as_json: JsonOption = False,
) -> None:
    """Run the gates: dev -> qa (fresh load, contract, latency, floors, baseline), then qa -> prod."""
    from driftloop.registry import Registry

    registry = Registry(Project.load(project_dir))
    with progress_bar(as_json) as progress:
        progress.add_task("running the promotion gates", total=None)
        chosen = version or registry.next_candidate()
        decisions = registry.promote(chosen)
    if as_json:
        emit_json([d.to_dict() for d in decisions])
        return
    for decision in decisions:
        show_decision(decision)
    waiting = registry.awaiting(chosen)
    if waiting is not None:
        out.print(f"version {chosen} stays in qa as the challenger: it {waiting.describe()}")


@handled
def rollback(project_dir: ProjectOption = Path(), as_json: JsonOption = False) -> None:
    """Make the previous champion the champion again."""
    from driftloop.registry import Registry

    decision = Registry(Project.load(project_dir)).rollback()
    if as_json:
        emit_json(decision.to_dict())
    else:
        show_decision(decision)


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
        when = parse_when(at)
        champion = registry.champion_at(when)
        if as_json:
            emit_json({"at": when.isoformat(), "champion": champion})
        else:
            out.print(
                f"champion at {when:%Y-%m-%d %H:%M:%S %Z}: {'none' if champion is None else 'version ' + champion}"
            )
        return
    aliases = registry.aliases()
    by_version: dict[str, list[str]] = {}
    for alias, number in aliases.items():
        by_version.setdefault(number, []).append(alias)
    rows: list[dict[str, Any]] = []
    for v in registry.versions():
        metrics = {k: round(m, 4) for k, m in registry.test_metrics(v).items()}
        rows.append(
            {
                "version": v.version,
                "stage": v.stage.value,
                "aliases": sorted(by_version.get(v.version, [])),
                "created": v.created.isoformat(),
                "test_metrics": metrics,
                "decision": v.tags.get("decision"),
                "reason": v.tags.get("decision_reason"),
            }
        )
    events = registry.events()
    if as_json:
        emit_json({"versions": rows, "events": events.to_dicts()})
        return
    table = Table("version", "stage", "aliases", "created (UTC)", "test metrics", "last decision", title=registry.name)
    decisive = (project.settings.promote.metric, project.settings.promote.class_metric)
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


def show_decision(decision: Any) -> None:
    colour = "green" if decision.accepted else "red"
    move = f"{decision.stage_before} -> {decision.stage_after}"
    out.print(f"[{colour}]{decision.kind}[/]: version {decision.version} {move}: {decision.reason}")
    if decision.gates:
        table = Table("gate", "passed", "detail")
        for gate in decision.gates:
            table.add_row(gate.name, "[green]yes[/]" if gate.passed else "[red]no[/]", gate.detail)
        out.print(table)


def parse_when(text: str) -> datetime:
    try:
        when = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ConfigError(
            f"--at {text!r} is not an ISO date or date-time, e.g. 2026-11-22 or 2026-11-22T14:00"
        ) from exc
    return when if when.tzinfo else when.replace(tzinfo=UTC)
