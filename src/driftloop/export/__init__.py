"""The daily tick written for the schedulers teams already run: a Databricks Jobs definition
(:mod:`.databricks`) and an Airflow DAG file (:mod:`.airflow`).

Both run ``driftloop run`` for the project at ``[loop] schedule_at`` in the contract's time zone,
one run at a time, retried once: a tick is idempotent (a batch, a window or a retrain already
done is not done twice), so a retry or a rerun of a day is safe.
"""

from __future__ import annotations

from driftloop.export.airflow import airflow_dag
from driftloop.export.databricks import databricks_job
from driftloop.export.schedule import Schedule

__all__ = ["Schedule", "airflow_dag", "databricks_job"]
