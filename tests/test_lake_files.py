from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
from deltalake import DeltaTable

from driftloop.lake.files import CHECKPOINT_INTERVAL, commit, delta_schema, file_stats, write_files


def test_interleaved_partitions_are_written_whole_and_readable(tmp_path: Path) -> None:
    frame = pl.DataFrame({"m": ["b", "a", "b", "a", None], "v": [1, 2, 3, 4, 5]})
    root = str(tmp_path / "t")
    commit(root, write_files(root, frame, ["m"]), delta_schema(frame), ["m"], {"who": "test"})
    table = pl.read_delta(root).sort("v")
    assert table.equals(frame.select(table.columns))
    assert sorted(DeltaTable(root).partitions(), key=str) == sorted([{"m": "a"}, {"m": "b"}, {"m": None}], key=str)


def test_partitions_in_runs_are_written_one_file_each(tmp_path: Path) -> None:
    frame = pl.DataFrame({"m": ["a", "a", "a", "b", "b"], "k": [1, 1, 2, 2, 2], "v": [1, 2, 3, 4, 5]})
    root = str(tmp_path / "t")
    actions = write_files(root, frame, ["m", "k"])
    partitions = sorted((a.partition_values["m"], a.partition_values["k"]) for a in actions)
    assert partitions == [("a", "1"), ("a", "2"), ("b", "2")]  # a file per partition, each whole
    commit(root, actions, delta_schema(frame), ["m", "k"], None)
    assert pl.read_delta(root).sort("v").select(frame.columns).equals(frame)


def test_appends_commit_new_versions_with_the_same_schema(tmp_path: Path) -> None:
    frame = pl.DataFrame({"v": [1.0], "at": [datetime(2024, 1, 1, tzinfo=UTC)]})
    root = str(tmp_path / "t")
    for _ in range(CHECKPOINT_INTERVAL + 1):
        commit(root, write_files(root, frame, []), delta_schema(frame), [], None)
    table = DeltaTable(root)
    assert table.version() == CHECKPOINT_INTERVAL and pl.read_delta(root).height == CHECKPOINT_INTERVAL + 1
    assert table.schema().to_json() == delta_schema(frame).to_json()
    # The log is checkpointed, so opening the table does not replay every commit.
    assert (tmp_path / "t" / "_delta_log" / f"{CHECKPOINT_INTERVAL - 1:020d}.checkpoint.parquet").exists()


def test_stats_are_exact_or_absent() -> None:
    frame = pl.DataFrame(
        {
            "n": [3, None, 1],
            "x": [0.5, float("nan"), 2.0],
            "d": [date(2024, 1, 2), date(2024, 1, 1), None],
            "ts": [datetime(2024, 1, 1, 0, 0, 0, 123456), datetime(2024, 1, 2), None],
            "short": ["b", "a", "c"],
            "long": ["x" * 40, "y", "z"],
        }
    )
    stats = file_stats(frame)
    assert stats["numRecords"] == 3
    assert stats["nullCount"] == {"n": 1, "x": 0, "d": 1, "ts": 1, "short": 0, "long": 0}
    assert (stats["minValues"]["n"], stats["maxValues"]["n"]) == (1, 3)
    assert stats["minValues"]["ts"] == "2024-01-01T00:00:00.123456"
    assert stats["minValues"]["d"] == "2024-01-01"
    assert "long" not in stats["maxValues"]  # a bound longer than 32 characters is not kept
    assert "x" not in stats["minValues"]  # NaN sorts above numbers in Spark: no exact bound
