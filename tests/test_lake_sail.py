"""Delta through Spark's own Delta writer, on a real Spark Connect server with native Delta:
Sail (``pysail``), started on 127.0.0.1 for the module. What it writes must read back the same
through delta-rs and Polars, replace its batch on a rerun, carry the commit's metadata, and an
exactly-once append must be recorded as one."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from driftloop.engine import SparkEngine, SparkOptions
from driftloop.errors import LakeError
from driftloop.lake import BATCH_ID, Lake, Table, Where
from tests.live import free_port, listening, service
from tests.test_lake_spark import DAYS, _sorted, quarantine_rows, raw_rows


@pytest.fixture(scope="module")
def sail(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkEngine]:
    """A Sail server of this environment on a free local port, and an engine connected to it.
    PySpark allows no Connect session beside a classic one: a classic session still running
    from other tests is stopped first (the next that needs one starts it again)."""
    from pyspark.sql import SparkSession

    running = SparkSession.getActiveSession()
    if running is not None:
        running.stop()
    port = free_port()
    command = [str(Path(sys.executable).with_name("sail")), "spark", "server", "--ip", "127.0.0.1", "--port", str(port)]
    log = tmp_path_factory.mktemp("sail") / "server.log"
    with service(command, ready=lambda: listening(port), log=log, seconds=30):
        engine = SparkEngine(SparkOptions(remote=f"sc://127.0.0.1:{port}", delta="native"))
        yield engine
        engine.session.stop()


def test_native_delta_rows_read_back_as_polars_rows_do(tmp_path: Path, sail: SparkEngine) -> None:
    by_polars, by_sail = Lake(tmp_path / "polars"), Lake(tmp_path / "sail", spark_delta="native")
    for table, rows in ((Table.RAW, raw_rows("b1", DAYS)), (Table.QUARANTINE, quarantine_rows("b1"))):
        by_polars.append(table, rows)
        by_sail.append(table, sail.from_polars(rows), metadata={"driftloop.batch_id": "b1"})
        assert _sorted(by_sail.read(table)).equals(_sorted(by_polars.read(table)))
        assert _sorted(sail.to_polars(by_sail.scan_spark(table, sail.session))).equals(_sorted(by_polars.read(table)))
    commit = by_sail.history(Table.RAW, limit=1)[0]
    assert commit.metadata["driftloop.batch_id"] == "b1"


def test_a_native_rerun_replaces_its_batch_and_an_exactly_once_append_is_recorded(
    tmp_path: Path, sail: SparkEngine
) -> None:
    lake = Lake(tmp_path, spark_delta="native")
    lake.append(Table.RAW, sail.from_polars(raw_rows("b1", DAYS)))
    where = Where(equal={BATCH_ID: "b2"})
    for _ in range(2):
        lake.replace(Table.RAW, sail.from_polars(raw_rows("b2", DAYS[:6])), where=where)
    rows = lake.read(Table.RAW)
    assert rows.height == len(DAYS) + 6 and rows.filter(pl.col(BATCH_ID) == "b2").height == 6
    lake.append(Table.RAW, sail.from_polars(raw_rows("b3", DAYS[:2])), transaction="ingest-b3")
    assert lake.committed(Table.RAW, "ingest-b3")
    with pytest.raises(LakeError, match="could not write table 'raw'"):
        lake.append(Table.RAW, sail.from_polars(raw_rows("b4", [date(2016, 3, 1)]).drop("t").rename({"at": "t"})))


# A writer process: rows appended to raw batch after batch, once the others are ready; by Sail's
# own Delta writer when given the server's address, by Polars (delta-rs) otherwise.
WRITER = """
import sys, time
from pathlib import Path
from driftloop.engine import SparkEngine, SparkOptions
from driftloop.lake import Lake, Table
from tests.test_lake_spark import DAYS, raw_rows
root, name, batches, ready, writers, remote = sys.argv[1:7]
engine = SparkEngine(SparkOptions(remote=remote, delta="native")) if remote else None
send = engine.from_polars if engine is not None else (lambda rows: rows)
lake = Lake(root, spark_delta="native")
send(raw_rows("warm-up", DAYS[:1])).count() if engine is not None else None
(Path(ready) / name).touch()
while len(list(Path(ready).iterdir())) < int(writers):
    time.sleep(0.05)
