"""Delta from Spark without Delta's jars: Spark writes Parquet into the table's folder, delta-rs
commits it with file statistics, Spark reads the files the log lists. Every table written this
way must read back the same through Polars and delta-rs, and the other way round."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from driftloop.engine import SparkEngine, SparkOptions
from driftloop.errors import LakeError
from driftloop.lake import BATCH_ID, COLUMNS, INGEST_DATE, INGESTED_AT, ROW, RULES, SOURCE, Lake, Table, Where
from driftloop.lake.spark_files import scan_spark


@pytest.fixture(scope="module")
def spark() -> SparkEngine:
    return SparkEngine(SparkOptions(master="local[2]"))


def raw_rows(batch: str, days: list[date], *, start: int = 1) -> pl.DataFrame:
    """Rows of ``raw`` as ingest writes them: the contract's columns typed, and the batch's."""
    n = len(days)
    return pl.DataFrame(
        {
            ROW: pl.Series(range(start, start + n), dtype=pl.Int64),
            "sensor": [f"s{i % 3}" if i % 5 else None for i in range(n)],
            "at": [datetime(d.year, d.month, d.day, i % 24) for i, d in enumerate(days)],
            "t": [float(i) / 3 if i % 4 else None for i in range(n)],
            BATCH_ID: batch,
            SOURCE: f"{batch}.csv",
            INGESTED_AT: datetime(2026, 12, 3, 9, tzinfo=UTC),
            "_event_date": days,
        }
    )


def quarantine_rows(batch: str) -> pl.DataFrame:
    return pl.DataFrame(
        {
            ROW: pl.Series([2, 7], dtype=pl.Int64),
            "sensor": ["s1", None],
            "at": ["2016-13-45 25:61:00", "2016-01-11 17:00:00"],
            "t": ["warm", "-999"],
            RULES: [["at:type", "t:type"], ["t:min"]],
            COLUMNS: [["at", "t"], ["t"]],
            BATCH_ID: batch,
            SOURCE: f"{batch}.csv",
            INGESTED_AT: datetime(2026, 12, 3, 9, tzinfo=UTC),
            INGEST_DATE: date(2026, 12, 3),
        }
    )


DAYS = [date(2016, 1, 30), date(2016, 1, 31), date(2016, 2, 1), date(2016, 2, 2)] * 5


def _sorted(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.select(sorted(frame.columns)).sort(BATCH_ID, ROW)


def test_spark_rows_read_back_as_polars_rows_do(tmp_path: Path, spark: SparkEngine) -> None:
    """The same rows written by each path: the same table to every reader, with file statistics."""
    by_polars, by_spark = Lake(tmp_path / "polars"), Lake(tmp_path / "spark")
    for table, rows in ((Table.RAW, raw_rows("b1", DAYS)), (Table.QUARANTINE, quarantine_rows("b1"))):
        by_polars.append(table, rows)
        by_spark.append(table, spark.from_polars(rows))
        mine, theirs = by_spark.read(table), by_polars.read(table)
        assert _sorted(mine).equals(_sorted(theirs))
        assert pl.read_delta(by_spark.uri(table)).height == rows.height  # another reader, same rows
    actions = pl.DataFrame(DeltaTable(by_spark.uri(Table.RAW)).get_add_actions(flatten=True))
    assert sorted(actions.get_column("partition._event_month").unique()) == ["2016-01", "2016-02"]
    assert actions.get_column("num_records").sum() == len(DAYS)
    assert actions.get_column("null_count.sensor").sum() == 4 and actions.get_column("min.sensor").min() == "s0"
    assert actions.get_column("min.at").min() == datetime(2016, 1, 30)
    assert not any(p.name.startswith("_spark-") for p in Path(by_spark.uri(Table.RAW)).iterdir())


def test_spark_reads_what_either_path_wrote(tmp_path: Path, spark: SparkEngine) -> None:
    lake = Lake(tmp_path)
    lake.append(Table.RAW, raw_rows("b1", DAYS))
    lake.append(Table.RAW, spark.from_polars(raw_rows("b2", DAYS[:7])))
    lake.append(Table.QUARANTINE, quarantine_rows("b1"))
    for table in (Table.RAW, Table.QUARANTINE):
        scanned = spark.to_polars(scan_spark(lake, spark.session, table))
        assert _sorted(scanned).equals(_sorted(lake.read(table)))
    first = spark.to_polars(scan_spark(lake, spark.session, Table.RAW, version=0))
    assert first.height == len(DAYS) and set(first.get_column(BATCH_ID)) == {"b1"}


def test_a_rerun_replaces_its_batch_and_nothing_else(tmp_path: Path, spark: SparkEngine) -> None:
    lake = Lake(tmp_path)
    lake.append(Table.RAW, raw_rows("b1", DAYS))
    where = Where(equal={BATCH_ID: "b2"})
    again = spark.from_polars(raw_rows("b2", DAYS[:6]))
    for _ in range(2):
        lake.replace(Table.RAW, again, where=where)
    rows = lake.read(Table.RAW)
    assert rows.height == len(DAYS) + 6 and rows.filter(pl.col(BATCH_ID) == "b2").height == 6
    version = lake.version(Table.RAW)
    lake.append(Table.RAW, spark.from_polars(raw_rows("b3", DAYS[:2])), transaction="ingest-b3")
    assert lake.committed(Table.RAW, "ingest-b3") and lake.version(Table.RAW) == (version or 0) + 1


def test_a_failed_write_commits_nothing_and_leaves_no_file(tmp_path: Path, spark: SparkEngine) -> None:
    lake = Lake(tmp_path)
    lake.append(Table.RAW, raw_rows("b1", DAYS))
    before = sorted(p for p in Path(lake.uri(Table.RAW)).rglob("*") if p.is_file())
    import pyspark.sql.functions as sf

    on_fire = sf.when(sf.col("t") > -1, sf.raise_error(sf.lit("sensor on fire"))).otherwise(sf.col("t"))
    broken = spark.from_polars(raw_rows("b2", DAYS)).withColumn("t", on_fire)
    with pytest.raises(LakeError, match="Spark could not write the files"):
        lake.append(Table.RAW, broken)
    assert lake.version(Table.RAW) == 0
    assert sorted(p for p in Path(lake.uri(Table.RAW)).rglob("*") if p.is_file()) == before
    with pytest.raises(LakeError, match=r"has no column\(s\) \['colour'\]"):
        lake.append(Table.BATCHES, spark.from_polars(pl.DataFrame({"colour": ["red"]})))
    with pytest.raises(LakeError, match=r"differing: \['t: - vs double', 'temperature: double vs -'\]"):
        lake.append(Table.RAW, spark.from_polars(raw_rows("b2", DAYS).rename({"t": "temperature"})))


def test_a_table_with_deletion_vectors_is_refused_by_name(tmp_path: Path, spark: SparkEngine) -> None:
    lake = Lake(tmp_path)
    uri = lake.uri(Table.RAW)
    write_deltalake(uri, pa.table({"x": [1, 2]}), configuration={"delta.enableDeletionVectors": "true"})
    features = DeltaTable(uri).protocol().reader_features or []
    assert "deletionVectors" in features
    with pytest.raises(LakeError, match=r"\['deletionVectors'\].*deleted by deletion vectors"):
        scan_spark(lake, spark.session, Table.RAW)


# A writer process: its engine's rows appended to raw, batch after batch, once the other is ready.
WRITER = """
import sys, time
from pathlib import Path
from driftloop.engine import SparkEngine, SparkOptions
from driftloop.lake import Lake, Table
from tests.test_lake_spark import DAYS, raw_rows
root, kind, batches, ready = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
engine = SparkEngine(SparkOptions(master="local[1]")) if kind == "spark" else None
send = engine.from_polars if engine is not None else (lambda rows: rows)
send(raw_rows("warm-up", DAYS[:1]))
(ready / kind).touch()
while len(list(ready.iterdir())) < 2:
    time.sleep(0.05)
