from __future__ import annotations

import math
from datetime import datetime

import polars as pl
import pytest

import driftloop.feature_table as feature_table
from driftloop.data.contract import Column, ColumnType, Contract, Role
from driftloop.errors import FeatureError, NotOnlineComputable, TableNotFound
from driftloop.feature_table import materialize
from driftloop.features import DatetimeFeature, ExpressionFeature, FeatureSet, parse_definitions
from driftloop.ingest import ingest
from driftloop.project import Project
from tests.conftest import small_frame

CONTRACT = Contract(
    columns={
        "ts": Column(type=ColumnType.DATETIME, role=Role.EVENT_TIME),
        "a": Column(type=ColumnType.FLOAT),
        "b": Column(type=ColumnType.FLOAT),
        "y": Column(type=ColumnType.FLOAT, role=Role.TARGET),
    }
)
ROWS = pl.DataFrame(
    {
        "ts": [datetime(2016, 1, 11, 18, 0), datetime(2016, 4, 3, 6, 30)],
        "a": [3.0, -1.0],
        "b": [0.0, 2.0],
        "y": [1.0, 2.0],
    }
)


def compute(*definitions: ExpressionFeature | DatetimeFeature) -> pl.DataFrame:
    out: pl.DataFrame = FeatureSet(definitions, CONTRACT).apply(ROWS)
    return out


def test_expressions_are_row_wise_and_safe() -> None:
    out = compute(
        ExpressionFeature(name="ratio", expr="a / b"),
        ExpressionFeature(name="clipped", expr="clip(a * 10, -5, 5)"),
        ExpressionFeature(name="logged", expr="log(a)"),
        ExpressionFeature(name="both", expr="max(ratio, 0) + col('a') ** 2"),
    )
    assert out.get_column("ratio").to_list() == [None, -0.5]  # division by zero is null, not inf
    assert out.get_column("clipped").to_list() == [5.0, -5.0]
    assert out.get_column("logged").to_list()[1] is None  # log of a negative: null, not NaN
    # A later definition may use an earlier one; max() skips nulls, as Spark's greatest() does.
    assert out.get_column("both").to_list() == [9.0, 1.0]


def test_cyclic_datetime_parts() -> None:
    out = compute(DatetimeFeature(column="ts", parts=["hour", "day_of_week", "year"]))
    assert out.get_column("ts_hour_sin").to_list()[0] == pytest.approx(math.sin(2 * math.pi * 18 / 24))
    assert out.get_column("ts_day_of_week_cos").to_list()[0] == pytest.approx(1.0)  # Monday is angle 0
    assert out.get_column("ts_year").to_list() == [2016.0, 2016.0]


@pytest.mark.parametrize("expr", ["lag(a, 1)", "rolling_mean(a, 3)", "mean(a)", "shift(b)"])
def test_definitions_needing_other_rows_are_refused_with_why(expr: str) -> None:
    with pytest.raises(NotOnlineComputable, match="depends on other rows"):
        FeatureSet([ExpressionFeature(name="f", expr=expr)], CONTRACT)


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("a +", "is not valid"),
        ("c * 2", "unknown column 'c'"),
        ("__import__('os')", "unknown function __import__"),
        ("a.real", "is not allowed"),
        ("a // b", "operator FloorDiv is not supported"),
        ("3 * 4", "uses no column"),
        ("a / 0", "divides by the constant 0"),
    ],
)
def test_invalid_expressions_are_refused(expr: str, message: str) -> None:
    with pytest.raises(FeatureError, match=message):
        FeatureSet([ExpressionFeature(name="f", expr=expr)], CONTRACT)


def test_definitions_round_trip_through_json() -> None:
    features = FeatureSet(
        [ExpressionFeature(name="r", expr="a / b"), DatetimeFeature(column="ts", parts=["month"], cyclic=False)],
        CONTRACT,
    )
    again = FeatureSet.from_json(features.to_json(), CONTRACT)
    assert again.definitions == features.definitions
    assert again.apply(ROWS).equals(features.apply(ROWS))
    assert features.inputs == ["a", "b", "r", "ts_month"]


