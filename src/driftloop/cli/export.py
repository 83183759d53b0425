"""``driftloop export``: the daily tick written for another scheduler (a Databricks job, an
Airflow DAG), printed or written to a file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from driftloop.cli.common import ProjectOption, err, handled, out
from driftloop.export import Schedule, airflow_dag, databricks_job
from driftloop.project import Project

app = typer.Typer(help="Write the daily tick for a scheduler: a Databricks job, an Airflow DAG.", no_args_is_help=True)
OutOption = Annotated[Path | None, typer.Option("--out", "-o", help="Write here (default: print it).")]
PathOption = Annotated[
    str | None,
    typer.Option(
        "--project-path", help="Where the scheduler finds the project folder (default: its path on this machine)."
    ),
]


@app.command("databricks-job")
@handled
def databricks(
    out_file: OutOption = None,
    project_path: PathOption = None,
    cluster_id: Annotated[
        str | None, typer.Option(help="Run on this existing cluster (default: serverless compute).")
    ] = None,
    project_dir: ProjectOption = Path(),
) -> None:
    """A Databricks Jobs definition of the daily tick (`databricks jobs create --json @FILE`)."""
    project = Project.load(project_dir)
    schedule = Schedule.of(project, project_path)
    text = json.dumps(databricks_job(schedule, cluster_id=cluster_id), indent=2) + "\n"
    notes = _databricks_notes(project, schedule)
    _emit(text, out_file, f"create it with: databricks jobs create --json @{out_file}", notes)


@app.command("airflow")
@handled
def airflow(
    out_file: OutOption = None,
    project_path: PathOption = None,
    command: Annotated[
        str, typer.Option(help="How the task's host runs driftloop, e.g. /opt/venvs/driftloop/bin/driftloop.")
    ] = "driftloop",
    project_dir: ProjectOption = Path(),
) -> None:
    """An Airflow DAG file of the daily tick (copy it to the DAGs folder)."""
    project = Project.load(project_dir)
    schedule = Schedule.of(project, project_path)
    text = airflow_dag(schedule, command=command)
    _emit(text, out_file, f"copy {out_file} into Airflow's DAGs folder", [])


def _emit(text: str, out_file: Path | None, next_step: str, notes: list[str]) -> None:
    if out_file is None:
        print(text, end="")
    else:
        out_file.parent.mkdir(parents=True, exist_ok=True)
        out_file.write_text(text, encoding="utf-8")
        out.print(f"[green]wrote[/] {out_file}; {next_step}")
    for note in notes:
        err.print(f"[yellow]note:[/] {escape(note)}")


def _databricks_notes(project: Project, schedule: Schedule) -> list[str]:
    """What the project's settings would do differently on Databricks than the user may expect."""
    settings = project.settings.project
    notes = []
    if settings.engine != "spark":
        notes.append('[project] engine is polars: the tick runs on the driver alone; engine = "spark" uses the cluster')
    elif project.settings.spark.delta != "native":
        notes.append('[spark] delta is delta-rs; on Databricks, Delta is native: delta = "native"')
    if not settings.tracking_uri.startswith("databricks"):
        notes.append(
            f"[project] tracking_uri is {settings.tracking_uri}: runs and models stay in the project folder; "
            'tracking_uri = "databricks" and registry_uri = "databricks-uc" use the workspace\'s MLflow'
        )
    if not schedule.project_path.startswith(("/Volumes/", "/Workspace/", "/dbfs/")):
        notes.append(
            f"the job reads the project at {schedule.project_path}; pass --project-path with where it is on "
            "Databricks (a Unity Catalog volume: /Volumes/CATALOG/SCHEMA/VOLUME/...)"
        )
    return notes
