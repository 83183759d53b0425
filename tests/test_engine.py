"""One suite for every engine: each must give what the Polars implementations beside the
descriptions give (the contract check, features, scoring, profiles), on the same rows. A new
engine passes by joining ``ENGINES``; the cases here are the ways real batches go wrong."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from driftloop.data.contract import Column, ColumnType, Contract, Role
from driftloop.data.sources import read_rows
from driftloop.data.validate import CheckResult, check_batch
from driftloop.engine import DEFAULT_ENGINE, ENGINES, Engine, PolarsEngine, SparkOptions, resolve_engine
from driftloop.errors import ConfigError, DriftloopError, FeatureError, SourceError
from driftloop.features import DatetimeFeature, ExpressionFeature, FeatureSet
from driftloop.lake import ROW, RULES
from driftloop.profiles import NumericProfile, profile
from driftloop.settings import parse_settings
from tests.conftest import small_frame


@pytest.fixture(scope="module", params=sorted(ENGINES))
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """Each engine once per module (a Spark session starts once, on ``local[2]``)."""
    yield resolve_engine(str(request.param), spark=SparkOptions(master="local[2]"))


def _polars(engine: Engine, frame: object) -> pl.DataFrame:
    rows = engine.to_polars(frame)
    return rows.sort(ROW) if ROW in rows.columns else rows


def _same_check(engine: Engine, frame: pl.DataFrame, contract: Contract, **kwargs: object) -> CheckResult[object]:
    """The engine's check of ``frame`` (sent to it first), asserted equal to the Polars check's."""
    seen = kwargs.pop("seen", None)
    assert seen is None or isinstance(seen, pl.DataFrame)
    stored = None if seen is None else engine.from_polars(seen)
    result = engine.check(engine.from_polars(frame), contract, seen_keys=stored)
    expected = check_batch(frame, contract, seen_keys=None if seen is None else seen.lazy())
    assert result.problems == expected.problems and result.ignored_columns == expected.ignored_columns
    assert result.rule_counts == expected.rule_counts
    valid, rejected = _polars(engine, result.valid), _polars(engine, result.rejected)
    assert valid.equals(expected.valid), (valid, expected.valid)
    assert rejected.equals(expected.rejected), (rejected, expected.rejected)
    return result


def test_the_check_splits_rows_as_the_contract_says(engine: Engine, small_contract: Contract) -> None:
    frame = small_frame(6).with_columns(pl.Series("x", ["1", "oops", "3", "400", "5", "6"]))
    result = _same_check(engine, frame, small_contract)
    rejected = _polars(engine, result.rejected)
    assert dict(zip(rejected.get_column(ROW), rejected.get_column(RULES).to_list(), strict=True)) == {
        2: ["x:type"],
        4: ["x:max"],
    }
    refused = engine.check(engine.from_polars(frame.drop("x")), small_contract)
    assert not refused.ok and refused.problems[0].column == "x"


def test_every_rule_and_its_reasons_match_row_for_row(engine: Engine, small_contract: Contract) -> None:
    """Several rules broken in one row, null words, number forms, allowed values, infinities."""
    frame = pl.DataFrame(
        {
            "id": ["a", "b", "c", "d", "e", "f", "g", None],
            "ts": ["2024-03-01 10:00:00", "2024-03-01 10:01:00", "2024-03-01 10:02:00", "NA", "2024-03-01 10:04:00",
                   "2024-03-01 10:05:00", "2024-03-01 10:06:00", "2024-03-01 10:07:00"],
            "x": ["1", "-5", "inf", "", "  7 ", "NaN", "101", "3"],
            "n": ["60.0", "60.5", "-1", "7", "null", "8", "9", "10"],
            "colour": ["red", "blue", None, "green", "red", "pink", "green", "red"],
            "flag": ["yes", "n", "maybe", "1", "0", "true", "F", "T"],
            "y": ["0.5", "x", "", "1", "2", "3", "4", "5"],
        }
    )  # fmt: skip
    _same_check(engine, frame, small_contract.model_copy(update={"max_unparseable_rate": 0.5}))


def test_key_duplicates_and_keys_already_stored_look_at_the_whole_batch(
    engine: Engine, small_contract: Contract
) -> None:
    frame = pl.concat([small_frame(6), small_frame(2), small_frame(2, start=10)])
    stored = check_batch(small_frame(3, start=10), small_contract).valid
    _same_check(engine, frame, small_contract, seen=stored)
    latest = small_contract.model_copy(update={"duplicates": "keep_latest"})
    _same_check(engine, frame, latest)


def test_a_zones_repeated_hour_is_read_in_row_order_per_entity(engine: Engine) -> None:
    """The night Paris's clocks go back, two stations each log 02:30 twice; 02:30 on the night
    they go forward does not exist."""
    contract = Contract(
        columns={
            "station": Column(type=ColumnType.STRING, role=Role.ID),
            "at": Column(type=ColumnType.DATETIME, role=Role.EVENT_TIME),
            "t": Column(type=ColumnType.FLOAT),
        },
        timezone="Europe/Paris",
    )
    frame = pl.DataFrame(
        {
            "station": ["s1", "s2", "s1", "s2", "s1", "s1"],
            "at": ["2024-10-27 02:30:00", "2024-10-27 02:30:00", "2024-10-27 02:30:00", "2024-10-27 02:30:00",
                   "2024-10-27 03:30:00", "2024-03-31 02:30:00"],
            "t": ["1", "2", "3", "4", "5", "6"],
        }
    )  # fmt: skip
    result = _same_check(engine, frame, contract)
    times = _polars(engine, result.valid).get_column("at").to_list()
    assert (
        times[:4]
        == [datetime(2024, 10, 27, 0, 30), datetime(2024, 10, 27, 0, 30)] + [datetime(2024, 10, 27, 1, 30)] * 2
    )


def test_a_batchs_time_format_is_chosen_from_its_first_values(engine: Engine) -> None:
    """03/04 is 3 April in a day-first batch and 4 March in a month-first one; whole-batch
    choices hold however the engine splits the batch."""
    contract = Contract(
        columns={
            "day": Column(type=ColumnType.DATE, role=Role.EVENT_TIME, formats=["%m/%d/%Y", "%d/%m/%Y"]),
            "v": Column(type=ColumnType.FLOAT),
        }
    )
    day_first = pl.DataFrame({"day": ["25/03/2024", "26/03/2024", "03/04/2024"], "v": ["1", "2", "3"]})
    _same_check(engine, pl.concat([day_first] * 40).with_columns(pl.col("v")), contract.model_copy())
    _same_check(engine, pl.DataFrame({"day": ["03/25/2024", "03/04/2024"], "v": ["1", "2"]}), contract)


def test_epochs_assembled_times_row_ids_and_nested_cells(engine: Engine) -> None:
    contract = Contract(
        columns={
            "event": Column(type=ColumnType.STRING, role=Role.ID, from_row=True),
            **{part: Column(type=ColumnType.INT, role=Role.IGNORE) for part in ("year", "month", "day", "hour")},
            "at": Column(type=ColumnType.DATETIME, role=Role.EVENT_TIME, parts=["year", "month", "day", "hour"]),
            "sent": Column(type=ColumnType.DATETIME, unit="ms"),
            "amount": Column(type=ColumnType.FLOAT),
            "label": Column(type=ColumnType.STRING, role=Role.TARGET, classes=["ok", "bad"], required=False),
        }
    )
    frame = pl.DataFrame(
        {
            "year": ["2024", "2024", "2024", "2024", "2024.5"],
            "month": ["3", "3", "3", "3", "3"],
            "day": ["1", "1", "1", "2", "2"],
            "hour": ["7", "7", "7", "8", "9"],
            "sent": ["1709276400000", "1709276400000", "1709276400000", "x", "1709280000000"],
            "amount": [[1.0], None, None, None, None],
            "label": ["ok", "ok", "ok", "meh", None],
        }
    )
    _same_check(engine, frame.with_columns(pl.col("amount").list.first().cast(pl.String)), contract)
    nested = frame.with_columns(pl.Series("amount", [[1.0], [2.0], None, [3.0, 4.0], None]))
    _same_check(engine, nested, contract.model_copy(update={"max_unparseable_rate": 1.0}))


def test_batch_level_problems_refuse_alike(engine: Engine, small_contract: Contract) -> None:
    unreadable = small_frame(6).with_columns(pl.Series("ts", ["a", "b", "c", "d", "2024-03-01 10:00:00", "e"]))
    result = _same_check(engine, unreadable, small_contract)
    assert result.problems[0].rule == "unparseable" and result.problems[0].examples == ("a", "b", "c")
    gappy = small_contract.model_copy(
        update={"columns": {**small_contract.columns, "n": Column(type=ColumnType.INT, max_null_rate=0.1)}}
    )
    assert _same_check(engine, small_frame(6).with_columns(pl.lit(None, pl.String).alias("n")), gappy).problems
    assert _same_check(engine, small_frame(6).head(0), small_contract).problems[0].rule == "no rows"


def test_typed_input_is_taken_as_it_is(engine: Engine, small_contract: Contract) -> None:
    """Parquet and frames bring types: numbers, instants and wall-clock times skip the text."""
    typed = check_batch(small_frame(8), small_contract).valid.drop(ROW)
    _same_check(engine, typed.with_columns(pl.col("n").cast(pl.Int32), pl.col("x").cast(pl.Float32)), small_contract)


def test_features_are_the_definitions_own(engine: Engine, small_contract: Contract) -> None:
    zoned = small_contract.model_copy(update={"timezone": "America/New_York"})
    features = FeatureSet(
        [
            ExpressionFeature(name="ratio", expr="x / n"),
            ExpressionFeature(name="bounded", expr="clip(log1p(x), 0, 3) + max(n, 2) - sqrt(abs(x - 50))"),
            DatetimeFeature(column="ts", parts=["minute", "hour", "day_of_week", "day_of_year", "month"]),
        ],
        zoned,
    )
    typed = check_batch(small_frame(30), zoned).valid
    # Hours either side of the night New York's clocks go forward (2024-03-10, 07:00 UTC).
    crossing = pl.datetime_range(datetime(2024, 3, 10, 4), datetime(2024, 3, 11, 9), "1h", eager=True).head(30)
    typed = typed.with_columns(crossing.alias("ts"))
    added = _polars(engine, engine.add_features(engine.from_polars(typed), features))
    expected = features.apply(typed)
    assert added.equals(expected)  # to the bit: a served request computes the same
    assert added.get_column("ratio")[0] is None  # 0 / 0: null, not NaN
    with pytest.raises(FeatureError, match="lacks a column"):
        engine.add_features(engine.from_polars(typed.drop("n")), features)


def test_scoring_puts_each_rows_outputs_beside_it(engine: Engine) -> None:
    rows = pl.DataFrame({"k": [f"r{i}" for i in range(50)], "x": np.arange(50, dtype=float)})
    scored = _polars(engine, engine.score(engine.from_polars(rows), lambda b: b.select((pl.col("x") * 10).alias("y"))))
    assert sorted(scored.select("k", "y").rows()) == sorted((f"r{i}", i * 10.0) for i in range(50))
    bad: list[Callable[[pl.DataFrame], pl.DataFrame]] = [lambda b: b.head(max(b.height - 1, 0)).select("x")]
    with pytest.raises(DriftloopError, match=r"output rows for \d+ input rows|names of input columns"):
        _polars(engine, engine.score(engine.from_polars(rows), bad[0]))
    with pytest.raises(DriftloopError, match="names of input columns"):
        engine.score(engine.from_polars(rows), lambda b: b.select("x"))


# A CSV as exports write them: a byte-order mark, a repeated header name, a quoted separator, a
# doubled quote, a quoted empty cell beside a missing one, a short line, a cell over two lines.
MESSY_CSV = '\ufeffid,note,note,v\na,"x,y",1,2.5\nb,"say ""hi""",,\nc,"",3\nd,"two\nlines",4,-1\ne,plain,5,1e3\n'


