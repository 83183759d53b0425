from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings

from driftloop.data.contract import Contract
from driftloop.data.sources import from_frame
from driftloop.errors import BatchRejected, ContractError, SourceError
from driftloop.ingest import ingest, ingest_batch
from driftloop.lake import BATCH_ID, ROW, RULES, SOURCE, Lake
from driftloop.project import Project, init_project
from tests.conftest import small_frame
from tests.strategies import messy_batches
from tests.test_validate import CONTRACT


def test_csv_rows_split_between_raw_and_quarantine(small_project: Project, tmp_path: Path) -> None:
    path = tmp_path / "day1.csv"
    small_frame(5).with_columns(pl.Series("x", ["1", "oops", "3", "4", "500"])).write_csv(path)
    [summary] = ingest(small_project, path)
    assert (summary.status, summary.rows_in, summary.rows_raw, summary.rows_quarantined) == ("ingested", 5, 3, 2)
    lake = small_project.lake
    quarantined = lake.read("quarantine").sort(ROW)
    assert quarantined.get_column("x").to_list() == ["oops", "500"]
    assert quarantined.get_column(RULES).to_list() == [["x:type"], ["x:max"]]
    assert quarantined.get_column(SOURCE).to_list() == [str(path)] * 2
    raw = lake.read("raw")
    assert raw.get_column(BATCH_ID).unique().to_list() == [summary.batch_id]
    assert raw.schema["x"] == pl.Float64


def test_parquet_ndjson_and_frames_are_ingested(small_project: Project, tmp_path: Path) -> None:
    small_frame(2, start=0).write_parquet(tmp_path / "a.parquet")
    small_frame(2, start=2).write_ndjson(tmp_path / "b.ndjson")
    summaries = ingest(small_project, tmp_path)  # a folder
    summaries += ingest(small_project, small_frame(2, start=4).to_pandas())
    summaries += ingest(small_project, small_frame(2, start=6).to_arrow())
    assert [s.rows_raw for s in summaries] == [2, 2, 2, 2]
    assert small_project.lake.row_count("raw") == 8


def test_reingesting_the_same_file_is_a_reported_no_op(small_project: Project, tmp_path: Path) -> None:
    path = tmp_path / "day.csv"
    small_frame().write_csv(path)
    ingest(small_project, path)
    version = small_project.lake.version("raw")
    [again] = ingest(small_project, path)
    assert again.status == "already ingested" and again.rows_raw == 6
    assert small_project.lake.version("raw") == version
    frame = small_frame(2, start=10)
    ingest(small_project, frame, batch_id="frame-1")
    assert ingest(small_project, frame, batch_id="frame-1")[0].status == "already ingested"


def test_a_refused_batch_writes_no_data_and_says_why(small_project: Project, tmp_path: Path) -> None:
    ingest(small_project, small_frame())
    before = small_project.lake.row_count("raw"), small_project.lake.row_count("quarantine")
    path = tmp_path / "bad.csv"
    small_frame().drop("x").write_csv(path)
    with pytest.raises(BatchRejected, match="column 'x': required: the column is missing"):
        ingest(small_project, path)
    assert (small_project.lake.row_count("raw"), small_project.lake.row_count("quarantine")) == before
    [refused] = ingest(small_project, path, on_refused="continue")
    assert refused.status == "refused" and "required" in refused.problems[0]


def test_keys_already_in_raw_are_quarantined_not_duplicated(small_project: Project) -> None:
    ingest(small_project, small_frame(4))
    [second] = ingest(small_project, small_frame(6))
    assert (second.rows_raw, second.rows_quarantined) == (2, 4)
    assert small_project.lake.read("raw").get_column("id").n_unique() == 6


