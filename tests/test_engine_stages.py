"""The stages on every engine: the same batches ingested, materialised, scored and monitored
through Polars and through Spark end with the same tables (the Spark engine's check, features,
scoring and profiles run on a local Spark; the Delta commits are the lake's)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import polars as pl
import pytest

from driftloop.demo.data import TARGETS, TIME, load_energy, messy_energy
from driftloop.engine import ENGINES, SparkEngine, SparkOptions
from driftloop.errors import SourceError
from driftloop.feature_table import materialize
from driftloop.features import DatetimeFeature
from driftloop.ingest import ingest
from driftloop.lake import INGEST_DATE, INGESTED_AT, ROW, Table
from driftloop.model.trainer import train_project
from driftloop.monitor import window as window_module
from driftloop.monitor.prepare import prepare_monitoring
from driftloop.monitor.window import estimate_sample, monitor_window
from driftloop.predict import predict_window
from driftloop.project import Project, init_project
from driftloop.registry import Registry
from driftloop.registry.mlflow.tracking import MlflowTracker
from driftloop.settings.train import TrainSettings
from tests.conftest import synthetic_rows

# What differs between two ingests of the same rows: when they happened.
WHEN = [INGESTED_AT, INGEST_DATE]


def on_engine(project: Project, engine: str) -> Project:
    """``project`` set to run its stages on ``engine`` (Spark on two local cores)."""
    update = {
        "project": project.settings.project.model_copy(update={"engine": engine}),
        "spark": SparkOptions(master="local[2]"),
    }
    Project(project.root, project.settings.model_copy(update=update)).save()
    return Project.load(project.root)


def _table(project: Project, table: Table, order: list[str]) -> pl.DataFrame:
    rows = project.lake.read(table)
    return rows.drop([c for c in WHEN if c in rows.columns]).sort(order)


def test_ingest_and_features_end_with_the_same_tables(tmp_path: Path) -> None:
    """Damaged rows of the demo data in two overlapping batches, a file (which a Spark engine
    reads itself) and a frame of the engine's kind: the same rows kept, the same quarantined with the same reasons,
    the same duplicates refused, the same features."""
    rows = messy_energy(1200).drop("damage")
    first = tmp_path / "first.csv"
    rows.head(700).write_csv(first)
    tables, summaries = {}, {}
    for engine in sorted(ENGINES):
        project = init_project(tmp_path / engine, sample=load_energy().head(1008), time_column=TIME, targets=TARGETS)
        project = on_engine(project, engine)
        second = project.engine.from_polars(rows.slice(500))  # a Spark DataFrame is ingested as it is
        done = ingest(project, first) + ingest(project, second, batch_id="second")
        materialize(project.lake, project.feature_set(), engine=project.engine)
        summaries[engine] = [(s.rows_in, s.rows_raw, s.rows_quarantined, s.rule_counts) for s in done]
        tables[engine] = [
            _table(project, Table.RAW, ["_batch_id", ROW]),
            _table(project, Table.QUARANTINE, ["_batch_id", ROW]),
            _table(project, Table.FEATURES, [TIME]),
        ]
    assert summaries["spark"] == summaries["polars"]
    assert summaries["polars"][1][2] > 200  # the overlap's keys were already stored
    for mine, theirs in zip(tables["spark"], tables["polars"], strict=True):
        assert_same_rows(mine, theirs)


def assert_same_rows(mine: pl.DataFrame, theirs: pl.DataFrame) -> None:
    """The same rows in the same order: every value equal, a float to rounding (a network's
    sums may be added in another order), a missing value missing in both."""
    assert mine.schema == theirs.schema and mine.height == theirs.height
    floats = [n for n, t in mine.schema.items() if t.is_float()]
    assert mine.drop(floats).equals(theirs.drop(floats))
    for name in floats:
        a, b = mine.get_column(name), theirs.get_column(name)
        assert a.is_null().equals(b.is_null()), name
        assert a.drop_nulls().to_numpy() == pytest.approx(b.drop_nulls().to_numpy(), rel=1e-12, abs=1e-15), name


@pytest.fixture(scope="module")
def champion(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """A champion over the synthetic rows with cyclic calendar parts among its inputs: a value
    of one of them one bit off its engine's twin lands in another bin of the reference."""
    rows = synthetic_rows()
    project = init_project(tmp_path_factory.mktemp("stages") / "p", sample=rows, time_column="ts", targets=("y",))
    calendar = DatetimeFeature(column="ts", parts=["hour", "day_of_week"])
    train = TrainSettings(hidden=[16], epochs=10, batch_size=64, patience=5)
    Project(project.root, project.settings.model_copy(update={"train": train, "features": [calendar]})).save()
    project = Project.load(project.root)
    ingest(project, rows, batch_id="synthetic")
    materialize(project.lake, project.feature_set())
    with MlflowTracker(project) as tracker:
        trained = train_project(project, callbacks=[tracker])
        prepare_monitoring(trained, project)  # drift calibration and estimators, as `driftloop train` does
        version = tracker.record(trained)
    Registry(project).promote(version)
    return project


