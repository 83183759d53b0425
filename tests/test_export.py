"""The daily tick exported for other schedulers: a Databricks job every key of which the
Databricks SDK knows, and an Airflow DAG that a real Airflow imports and whose rendered command
runs the project's tick for the run's day."""

from __future__ import annotations

import ast
import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from databricks.sdk.service.jobs import JobSettings
from typer.testing import CliRunner

from driftloop.cli import app
from driftloop.export import Schedule, airflow_dag, databricks_job
from driftloop.project import Project

AIRFLOW = "apache-airflow==3.3.2"
AIRFLOW_VENV = Path(__file__).resolve().parent / ".airflow-venv"


def zoned(project: Project, zone: str = "America/New_York", at: str = "02:30") -> Project:
    """``project`` with its loop's days in ``zone`` and its tick at ``at``."""
    contract = project.contract.model_copy(update={"timezone": zone})
    loop = project.settings.loop.model_copy(update={"schedule_at": at})
    Project(project.root, project.settings.model_copy(update={"contract": contract, "loop": loop})).save()
    return Project.load(project.root)


@pytest.mark.parametrize("cluster", [None, "0601-182128-dcbte59m"])
def test_a_databricks_job_is_settings_the_jobs_api_reads_whole(small_project: Project, cluster: str | None) -> None:
    """Parsed by the Databricks SDK's own ``JobSettings`` and written back, the job is unchanged:
    no key the Jobs API would drop or refuse."""
    schedule = Schedule.of(zoned(small_project), "/Volumes/main/ml/projects/small")
    job = databricks_job(schedule, cluster_id=cluster)
    assert JobSettings.from_dict(job).as_dict() == job
    assert job["schedule"] == {
        "quartz_cron_expression": "0 30 2 * * ?", "timezone_id": "America/New_York", "pause_status": "UNPAUSED"
    }  # fmt: skip
    assert job["max_concurrent_runs"] == 1
    [task] = job["tasks"]
    assert task["python_wheel_task"]["parameters"] == ["run", "--project", "/Volumes/main/ml/projects/small"]
    requirement = schedule.requirement
    # The tick's own libraries; the runtime brings pyspark.
    assert requirement.startswith("driftloop[pipeline,reports]==") and "spark" not in requirement
    if cluster:
        assert task["existing_cluster_id"] == cluster and task["libraries"] == [{"pypi": {"package": requirement}}]
        assert "environments" not in job
    else:
        assert job["environments"][0]["spec"]["dependencies"] == [requirement]
        assert task["environment_key"] == job["environments"][0]["environment_key"]


def test_the_export_commands_write_files_and_say_what_would_differ_on_databricks(
    small_project: Project, tmp_path: Path
) -> None:
    runner = CliRunner()
    job_file, dag_file = tmp_path / "out" / "job.json", tmp_path / "dags" / "driftloop_small.py"
    done = runner.invoke(app, ["export", "databricks-job", "-p", str(small_project.root), "-o", str(job_file)])
    assert done.exit_code == 0, done.output
    assert json.loads(job_file.read_text())["tasks"][0]["python_wheel_task"]["parameters"][-1] == str(
        small_project.root
    )
    said = " ".join(done.output.split())  # the console wraps long lines
    assert "databricks jobs create --json @" in said
    assert "[project] engine is polars" in said and "--project-path" in said
    done = runner.invoke(app, ["export", "airflow", "-p", str(small_project.root), "-o", str(dag_file)])
    assert done.exit_code == 0, done.output
    ast.parse(dag_file.read_text())  # a Python file
    printed = runner.invoke(app, ["export", "airflow", "-p", str(small_project.root)])
    assert printed.exit_code == 0 and printed.stdout.startswith('"""driftloop: the daily tick')
    missing = runner.invoke(app, ["export", "airflow", "-p", str(tmp_path / "nowhere")])
    assert missing.exit_code == 1 and "no driftloop.toml" in " ".join(missing.output.split())


@pytest.fixture(scope="module")
def airflow_python() -> Path:
    """A real Airflow, in a virtual environment of its own beside the tests (its dependencies
    would clash with driftloop's); installed once, about a minute, from the package registry."""
    python = AIRFLOW_VENV / "bin" / "python"
    marker = AIRFLOW_VENV / f".installed-{AIRFLOW}"
    if not marker.exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(AIRFLOW_VENV)], check=True, timeout=120)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", AIRFLOW], check=True, timeout=900)
        marker.touch()
    return python


# Imports a DAG file as Airflow's DAG processor would (a module), and renders its task's command
# for a run whose data interval ends at 2026-03-02 07:30 UTC, and for one with none.
INSPECT = """
import importlib.util, json, sys
import pendulum
spec = importlib.util.spec_from_file_location("dag_file", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
dag = module.dag
task = dag.get_task("tick")
end = pendulum.datetime(2026, 3, 2, 7, 30, tz="UTC")
print(json.dumps({
    "dag_id": dag.dag_id,
    "timetable": repr(dag.timetable),
    "tasks": dag.task_ids,
    "max_active_runs": dag.max_active_runs,
    "catchup": dag.catchup,
    "retries": task.retries,
    "command": task.render_template(task.bash_command, {"data_interval_end": end}),
    "by_hand": task.render_template(task.bash_command, {"data_interval_end": None}),
}))
"""


@pytest.mark.integration
def test_a_real_airflow_imports_the_dag_and_its_command_ticks_the_runs_day(
    small_project: Project, tmp_path: Path, airflow_python: Path
) -> None:
    """2026-03-02 07:30 UTC is 02:30 in New York: the run of that day ticks 2026-03-02."""
    project = zoned(small_project)
    driftloop = str(Path(sys.executable).with_name("driftloop"))
    dag_file = tmp_path / "driftloop_small.py"
    dag_file.write_text(airflow_dag(Schedule.of(project), command=driftloop), encoding="utf-8")
    env = {"AIRFLOW_HOME": str(tmp_path / "airflow"), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [str(airflow_python), "-c", INSPECT, str(dag_file)], capture_output=True, text=True, timeout=300, env=env
    )
    assert done.returncode == 0, done.stderr[-3000:]
    dag = json.loads(done.stdout.strip().splitlines()[-1])
    assert dag["dag_id"] == "driftloop_small" and dag["tasks"] == ["tick"]
    assert "30 2 * * *" in dag["timetable"] and "America/New_York" in dag["timetable"]
    assert dag["max_active_runs"] == 1 and dag["catchup"] is False and dag["retries"] == 1
    assert dag["command"].endswith("--date 2026-03-02") and "--date" not in dag["by_hand"]
    tick = subprocess.run(
        [*shlex.split(dag["command"]), "--json"], capture_output=True, text=True, timeout=300, check=False
    )  # what the task runs, run for real
    assert tick.returncode == 0, tick.stderr[-3000:]
    assert json.loads(tick.stdout)["day"] == "2026-03-02"
