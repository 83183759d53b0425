"""The demo's daily tick on either engine: the same inbox (a CSV of the winter's readings),
one tick each with the project's engine set to Polars and to Spark (``local[2]``), and the
tables they end with compared. Slow (a Spark tick trains, promotes through the gates and
monitors), so it runs with the integrations (`make integrations`)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest

from driftloop.demo import create_demo_project
from driftloop.demo.data import TIME, load_energy
from driftloop.engine import ENGINES, SparkOptions
from driftloop.lake import Table
from driftloop.loop import tick
from driftloop.project import Project
from tests.test_engine_stages import WHEN, assert_same_rows

DAY = date(2016, 1, 31)
# What differs between two runs of the same tick: when they ran, the ids of jobs and runs, and
# the path of the inbox file (each project has its own folder).
VOLATILE = [*WHEN, "scored_at", "job_id", "run_id", "computed_at", "_source"]
ORDER = {
    Table.RAW: ["_batch_id", "_row"],
    Table.QUARANTINE: ["_batch_id", "_row"],
    Table.FEATURES: [TIME],
    Table.PREDICTIONS: ["prediction_id"],
    Table.MONITORING: ["section", "column", "statistic"],
}


@pytest.mark.integration
def test_the_demos_daily_tick_ends_with_the_same_tables_on_either_engine(tmp_path: Path) -> None:
    inbox_file = tmp_path / "readings_until_2016-01-31.csv"
    load_energy().filter(pl.col(TIME).str.slice(0, 10) <= str(DAY)).write_csv(inbox_file)
    tables, verdicts = {}, {}
    for engine in sorted(ENGINES):
        project, _ = create_demo_project(tmp_path / engine)
        update = {
            "project": project.settings.project.model_copy(update={"engine": engine}),
            "spark": SparkOptions(master="local[2]"),
        }
        Project(project.root, project.settings.model_copy(update=update)).save()
        project = Project.load(project.root)
        project.inbox.mkdir(parents=True, exist_ok=True)
        (project.inbox / inbox_file.name).write_bytes(inbox_file.read_bytes())
        report = tick(project, DAY)
        assert report.trained_version == "1" and report.monitored is not None, report.notes
        verdicts[engine] = report.monitored.verdict
        tables[engine] = {table: _table(project, table, order) for table, order in ORDER.items()}
    assert verdicts["spark"] == verdicts["polars"]
    for table in ORDER:
        mine, theirs = tables["spark"][table], tables["polars"][table]
        assert mine.height > 0 or table is Table.QUARANTINE, table
        assert_same_rows(mine, theirs)


def _table(project: Project, table: Table, order: list[str]) -> pl.DataFrame:
    if not project.lake.exists(table):
        return pl.DataFrame()
    rows = project.lake.read(table)
    return rows.drop([c for c in VOLATILE if c in rows.columns]).sort(order)