def test_malformed_inputs_are_clear_errors(small_project: Project, tmp_path: Path) -> None:
    (tmp_path / "notes.xlsx").write_bytes(b"PK")
    with pytest.raises(SourceError, match=r"unsupported file type '\.xlsx'"):
        ingest(small_project, tmp_path / "notes.xlsx")
    (tmp_path / "broken.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(SourceError, match="cannot be read as parquet"):
        ingest(small_project, tmp_path / "broken.parquet")
    (tmp_path / "ragged.csv").write_text("id,x\n1,2,3\n")
    with pytest.raises(SourceError, match="more fields than") as caught:
        ingest(small_project, tmp_path / "ragged.csv")
    assert "truncate_ragged_lines" not in str(caught.value)  # never advise dropping data
    with pytest.raises(SourceError, match="no such file or folder"):
        ingest(small_project, tmp_path / "missing.csv")
    with pytest.raises(SourceError, match="cannot ingest a dict"):
        ingest(small_project, {"id": [1]})
    with pytest.raises(SourceError, match="batch id"):
        ingest(small_project, small_frame(), batch_id="x'; DROP")
    assert not small_project.lake.exists("raw")


def test_an_empty_contract_is_refused_with_the_fix(tmp_path: Path) -> None:
    from driftloop.project import init_project

    project = init_project(tmp_path / "p")
    with pytest.raises(ContractError, match="driftloop init DIR --data SAMPLE --force"):
        ingest(project, small_frame())


KILLED_MID_INGEST = """
import os, signal, sys
from driftloop.project import Project
from driftloop.ingest import ingest, ingest_batch
def die(source, step):
    if step == "recording batch":  # raw and quarantine are written, the batch is not yet marked done
        os.kill(os.getpid(), signal.SIGKILL)
ingest(Project.load(sys.argv[1]), sys.argv[2], on_step=die)
"""


def test_killed_mid_ingest_then_rerun_leaves_each_row_once(small_project: Project, tmp_path: Path) -> None:
    path = tmp_path / "day.csv"
    small_frame(5).with_columns(pl.Series("x", ["1", "2", "bad", "4", "5"])).write_csv(path)
    killed = subprocess.run([sys.executable, "-c", KILLED_MID_INGEST, str(small_project.root), str(path)], check=False)
    assert killed.returncode == -9
    lake = small_project.lake
    assert lake.row_count("raw") == 4 and not lake.exists("batches")
    [summary] = ingest(small_project, path)
    assert summary.status == "ingested" and summary.rows_raw == 4  # the batch's own rows are not "already stored"
    assert (lake.row_count("raw"), lake.row_count("quarantine")) == (4, 1)


def test_keep_latest_accepts_a_resent_key(small_project: Project) -> None:
    contract = small_project.contract.model_copy(update={"duplicates": "keep_latest"})
    project = Project(small_project.root, small_project.settings.model_copy(update={"contract": contract}))
    ingest(project, small_frame(3))
    [second] = ingest(project, small_frame(3).with_columns(pl.lit("7").alias("n")))
    assert second.rows_raw == 3 and second.rows_quarantined == 0


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(batches=messy_batches(CONTRACT, max_rows=15).map(lambda f: [f]) | messy_batches(CONTRACT, max_rows=8).map(
    lambda f: [f, f.head(3)]))  # fmt: skip
def test_every_ingested_row_lands_in_raw_or_quarantine_once(batches: list[pl.DataFrame]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        lake = Lake(folder)
        expected = 0
        for i, frame in enumerate(batches):
            before = lake.row_count("raw") + lake.row_count("quarantine")
            try:
                ingest_batch(lake, CONTRACT, from_frame(frame, batch_id=f"b{i}"))
                expected += frame.height
            except BatchRejected:
                assert lake.row_count("raw") + lake.row_count("quarantine") == before  # nothing written
        assert lake.row_count("raw") + lake.row_count("quarantine") == expected
        if expected:
            stored = pl.concat([lake.read(t).select(BATCH_ID, ROW) for t in ("raw", "quarantine") if lake.exists(t)])
            assert not stored.is_duplicated().any()


def test_contract_fixture_round_trips(small_project: Project, small_contract: Contract) -> None:
    assert small_project.contract == small_contract


def test_labels_arrive_later_and_corrections_are_kept(small_project: Project, tmp_path: Path) -> None:
    ingest(small_project, small_frame(4).drop("y"))  # features first, no ground truth yet
    truth = small_frame(4).select("id", "ts", "y")
    [first] = ingest(small_project, truth, labels=True)
    assert (first.rows_raw, first.rows_quarantined) == (4, 0)
    path = tmp_path / "late.csv"
    truth.head(2).with_columns(pl.Series("y", ["9.5", "not a number"])).write_csv(path)
    [corrected] = ingest(small_project, path, labels=True)
    assert (corrected.rows_raw, corrected.rows_quarantined) == (1, 1)  # the correction is accepted
    labels = small_project.lake.read("labels")
    latest = labels.sort("_ingested_at").unique(subset=["id", "ts"], keep="last").sort("id")
    assert latest.get_column("y").to_list() == [9.5, 0.5, 1.0, 1.5]
    assert set(labels.columns) >= {"id", "ts", "y", "_batch_id", "_ingested_at"}
    assert "x" not in labels.columns  # only the key and the targets
    assert small_project.lake.read("quarantine").filter(pl.col("_source") == str(path)).height == 1


def test_labels_need_a_key_and_targets(tmp_path: Path) -> None:
    from driftloop.project import init_project

    project = init_project(tmp_path / "p", sample=small_frame().select("x", "n"))
    with pytest.raises(ContractError, match="needs a key column and at least one target"):
        ingest(project, small_frame().select("x", "n"), labels=True)


def test_an_event_log_without_ids_keeps_every_row_once(tmp_path: Path) -> None:
    # Hotel bookings: many per arrival day, nothing names them, two identical ones on the 1st.
    bookings = pl.DataFrame(
        {
            "arrival": ["2024-01-01"] * 3 + ["2024-01-02"] * 2,
            "nights": ["2", "2", "5", "1", "3"],
            "price": ["110", "110", "80.5", "95", "120"],
        }
    )
    path = tmp_path / "bookings.csv"
    bookings.write_csv(path)
    project = init_project(tmp_path / "hotel", sample=bookings, time_column="arrival", targets=("price",))
    assert project.contract.key == ["row_id", "arrival"]
    [first] = ingest(project, path)
    assert (first.rows_raw, first.rows_quarantined) == (5, 0)  # the identical two are two bookings
    stored = project.lake.read("raw")
    assert stored.get_column("row_id").n_unique() == 5 and stored.get_column("row_id").null_count() == 0
    # The next export repeats the five bookings and adds one: only that one is new.
    later = pl.concat([bookings, pl.DataFrame({"arrival": ["2024-01-02"], "nights": ["2"], "price": ["99"]})])
    later.write_csv(tmp_path / "later.csv")
    [again] = ingest(project, tmp_path / "later.csv")
    assert (again.rows_raw, again.rows_quarantined) == (1, 5)
    assert {c.rule for c in again.rule_counts} == {"already_stored"}
    assert project.lake.read("raw").height == 6  # nothing stored twice
    assert project.lake.read("quarantine").height == 5  # and nothing lost
