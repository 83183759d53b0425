"""The demo: a project made from the UCI Appliances Energy data, run through the loop.

``run_demo`` creates the project, writes the data as one CSV per day into its inbox (the shape
of a daily export), ingests the first days, materialises features, trains the network (tracked
in MLflow) and runs the promotion gates, which make it the first champion.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from rich.console import Console
from rich.table import Table

from driftloop.config import PROJECT_FILE, Project, init_project
from driftloop.demo.data import TARGETS, TIME, energy_csv, load_energy, messy_energy, split_by_day
from driftloop.errors import ConfigError
from driftloop.features import ExpressionFeature, materialize
from driftloop.ingest import ingest
from driftloop.lake import TABLES

# Derived features a person who knows the house would add: mean indoor temperature and
# the indoor/outdoor gaps that drive heating.
DEMO_FEATURES = (
    ExpressionFeature(name="T_indoor_mean", expr="(T1 + T2 + T3 + T4 + T5 + T7 + T8 + T9) / 8"),
    ExpressionFeature(name="T_gap", expr="T_indoor_mean - T_out"),
    ExpressionFeature(name="RH_gap", expr="RH_1 - RH_out"),
)


def create_demo_project(folder: Path, *, force: bool = False) -> Project:
    """A fresh project for the demo data, its contract drafted from the first week."""
    folder = folder.resolve()
    if folder.exists() and any(folder.iterdir()):
        if not (folder / PROJECT_FILE).exists():
            raise ConfigError(f"{folder} exists and is not a driftloop project; choose an empty folder")
        if not force:
            raise ConfigError(f"{folder} already holds a project; pass --force to start it afresh")
        shutil.rmtree(folder)
    frame = load_energy()
    project = init_project(folder, sample=frame.head(7 * 144), name="energy-demo", time_column=TIME, targets=TARGETS)
    settings = project.settings.model_copy(update={"features": [*project.settings.features, *DEMO_FEATURES]})
    project = Project(project.root, settings)
    project.save()
    split_by_day(frame, project.inbox)
    return project


def run_demo(folder: Path, *, days: int = 21, force: bool = False, console: Console | None = None) -> Project:
    """Create the demo project, ingest its first ``days`` daily files and build features."""
    show = console or Console()
    project = create_demo_project(folder, force=force)
    files = sorted(project.inbox.glob("*.csv"))[:days]
    show.print(f"[bold]driftloop demo[/] in {project.root} — UCI Appliances Energy data, {len(files)} days")
    summaries = []
    with show.status("ingesting daily files") as status:
        for path in files:
            status.update(f"ingesting {path.name}")
            summaries += ingest(project, path, on_refused="continue")
    rejected = sum(s.rows_quarantined for s in summaries)
    accepted = sum(s.rows_raw for s in summaries)
    show.print(f"ingested {len(summaries)} daily files: {accepted:,} rows to raw, {rejected:,} to quarantine")
    run = materialize(project.lake, project.feature_set())
    show.print(f"features: version {run.version}, {run.rows:,} rows, {len(project.feature_set().inputs)} model inputs")
    lake = project.lake
    table = Table("table", "version", "rows", title="The lake")
    for name in TABLES:
        if lake.exists(name):
            table.add_row(name, str(lake.version(name)), f"{lake.row_count(name):,}")
    show.print(table)
    _train_and_promote(project, show)
    show.print(
        f"Next: `driftloop models --project {folder}`, `driftloop tables raw --project {folder}`, "
        f"`mlflow ui --backend-store-uri {project.tracking_uri}`"
    )
    return project


def _train_and_promote(project: Project, show: Console) -> None:
    # Imported here: torch and MLflow load only when the demo reaches training.
    from driftloop.model.trainer import train_project
    from driftloop.registry import Registry
    from driftloop.tracking import MlflowTracker

    with show.status("training the network (tracked in MLflow)"), MlflowTracker(project, run_name="demo") as tracker:
        trained = train_project(project, callbacks=[tracker])
        version = tracker.record(trained)
    test = trained.metrics["test"]
    baseline = trained.baseline_metrics["test"]
    for target in test:
        show.print(
            f"  {target}: test MAE {test[target]['mae']:.2f} (ridge baseline {baseline[target]['mae']:.2f}), "
            f"R² {test[target]['r2']:.2f}"
        )
    with show.status("running the promotion gates"):
        decisions = Registry(project).promote(version)
    for decision in decisions:
        show.print(f"  version {version}: {decision.kind} ({decision.reason})")


__all__ = ["create_demo_project", "energy_csv", "load_energy", "messy_energy", "run_demo", "split_by_day"]
