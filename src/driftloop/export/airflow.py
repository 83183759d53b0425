"""The daily tick as an Airflow DAG file: one task running ``driftloop run`` at ``[loop]
schedule_at`` in the contract's zone.

The tick's day is the run's: the end of its data interval, in the contract's zone, which is the
day it runs on (Airflow 2's interval ends when the run starts; Airflow 3's cron schedule has the
interval end at the run's time). A run with no interval (triggered by hand in Airflow 3) ticks
today. Clearing a past run ticks its day again, which is safe: ticks are idempotent. The file
imports its operator from where Airflow 3 keeps it, else from Airflow 2's place.
"""

from __future__ import annotations

import shlex
from datetime import date

from driftloop.export.schedule import RETRY_MINUTES, TIMEOUT_HOURS, Schedule

TEMPLATE = '''"""driftloop: the daily tick of the project {name}, written by `driftloop export airflow`.

Runs `driftloop run` at {hour:02d}:{minute:02d} {zone} for the day of each run: ingest the inbox,
features, score, monitor, retrain when the policy says so. A tick is idempotent, so a retry or
a cleared run is safe. Needs {requirement} where the task runs.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum

try:  # Airflow 3
    from airflow.providers.standard.operators.bash import BashOperator
    from airflow.sdk import DAG
except ImportError:  # Airflow 2
    from airflow import DAG
    from airflow.operators.bash import BashOperator

ZONE = {zone!r}
# The run's day in the project's zone; none for a run without a data interval (today is ticked).
DAY = (
    "{{% if data_interval_end %}}--date "
    "{{{{ data_interval_end.in_timezone('{zone}').strftime('%Y-%m-%d') }}}}{{% endif %}}"
)

with DAG(
    dag_id={dag_id!r},
    description={description!r},
    schedule={cron!r},
    start_date=pendulum.datetime({start.year}, {start.month}, {start.day}, tz=ZONE),
    catchup=False,
    max_active_runs=1,
    default_args={{
        "retries": 1,
        "retry_delay": timedelta(minutes={retry}),
        "execution_timeout": timedelta(hours={timeout}),
    }},
    tags=["driftloop"],
) as dag:
    BashOperator(task_id="tick", bash_command={command!r} + " " + DAY)
'''


def airflow_dag(schedule: Schedule, *, command: str = "driftloop", start: date | None = None) -> str:
    """The DAG file's text; ``command`` is how the task's host runs driftloop (a path to a
    virtual environment's script, say), ``start`` the first day it may run (default: today)."""
    tick = f"{command} run --project {shlex.quote(schedule.project_path)}"
    return TEMPLATE.format(
        name=schedule.name,
        hour=schedule.hour,
        minute=schedule.minute,
        zone=schedule.zone,
        requirement=schedule.requirement,
        dag_id=f"driftloop_{schedule.slug}",
        description=f"driftloop {schedule.name}: daily tick",
        cron=f"{schedule.minute} {schedule.hour} * * *",
        start=start or date.today(),
        retry=RETRY_MINUTES,
        timeout=TIMEOUT_HOURS,
        command=tick,
    )
