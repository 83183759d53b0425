"""The daily tick as a Databricks job: the settings ``databricks jobs create --json @FILE`` (Jobs
API 2.2 ``JobSettings``) takes.

One task runs ``driftloop run --project PATH`` through driftloop's console entry point (a
``python_wheel_task`` of the installed package) at ``[loop] schedule_at`` in the contract's
zone. It runs on serverless compute with driftloop as the environment's dependency, or on an
existing cluster with driftloop as the task's library. The project folder must be where the
job can read and write it (a Unity Catalog volume, ``/Volumes/CATALOG/SCHEMA/VOLUME/PROJECT``).
Pyspark is the runtime's own, so the dependency is driftloop without its ``spark`` extra.
"""

from __future__ import annotations

from typing import Any

from driftloop.export.schedule import RETRY_MINUTES, TIMEOUT_HOURS, Schedule

TASK = "tick"
ENVIRONMENT = "driftloop"
ENVIRONMENT_VERSION = "2"  # the serverless environment: Python 3.11, as driftloop needs


def databricks_job(schedule: Schedule, *, cluster_id: str | None = None) -> dict[str, Any]:
    """The job's settings: on serverless compute, or on the existing cluster ``cluster_id``."""
    task: dict[str, Any] = {
        "task_key": TASK,
        "description": "driftloop run: ingest the inbox, features, score, monitor, retrain when the policy says so",
        "python_wheel_task": {
            "package_name": "driftloop",
            "entry_point": "driftloop",
            "parameters": ["run", "--project", schedule.project_path],
        },
        "max_retries": 1,
        "min_retry_interval_millis": RETRY_MINUTES * 60_000,
        "retry_on_timeout": True,
        "timeout_seconds": TIMEOUT_HOURS * 3600,
    }
    job: dict[str, Any] = {
        "name": f"driftloop {schedule.name}: daily tick",
        "description": f"The daily tick of the driftloop project {schedule.name} ({schedule.project_path}).",
        "tags": {"driftloop": schedule.name},
        "max_concurrent_runs": 1,  # two ticks of one project never overlap
        "schedule": {
            "quartz_cron_expression": f"0 {schedule.minute} {schedule.hour} * * ?",
            "timezone_id": schedule.zone,
            "pause_status": "UNPAUSED",
        },
        "tasks": [task],
    }
    if cluster_id is not None:
        task["existing_cluster_id"] = cluster_id
        task["libraries"] = [{"pypi": {"package": schedule.requirement}}]
    else:
        task["environment_key"] = ENVIRONMENT
        spec = {"environment_version": ENVIRONMENT_VERSION, "dependencies": [schedule.requirement]}
        job["environments"] = [{"environment_key": ENVIRONMENT, "spec": spec}]
    return job