def _read(engine: Engine, path: Path) -> pl.DataFrame:
    return engine.to_polars(engine.read_file(path))


def test_batch_files_are_read_into_the_same_rows(engine: Engine, tmp_path: Path) -> None:
    """A batch file read by the engine (a Spark engine reads it on the executors) holds the rows
    the Polars reader gives, cell for cell, whatever the file's form."""
    messy = tmp_path / "messy.csv"
    messy.write_text(MESSY_CSV, encoding="utf-8")
    assert _read(engine, messy).equals(read_rows(messy))
    assert read_rows(messy).columns == ["id", "note", "note_duplicated_0", "v"]
    plain = tmp_path / "plain.tsv"  # no quote anywhere: a Spark engine splits it across tasks
    plain.write_text("k\tv\n" + "".join(f"k{i}\t{i / 7}\n" for i in range(3000)), encoding="utf-8")
    assert _read(engine, plain).equals(read_rows(plain))
    typed = pl.DataFrame({"k": ["a", None, "c"], "n": [1, 2, None], "at": [datetime(2024, 1, 1, 5), None, None]})
    typed.write_parquet(tmp_path / "typed.parquet")
    typed.write_ndjson(tmp_path / "typed.ndjson")
    assert _read(engine, tmp_path / "typed.parquet").equals(typed)
    lines = _read(engine, tmp_path / "typed.ndjson")  # Spark orders inferred columns by name
    assert lines.select(sorted(lines.columns)).equals(read_rows(tmp_path / "typed.ndjson").select(["at", "k", "n"]))