for i in range(int(batches)):
    lake.append(Table.RAW, send(raw_rows(f"{name}-{i}", DAYS[:5])), metadata={"driftloop.batch_id": f"{name}-{i}"})
"""


def test_native_writers_and_a_polars_writer_at_once_lose_no_commit(tmp_path: Path, sail: SparkEngine) -> None:
    """Three real processes appending to one table at the same time, two through Sail's Delta
    writer and one through delta-rs: every batch lands exactly once."""
    import subprocess

    remote = sail.options.remote
    assert remote is not None
    lake, ready = Lake(tmp_path / "lake", spark_delta="native"), tmp_path / "ready"
    ready.mkdir()
    lake.append(Table.RAW, raw_rows("seed", DAYS[:2]))  # two rows: every column gets a type
    repo = Path(__file__).resolve().parents[1]
    names = {"sail-a": remote, "sail-b": remote, "polars": ""}
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(lake.root), name, "5", str(ready), "3", address], cwd=repo)
        for name, address in names.items()
    ]
    assert [w.wait(timeout=300) for w in writers] == [0, 0, 0]
    rows = lake.read(Table.RAW)
    counts = rows.group_by(BATCH_ID).len()
    assert rows.height == 2 + 3 * 5 * 5 and counts.height == 1 + 15 and set(counts.get_column("len")) == {2, 5}


# A native replace of batch b2 whose client is killed while Spark writes it.
KILLED = """
import os, signal, sys, threading
from driftloop.engine import SparkEngine, SparkOptions
from driftloop.lake import BATCH_ID, Lake, Table, Where
from tests.test_lake_spark import DAYS, raw_rows
engine = SparkEngine(SparkOptions(remote=sys.argv[2], delta="native"))
rows = engine.from_polars(raw_rows("b2", DAYS * 10_000))
threading.Timer(float(sys.argv[3]), lambda: os.kill(os.getpid(), signal.SIGKILL)).start()
Lake(sys.argv[1], spark_delta="native").replace(Table.RAW, rows, where=Where(equal={BATCH_ID: "b2"}))
threading.Event().wait()
"""


@pytest.mark.parametrize("after", [0.0, 0.25])  # the write itself takes about half a second
def test_a_native_replace_whose_client_is_killed_lands_once_on_its_rerun(
    tmp_path: Path, sail: SparkEngine, after: float
) -> None:
    """Killed at once or mid-write, the batch is in the table at most once, and its rerun puts it
    in exactly once beside the rows that were there."""
    import signal
    import subprocess

    remote = sail.options.remote
    assert remote is not None
    lake = Lake(tmp_path, spark_delta="native")
    lake.append(Table.RAW, sail.from_polars(raw_rows("b1", DAYS)))
    repo = Path(__file__).resolve().parents[1]
    killed = subprocess.run(
        [sys.executable, "-c", KILLED, str(lake.root), remote, str(after)], cwd=repo, timeout=120, check=False
    )
    assert killed.returncode == -signal.SIGKILL
    counts = lake.read(Table.RAW).group_by(BATCH_ID).len()
    assert dict(counts.iter_rows()).get("b2", 0) in (0, len(DAYS) * 10_000)
    lake.replace(Table.RAW, sail.from_polars(raw_rows("b2", DAYS * 10_000)), where=Where(equal={BATCH_ID: "b2"}))
    counts = dict(lake.read(Table.RAW).group_by(BATCH_ID).len().iter_rows())
    assert counts == {"b1": len(DAYS), "b2": len(DAYS) * 10_000}