def test_a_window_scored_and_monitored_on_either_engine_writes_the_same_rows(champion: Project) -> None:
    since, until = datetime(2024, 1, 8), datetime(2024, 1, 15)  # a whole week: every day of it
    written = {}
    for engine in sorted(ENGINES):  # each run replaces the window's rows of the one before
        project = on_engine(champion, engine)
        run = predict_window(project, since, until)
        report = monitor_window(project, since, until)
        predictions = project.lake.read(Table.PREDICTIONS).drop("job_id", "scored_at", "run_id")
        written[engine] = (run.rows, predictions.sort("event_time"), report.verdict, report.inputs, report)
    (rows, predictions, verdict, drift, report), polars = written["spark"], written["polars"]
    assert rows == polars[0] == 7 * 24
    assert_same_rows(predictions, polars[1])
    assert verdict == polars[2]
    theirs = polars[4]
    assert report.rows == theirs.rows == 7 * 24
    # The labels join ran on Spark; the metrics of its pairs are those of the Polars join.
    assert [p.rows for p in report.performance] == [p.rows for p in theirs.performance] == [7 * 24]
    for mine_target, their_target in zip(report.performance, theirs.performance, strict=True):
        assert mine_target.metrics == pytest.approx(their_target.metrics, rel=1e-9)
    assert report.estimates and [e.metrics[e.metric].value for e in report.estimates] == pytest.approx(
        [e.metrics[e.metric].value for e in theirs.estimates], rel=1e-9
    )
    assert {c.column for c in drift.columns} >= {"ts_hour_sin", "ts_day_of_week_cos"}
    for mine_drift, their_drift in zip(drift.columns, polars[3].columns, strict=True):
        assert mine_drift.column == their_drift.column
        statistic = their_drift.result.statistic
        assert mine_drift.result.statistic == pytest.approx(statistic, rel=1e-9, abs=1e-12), mine_drift.column


def test_a_window_too_large_to_estimate_whole_is_sampled_alike_on_every_engine(
    champion: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Beyond ``ESTIMATE_ROWS`` rows the estimates read a sample: the same rows on every engine,
    about the share asked for."""
    monkeypatch.setattr(window_module, "ESTIMATE_ROWS", 100)
    rows = champion.lake.read(Table.FEATURES)
    samples = {}
    for engine in sorted(ENGINES):
        chosen = on_engine(champion, engine).engine
        samples[engine] = estimate_sample(chosen, chosen.from_polars(rows), rows.height, champion.contract)
    assert samples["spark"].sort("ts").equals(samples["polars"].sort("ts"))
    assert 50 < samples["polars"].height < 160 and rows.height == 480


def test_a_spark_dataframe_given_to_the_polars_engine_says_which_engine_takes_it(tmp_path: Path) -> None:
    project = init_project(tmp_path / "p", sample=load_energy().head(200), time_column=TIME, targets=TARGETS)
    rows = SparkEngine(SparkOptions(master="local[2]")).from_polars(load_energy().head(10))
    with pytest.raises(SourceError, match=r'engine = "spark"'):
        ingest(project, rows, batch_id="spark-frame")
    assert not project.lake.exists(Table.RAW)