def test_a_file_that_cannot_be_read_whole_is_refused_by_name(engine: Engine, tmp_path: Path) -> None:
    """A line with more cells than the header would lose them: the file is refused, naming it."""
    long = tmp_path / "long.csv"
    long.write_text("a,b\n1,2\n3,4,5\n", encoding="utf-8")
    with pytest.raises(SourceError, match=r"long\.csv.*fix the file"):
        _read(engine, long)
    broken = tmp_path / "broken.ndjson"
    broken.write_text('{"a": 1}\n{"a": \n', encoding="utf-8")
    with pytest.raises(SourceError, match=r"broken\.ndjson"):
        _read(engine, broken)
    empty = tmp_path / "empty.csv"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(SourceError, match="empty"):
        _read(engine, empty)


def test_profiles_share_the_references_bins_and_merge(engine: Engine) -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(0, 1, 4000)
    x[::97] = np.nan
    frame = pl.DataFrame({"x": x, "i": rng.integers(0, 5, 4000), "c": rng.choice(["p", "q", "r", None], 4000)})
    reference = engine.profile(engine.from_polars(frame), ["x", "i"], ["c"])
    _assert_profiles_equal(reference, profile(frame, ["x", "i"], ["c"]))
    halves = [frame.head(1500), frame.tail(2500)]
    parts = [engine.profile(engine.from_polars(h), ["x", "i"], ["c"], like=reference) for h in halves]
    _assert_profiles_equal(parts[0].merge(parts[1]), reference)
    shifted = frame.with_columns(pl.col("x") + 0.5)
    _assert_profiles_equal(
        engine.profile(engine.from_polars(shifted), ["x"], [], like=reference),
        profile(shifted, ["x"], [], like=reference),
    )