def test_bad_definitions_name_what_is_wrong() -> None:
    with pytest.raises(FeatureError, match="parts"):
        parse_definitions([{"column": "ts", "parts": ["fortnight"]}])
    with pytest.raises(FeatureError, match="would overwrite an existing column"):
        FeatureSet([ExpressionFeature(name="a", expr="b * 2")], CONTRACT)
    with pytest.raises(FeatureError, match="needs a date or datetime column"):
        FeatureSet([DatetimeFeature(column="a", parts=["hour"])], CONTRACT)
    with pytest.raises(FeatureError, match="lacks a column"):
        FeatureSet([ExpressionFeature(name="f", expr="a * 2")], CONTRACT).apply(ROWS.drop("a"))


def test_a_single_row_gets_what_it_gets_in_a_batch() -> None:
    features = FeatureSet(
        [ExpressionFeature(name="r", expr="a / (b + 1)"), DatetimeFeature(column="ts", parts=["hour"])], CONTRACT
    )
    batch = features.apply(ROWS)
    alone = pl.concat([features.apply(ROWS.slice(i, 1)) for i in range(ROWS.height)])
    assert alone.equals(batch)


def test_materialize_is_incremental_and_idempotent(small_project: Project) -> None:
    with pytest.raises(TableNotFound, match="run `driftloop ingest`"):
        materialize(small_project.lake, small_project.feature_set())
    ingest(small_project, small_frame(4))
    first = materialize(small_project.lake, small_project.feature_set())
    assert (first.rows, len(first.batches)) == (4, 1)
    assert materialize(small_project.lake, small_project.feature_set()).batches == []  # nothing new
    ingest(small_project, small_frame(3, start=4))
    second = materialize(small_project.lake, small_project.feature_set())
    assert (second.rows, len(second.batches)) == (3, 1)
    table = small_project.lake.read("features")
    assert table.height == 7 and table.get_column("id").n_unique() == 7
    assert "ts_hour_sin" in table.columns


def test_a_compacted_raw_table_has_nothing_new_to_materialize(
    small_project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake, feature_set = small_project.lake, small_project.feature_set()
    for start in (0, 4):  # two batches: two files in the month's partition
        ingest(small_project, small_frame(4, start=start))
    materialize(lake, feature_set)
    assert lake.compact("raw") is not None
    with monkeypatch.context() as patch:  # the log says so: raw's batch ids are not scanned
        patch.setattr(feature_table, "_batch_ids", lambda *_: pytest.fail("scanned raw after a compaction"))
        run = materialize(lake, feature_set)
    assert run.batches == [] and run.rows == 0
    ingest(small_project, small_frame(2, start=8))  # a batch after the compaction is still found
    assert materialize(lake, feature_set).rows == 2 and lake.read("features").height == 10


def test_keep_latest_replaces_the_feature_row(small_project: Project) -> None:
    contract = small_project.contract.model_copy(update={"duplicates": "keep_latest"})
    project = Project(small_project.root, small_project.settings.model_copy(update={"contract": contract}))
    ingest(project, small_frame(3))
    materialize(project.lake, project.feature_set())
    ingest(project, small_frame(2).with_columns(pl.lit("42").alias("n")))
    materialize(project.lake, project.feature_set())
    ingest(project, small_frame(1, start=5))  # an unrelated batch later must not bring the old rows back
    materialize(project.lake, project.feature_set())
    table = project.lake.read("features").sort("id")
    assert table.get_column("n").to_list() == [42, 42, 2, 5]


def test_the_polars_fast_path_computes_what_narwhals_does() -> None:
    import narwhals as nw

    definitions = [
        ExpressionFeature(name="all", expr="abs(a) + sqrt(abs(b)) + log1p(abs(a)) + exp(b / 10) + sin(a) + cos(b)"),
        ExpressionFeature(name="bounded", expr="clip(a * b, -1, 1) + min(a, b, 0.5) + max(a, 2) + log(abs(a) + 1)"),
        ExpressionFeature(name="ratio", expr="a / b"),  # a division by zero is null either way
        ExpressionFeature(name="chained", expr="ratio ** 2 - all"),  # a later step reads earlier outputs
        DatetimeFeature(column="ts", parts=["hour", "minute_of_day", "day_of_week", "day_of_year", "month"]),
        DatetimeFeature(column="ts", parts=["year", "day_of_month"], cyclic=False, name="plain"),
    ]
    features = FeatureSet(definitions, CONTRACT)
    native = features.apply(ROWS)
    through_narwhals = features.apply(nw.from_native(ROWS))  # the path any other backend takes
    assert isinstance(through_narwhals, pl.DataFrame)
    assert native.columns == through_narwhals.columns
    assert native.equals(through_narwhals, null_equal=True)
    assert native.get_column("ratio").to_list()[0] is None
