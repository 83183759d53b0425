"""Delta from Spark without Delta's jars: Spark writes Parquet into the table's folder, delta-rs
commits it with file statistics, Spark reads the files the log lists. Every table written this
way must read back the same through Polars and delta-rs, and the other way round."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from driftloop.engine import SparkEngine, SparkOptions
from driftloop.errors import LakeError, TableChanged
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


def feature_rows(batch: str, keys: range, value: float) -> pl.DataFrame:
    """Rows of ``features``, keyed by (k, at), over two months."""
    days = [date(2016, 1, 30) + timedelta(days=i % 4) for i in keys]
    return pl.DataFrame(
        {
            "k": [f"k{i}" for i in keys],
            "at": [datetime(d.year, d.month, d.day, 6) for d in days],
            "v": [value] * len(keys),
            BATCH_ID: batch,
            "_event_date": days,
        }
    )


def test_a_merge_of_spark_rows_is_the_merge_of_polars_rows(tmp_path: Path, spark: SparkEngine) -> None:
    """Upserting by key: stored rows of a key sent again are replaced, the others kept, new keys added."""
    by_polars, by_spark = Lake(tmp_path / "polars"), Lake(tmp_path / "spark")
    for lake in (by_polars, by_spark):
        lake.append(Table.FEATURES, feature_rows("b1", range(0, 40), 1.0))
    update = feature_rows("b2", range(30, 60), 2.0)
    by_polars.merge(Table.FEATURES, update, key=["k", "at"])
    by_spark.merge(Table.FEATURES, spark.from_polars(update), key=["k", "at"], metadata={"driftloop.note": "m"})
    mine, theirs = (lake.read(Table.FEATURES).sort("k") for lake in (by_spark, by_polars))
    assert mine.select(theirs.columns).equals(theirs)
    assert mine.height == 60 and mine.filter(pl.col("v") == 2.0).height == 30
    assert by_spark.history(Table.FEATURES, limit=1)[0].metadata["driftloop.note"] == "m"


def test_a_write_computed_from_an_older_version_is_not_committed(tmp_path: Path, spark: SparkEngine) -> None:
    lake = Lake(tmp_path)
    lake.append(Table.RAW, raw_rows("b1", DAYS))
    read_at = lake.version(Table.RAW)
    lake.append(Table.RAW, raw_rows("b2", DAYS))  # another writer, meanwhile
    where = Where(equal={BATCH_ID: "b3"})
    for rows in (raw_rows("b3", DAYS), spark.from_polars(raw_rows("b3", DAYS))):
        with pytest.raises(TableChanged, match="moved from version 0 to 1"):
            lake.replace(Table.RAW, rows, where=where, read_version=read_at)
    assert lake.version(Table.RAW) == 1 and lake.read(Table.RAW).height == 2 * len(DAYS)


# Another process that appends to ``features`` (Polars) when told to, in the months a merge rewrites.
APPENDER = """
import sys, time
from pathlib import Path
from driftloop.lake import Lake, Table
from tests.test_lake_spark import feature_rows
lake, signals = Lake(sys.argv[1]), Path(sys.argv[2])
while not (signals / "go").exists():
    time.sleep(0.02)
lake.append(Table.FEATURES, feature_rows("appended", range(1000, 1010), 3.0))
(signals / "done").touch()
"""


def test_a_spark_merge_never_drops_rows_another_process_commits_meanwhile(
    tmp_path: Path, spark: SparkEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A merge rewrites whole partitions. Another process commits to them after the merge read
    them and before it commits: the merge's commit is stale, so it is computed again from the
    new version instead of dropping the other process's rows."""
    import subprocess
    import sys
    import time

    lake, signals = Lake(tmp_path / "lake"), tmp_path / "signals"
    signals.mkdir()
    lake.append(Table.FEATURES, feature_rows("seed", range(0, 40), 1.0))
    repo = Path(__file__).resolve().parents[1]
    appender = subprocess.Popen([sys.executable, "-c", APPENDER, str(lake.root), str(signals)], cwd=repo)
    reads: list[int | None] = []
    read = Lake.scan_spark

    def read_then_let_the_other_commit(self: Lake, table: str, *args: object, **kwargs: object) -> object:
        rows = read(self, table, *args, **kwargs)  # type: ignore[arg-type]
        reads.append(kwargs.get("version"))  # type: ignore[arg-type]
        if len(reads) == 1:  # the merge has read the partitions: the other process commits now
            (signals / "go").touch()
            while not (signals / "done").exists():
                time.sleep(0.02)
        return rows

    monkeypatch.setattr(Lake, "scan_spark", read_then_let_the_other_commit)
    lake.merge(Table.FEATURES, spark.from_polars(feature_rows("merged", range(20, 60), 2.0)), key=["k", "at"])
    assert appender.wait(timeout=300) == 0
    assert reads == [0, 1]  # read at version 0, stale after the append, merged again from version 1
    rows = lake.read(Table.FEATURES)
    assert rows.filter(pl.col("v") == 3.0).height == 10  # the other process's rows are all there
    assert rows.height == 60 + 10 and rows.select("k", "at").n_unique() == rows.height
    assert rows.filter(pl.col("k") == "k59").get_column("v").to_list() == [2.0]