lake = Lake(root)
for i in range(batches):
    lake.append(Table.RAW, send(raw_rows(f"{kind}-{i}", DAYS[:5])))
"""


def test_a_spark_writer_and_a_polars_writer_at_once_lose_no_commit(tmp_path: Path) -> None:
    """Two real processes appending to one table at the same time: every batch lands once."""
    import subprocess
    import sys

    lake, ready = Lake(tmp_path / "lake"), tmp_path / "ready"
    ready.mkdir()
    lake.append(Table.RAW, raw_rows("seed", DAYS[:1]))
    repo = Path(__file__).resolve().parents[1]
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(lake.root), kind, "6", str(ready)], cwd=repo)
        for kind in ("spark", "polars")
    ]
    assert [w.wait(timeout=300) for w in writers] == [0, 0]
    rows = lake.read(Table.RAW)
    counts = rows.group_by(BATCH_ID).len()
    assert rows.height == 1 + 2 * 6 * 5 and counts.height == 1 + 12 and set(counts.get_column("len")) <= {1, 5}


# A Spark ingest killed after its files are written and before they are committed.
KILLED = """
import os, signal, sys
from driftloop.engine import SparkEngine, SparkOptions
from driftloop.lake import BATCH_ID, Lake, Table, Where, files
from tests.test_lake_spark import DAYS, raw_rows
engine = SparkEngine(SparkOptions(master="local[1]"))
files.commit = lambda *args, **kwargs: os.kill(os.getpid(), signal.SIGKILL)
Lake(sys.argv[1]).replace(Table.RAW, engine.from_polars(raw_rows("b2", DAYS)), where=Where(equal={BATCH_ID: "b2"}))
"""


def test_a_spark_write_killed_before_its_commit_is_invisible_and_its_rerun_lands_once(
    tmp_path: Path, spark: SparkEngine
) -> None:
    import signal
    import subprocess
    import sys

    lake = Lake(tmp_path)
    lake.append(Table.RAW, raw_rows("b1", DAYS))
    repo = Path(__file__).resolve().parents[1]
    killed = subprocess.run([sys.executable, "-c", KILLED, str(lake.root)], cwd=repo, timeout=300, check=False)
    assert killed.returncode == -signal.SIGKILL
    assert lake.version(Table.RAW) == 0 and lake.read(Table.RAW).height == len(DAYS)  # its files are not the table's
    where = Where(equal={BATCH_ID: "b2"})
    lake.replace(Table.RAW, spark.from_polars(raw_rows("b2", DAYS)), where=where)
    assert lake.read(Table.RAW).filter(pl.col(BATCH_ID) == "b2").height == len(DAYS)