def _assert_profiles_equal(mine: object, theirs: object) -> None:
    """Equal profiles: counts and categories exactly; bin edges (a reference's quantiles) and
    sums to float rounding."""
    assert type(mine) is type(theirs)
    assert mine.rows == theirs.rows and mine.columns.keys() == theirs.columns.keys()  # type: ignore[attr-defined]
    for name, column in mine.columns.items():  # type: ignore[attr-defined]
        other = theirs.columns[name]  # type: ignore[attr-defined]
        if not isinstance(column, NumericProfile):
            assert column == other, name
            continue
        assert (column.count, column.nulls, column.counts) == (other.count, other.nulls, other.counts), name
        assert len(column.edges) == len(other.edges), name
        for a, b in [*zip(column.edges, other.edges, strict=True), (column.minimum, other.minimum),
                     (column.maximum, other.maximum),
                     (column.total, other.total), (column.total_squares, other.total_squares),
                     *zip(column.sums, other.sums, strict=True)]:  # fmt: skip
            assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9), (name, a, b)


def test_an_engine_is_chosen_by_name_or_object_in_one_place() -> None:
    assert isinstance(resolve_engine(None), PolarsEngine) and resolve_engine(None).name == DEFAULT_ENGINE
    mine = PolarsEngine()
    assert resolve_engine(mine) is mine
    with pytest.raises(ConfigError, match=r"no engine named 'duckdb'.*\['polars', 'spark'\]"):
        resolve_engine("duckdb")
    raw = {"project": {"name": "p", "engine": "duckdb"}, "contract": {"columns": {}}}
    with pytest.raises(ConfigError, match=r"project.engine: .*no engine named 'duckdb'"):
        parse_settings(raw)


def test_spark_settings_are_checked_where_they_are_read() -> None:
    base = {"project": {"name": "p", "engine": "spark"}, "contract": {"columns": {}}}
    settings = parse_settings({**base, "spark": {"master": "local[2]", "conf": {"spark.executor.memory": "2g"}}})
    assert settings.spark.master == "local[2]" and settings.spark.remote is None
    with pytest.raises(ConfigError, match=r"spark.remote: .*starts with sc://"):
        parse_settings({**base, "spark": {"remote": "http://localhost:15002"}})
    with pytest.raises(ConfigError, match=r"spark.sql.session.timeZone must stay 'UTC'"):
        parse_settings({**base, "spark": {"conf": {"spark.sql.session.timeZone": "Europe/Paris"}}})
    with pytest.raises(ConfigError, match=r"spark.mastr: unknown key"):
        parse_settings({**base, "spark": {"mastr": "local"}})
