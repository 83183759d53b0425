from __future__ import annotations

import subprocess
import sys
from datetime import date, datetime
from pathlib import Path

import polars as pl
import pytest

from driftloop.errors import LakeError, TableNotFound
from driftloop.lake import BATCH_ID, EVENT_DATE, EVENT_MONTH, ROW, SOURCE, TABLES, Lake, Table, Where, empty


def rows(day: int, batch: str, n: int = 3) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "k": [f"{batch}-{i}" for i in range(n)],
            "ts": [datetime(2024, 1, day, i) for i in range(n)],
            "v": [float(i) for i in range(n)],
            BATCH_ID: [batch] * n,
        }
    ).with_columns(pl.col("ts").cast(pl.Date).alias(EVENT_DATE))


def test_append_read_by_time_and_version(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    assert lake.version("raw") is None and lake.row_count("raw") == 0
    lake.append("raw", rows(1, "a"))
    lake.append("raw", rows(2, "b"))
    assert lake.row_count("raw") == 6
    window = lake.read("raw", since=datetime(2024, 1, 2), until=datetime(2024, 1, 3), time_column="ts")
    assert set(window.get_column(BATCH_ID)) == {"b"}
    assert lake.read("raw", version=0).height == 3


def test_an_append_named_as_a_transaction_can_be_found_committed(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    assert not lake.committed("raw", "first")  # no table yet
    lake.append("raw", rows(1, "a"), transaction="first")  # creates the table
    lake.append("raw", rows(2, "b"), transaction="second")
    lake.append("raw", rows(3, "c").with_columns(pl.lit(1.0).alias("w")), transaction="third")  # a schema change
    assert all(lake.committed("raw", name) for name in ("first", "second", "third"))
    assert not lake.committed("raw", "fourth") and lake.row_count("raw") == 9


def test_replace_is_idempotent(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    lake.append("raw", rows(1, "a"))
    for _ in range(3):
        lake.replace("raw", rows(2, "b", n=4), where=Where(equal={BATCH_ID: "b"}))
    assert lake.row_count("raw") == 7
    assert lake.read("raw").get_column(BATCH_ID).value_counts().sort(BATCH_ID).get_column("count").to_list() == [3, 4]


def test_replace_rewrites_a_file_it_selects_only_partly(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    # One file holding two batches, one of them with a missing time (never selected by a range).
    both = pl.concat([rows(1, "a"), rows(1, "b")]).with_columns(
        pl.when(pl.col("k") == "a-2").then(None).otherwise(pl.col("ts")).alias("ts")
    )
    lake.append("raw", both)
    selection = Where(equal={BATCH_ID: "b"}, between={"ts": (datetime(2024, 1, 1, 1), datetime(2024, 1, 2))})
    lake.replace("raw", rows(1, "b").tail(2).with_columns(pl.col("v") + 10), where=selection, metadata={"why": "x"})
    table = lake.read("raw").sort("k")
    assert table.get_column("k").to_list() == ["a-0", "a-1", "a-2", "b-0", "b-1", "b-2"]
    assert table.get_column("v").to_list() == [0.0, 1.0, 2.0, 0.0, 11.0, 12.0]
    assert table.filter(pl.col("k") == "a-2").get_column("ts").item() is None
    latest = lake.history("raw", limit=1)[0]
    assert (latest.rows_added, latest.rows, latest.metadata["why"]) == (2, 6, "x")
    assert lake.read("raw", version=0).height == 6  # the earlier version is intact


def test_a_file_written_before_a_new_column_keeps_its_other_rows_when_cut(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    lake.append("raw", pl.concat([rows(1, "a"), rows(1, "b")]))  # one file, two batches, no column w
    lake.append("raw", rows(2, "c").with_columns(pl.lit(1.0).alias("w")))  # the table gains w
    for _ in range(2):  # a rerun replaces again
        lake.replace("raw", rows(1, "b").with_columns(pl.lit(2.0).alias("w")), where=Where(equal={BATCH_ID: "b"}))
    table = lake.read("raw").sort("k")
    assert table.get_column("k").to_list() == ["a-0", "a-1", "a-2", "b-0", "b-1", "b-2", "c-0", "c-1", "c-2"]
    assert table.get_column("w").to_list() == [None] * 3 + [2.0] * 3 + [1.0] * 3


def test_file_coverage_is_decided_from_the_log_statistics(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    for day, batch in ((1, "a"), (2, "b"), (3, "c")):
        lake.append("raw", rows(day, batch))
    files = pl.DataFrame(lake.open("raw").get_add_actions(flatten=True)).sort("min.ts")
    every, none = Where(between={"ts": (datetime(2024, 1, 2), datetime(2024, 1, 3, 1))}).file_coverage(
        files, ("_event_month",)
    )
    assert every.to_list() == [False, True, False] and none.to_list() == [True, False, False]
    every, none = Where(equal={"_event_month": "2024-01", BATCH_ID: "c"}).file_coverage(files, ("_event_month",))
    assert every.to_list() == [False, False, True] and none.to_list() == [True, True, False]
    every, none = Where(one_of={BATCH_ID: ["a", "c"]}).file_coverage(files, ("_event_month",))
    # "b" lies between "a" and "c": the statistics cannot rule its file out, so it would be read.
    assert every.to_list() == [True, False, True] and none.to_list() == [False, False, False]
    assert lake.any_rows("raw", Where(equal={BATCH_ID: "c"}))
    assert not lake.any_rows("raw", Where(equal={BATCH_ID: "it's"}))


def test_a_selection_must_select_something_definite() -> None:
    with pytest.raises(LakeError, match="at least one condition"):
        Where()
    with pytest.raises(LakeError, match="not None"):
        Where(equal={"k": None})
    with pytest.raises(LakeError, match="not None"):
        Where(one_of={"k": []})
    with pytest.raises(LakeError, match="needs both ends"):
        Where(between={"ts": (None, datetime(2024, 1, 1))})
    assert Where(one_of={"k": ["b", "a", "b"]}).sql() == "\"k\" IN ('a', 'b')"
    assert Where(equal={"k": "it's"}, between={"ts": (datetime(2024, 1, 1), datetime(2024, 1, 2))}).sql() == (
        "\"k\" = 'it''s' AND \"ts\" >= '2024-01-01T00:00:00.000000' AND \"ts\" < '2024-01-02T00:00:00.000000'"
    )


def test_merge_upserts_by_key(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    lake.merge("features", rows(1, "a"), key=["k"])
    changed = rows(1, "a").with_columns(pl.lit(9.0).alias("v"))
    lake.merge("features", pl.concat([changed.head(1), rows(1, "c", n=1)]), key=["k"])
    table = lake.read("features").sort("k")
    assert table.height == 4
    assert table.filter(pl.col("k") == "a-0").get_column("v").item() == 9.0


def test_history_counts_rows_and_keeps_metadata(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    lake.append("raw", rows(1, "a"), metadata={"driftloop.batch_id": "a"})
    lake.append("raw", rows(2, "b", n=5))
    history = lake.history("raw")
    assert [(v.version, v.rows_added, v.rows) for v in history] == [(1, 5, 8), (0, 3, 3)]
    assert history[1].metadata["driftloop.batch_id"] == "a"


def test_bad_names_and_missing_tables_are_clear_errors(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    with pytest.raises(LakeError, match="no lake table named 'rows'"):
        lake.uri("rows")
    with pytest.raises(TableNotFound, match="run the step that writes it first"):
        lake.read("features")
    with pytest.raises(LakeError, match="lack its partition column"):
        lake.append("raw", rows(1, "a").drop(EVENT_DATE))
    with pytest.raises(LakeError, match="by time range needs the time column"):
        lake.append("raw", rows(1, "a"))
        lake.read("raw", since=date(2024, 1, 1))


def test_a_write_with_a_clashing_schema_changes_nothing(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    lake.append("raw", rows(1, "a"))
    with pytest.raises(LakeError, match="could not write table 'raw'"):
        lake.append("raw", rows(2, "b").with_columns(pl.lit("text").alias("v")))
    assert lake.version("raw") == 0 and lake.read("raw").height == 3


def test_rows_are_conformed_to_their_tables_schema_or_refused_with_the_column(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    lake.append("raw", rows(1, "a"))  # the writer knew nothing of _row, _source, _ingested_at
    table = lake.read("raw")
    for name, dtype in TABLES[Table.RAW].columns.items():
        assert table.schema[name] == dtype
    assert table.get_column(SOURCE).null_count() == 3 and table.get_column(EVENT_MONTH).to_list() == ["2024-01"] * 3
    with pytest.raises(LakeError, match=r"table 'events' has no column\(s\) \['surprise'\]"):
        lake.append("events", pl.DataFrame({"event_id": ["e1"], "surprise": [1]}))
    with pytest.raises(LakeError, match="'_row'"):
        lake.append("raw", rows(2, "b").with_columns(pl.lit("first").alias(ROW)))
    assert lake.version("raw") == 0 and not lake.exists("events")  # nothing written by either
    events = empty(Table.EVENTS)
    assert events.is_empty() and events.columns == list(TABLES[Table.EVENTS].columns)


WRITER = """
import sys, polars as pl
from datetime import datetime
from driftloop.lake import Lake, BATCH_ID, EVENT_DATE, Where
lake, name = Lake(sys.argv[1]), sys.argv[2]
for i in range(int(sys.argv[3])):
    batch = f"{name}-{i}"
    frame = pl.DataFrame({"k": [batch], "ts": [datetime(2024, 1, 1 + i % 5)], "v": [1.0], BATCH_ID: [batch]})
    frame = frame.with_columns(pl.col("ts").cast(pl.Date).alias(EVENT_DATE))
    lake.replace("raw", frame, where=Where(equal={BATCH_ID: batch}))
"""


def test_two_processes_writing_at_once_lose_nothing(tmp_path: Path) -> None:
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), name, "12"], stderr=subprocess.PIPE)
        for name in ("left", "right")
    ]
    for writer in writers:
        _, stderr = writer.communicate(timeout=180)
        assert writer.returncode == 0, stderr.decode()
    table = Lake(tmp_path).read("raw")
    assert table.height == 24
    assert table.get_column("k").n_unique() == 24
    assert Lake(tmp_path).version("raw") == 23  # one commit per write, none lost or doubled


def test_compaction_merges_a_partitions_files_and_keeps_rows_and_history(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    assert lake.compact("raw") is None  # not written yet
    for day in range(1, 7):  # a file a day, as a daily loop writes them
        lake.append("raw", rows(day, f"b{day}"))
    before, version = lake.read("raw").sort("k"), lake.version("raw")
    assert lake.compact("raw", min_files=7) is None  # six files: below the threshold, nothing done
    assert lake.version("raw") == version
    done = lake.compact("raw", min_files=6)
    assert done is not None and (done.files_removed, done.files_added) == (6, 1) and done.version == version + 1
    assert lake.read("raw").sort("k").equals(before)  # the same rows
    assert lake.read("raw", version=version).sort("k").equals(before)  # the earlier version still reads
    assert lake.history("raw", limit=1)[0].operation == "OPTIMIZE"
    assert lake.compact("raw") is None  # one file left per partition: nothing to merge
    lake.replace("raw", rows(3, "b3", n=1), where=Where(equal={BATCH_ID: "b3"}))  # writes go on as before
    assert lake.row_count("raw") == 16
    with pytest.raises(LakeError, match="at least 2"):
        lake.compact("raw", min_files=1)
    with pytest.raises(LakeError, match="no lake table named"):
        lake.compact("nope")
