from __future__ import annotations

from collections import Counter

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from driftloop.data.contract import Column, ColumnType, Contract, Role
from driftloop.data.draft import draft_contract
from driftloop.data.validate import RowChecker, check_batch
from driftloop.demo.data import messy_energy
from driftloop.lake import COLUMNS, ROW, RULES
from tests.conftest import small_frame
from tests.strategies import messy_batches


def test_valid_rows_pass_typed(small_contract: Contract) -> None:
    result = check_batch(small_frame(), small_contract)
    assert result.ok and result.rejected.height == 0
    assert result.valid.height == 6
    assert result.valid.schema["ts"] == pl.Datetime("us")
    assert result.valid.get_column("flag").to_list() == [False, True, True, False, True, True]


def test_each_broken_rule_is_named_with_its_column(small_contract: Contract) -> None:
    frame = small_frame(8).with_columns(
        pl.Series("x", ["1", "", "200", "abc", "inf", "2", "3", "4"]),
        pl.Series("colour", ["red", "green", "red", "red", "red", "purple", "red", "red"]),
        pl.Series("n", ["1", "2", "3", "4", "5", "6", "-1", "2.5"]),
    )
    result = check_batch(frame, small_contract)
    rules = dict(zip(result.rejected.get_column(ROW), result.rejected.get_column(RULES).to_list(), strict=True))
    assert rules == {
        2: ["x:not_null"],
        3: ["x:max"],
        4: ["x:type"],
        5: ["x:finite", "x:max"],  # inf is both
        6: ["colour:allowed"],
        7: ["n:min"],
        8: ["n:type"],
    }
    assert result.rejected.filter(pl.col(ROW) == 4).get_column("x").item() == "abc"  # the original text is kept
    assert result.rejected.filter(pl.col(ROW) == 6).get_column(COLUMNS).item().to_list() == ["colour"]
    counts = {(c.column, c.rule): (c.rows, c.examples) for c in result.rule_counts}
    assert counts[("x", "type")] == (1, ("abc",))
    assert counts[("colour", "allowed")] == (1, ("purple",))


def test_duplicate_keys_reject_the_repeat_or_keep_the_latest(small_contract: Contract) -> None:
    frame = pl.concat([small_frame(3), small_frame(1).with_columns(pl.lit("99").alias("n"))])
    rejected = check_batch(frame, small_contract).rejected
    assert rejected.get_column(ROW).to_list() == [4]
    assert rejected.get_column(RULES).to_list() == [["key:duplicate"]]
    latest = check_batch(frame, small_contract.model_copy(update={"duplicates": "keep_latest"}))
    assert latest.rejected.get_column(RULES).to_list() == [["key:superseded"]]
    assert latest.valid.filter(pl.col("id") == "e0").get_column("n").to_list() == [99]


def test_keys_already_stored_are_rejected(small_contract: Contract) -> None:
    stored = check_batch(small_frame(3), small_contract).valid.lazy()
    result = check_batch(small_frame(5), small_contract, seen_keys=stored)
    assert result.rejected.get_column(RULES).to_list() == [["key:already_stored"]] * 3
    assert result.valid.get_column("id").to_list() == ["e3", "e4"]


def test_batch_level_problems_name_column_rule_and_examples(small_contract: Contract) -> None:
    missing = check_batch(small_frame().drop("x"), small_contract)
    assert [(p.column, p.rule) for p in missing.problems] == [("x", "required")]
    assert check_batch(small_frame().drop("y"), small_contract).ok  # targets are optional
    mostly_bad = small_frame().with_columns(pl.lit("soon").alias("ts"))
    problem = check_batch(mostly_bad, small_contract).problems[0]
    assert (problem.column, problem.rule, problem.examples) == ("ts", "unparseable", ("soon",))
    assert "100% of its values are not datetime" in str(problem)
    empty = check_batch(small_frame().head(0), small_contract)
    assert [p.rule for p in empty.problems] == ["no rows"]


def test_null_rate_limit_refuses_the_batch() -> None:
    contract = Contract(columns={"a": Column(type=ColumnType.FLOAT, max_null_rate=0.2)})
    result = check_batch(pl.DataFrame({"a": ["1", None, "", "2"]}), contract)
    assert [p.rule for p in result.problems] == ["null rate"]


def test_typed_frames_are_checked_without_text_round_trips() -> None:
    contract = Contract(
        columns={"a": Column(type=ColumnType.FLOAT, max=10), "k": Column(type=ColumnType.INT, role=Role.ID)}
    )
    result = check_batch(pl.DataFrame({"a": [1.0, float("nan"), 50.0], "k": [1, 2, 3]}), contract)
    assert result.valid.get_column("a").to_list() == [1.0, None]  # NaN is missing
    assert result.rejected.get_column("a").to_list() == ["50.0"]


def test_messy_demo_data_lands_every_row_once_with_its_reason(energy: pl.DataFrame) -> None:
    contract = draft_contract(energy.head(2000).with_columns(pl.lit("house_a").alias("site")), targets=("Appliances",))
    messy = messy_energy(2000, seed=3)
    result = check_batch(messy.drop("damage"), contract)
    assert result.ok
    assert result.valid.height + result.rejected.height == messy.height
    expected = {"null": "T1:not_null", "nan": "RH_1:not_null", "range": "T2:max", "date": "date:type",
                "type": "T3:type", "category": "site:allowed"}  # fmt: skip
    damaged = messy.with_row_index(ROW, offset=1).with_columns(pl.col(ROW).cast(pl.Int64))
    found = damaged.join(result.rejected.select(ROW, RULES), on=ROW, how="left")
    for kind, rule in expected.items():
        rows = found.filter(pl.col("damage") == kind)
        assert rows.height > 0
        assert all(rule in rules for rules in rows.get_column(RULES).to_list()), kind
    parseable = messy.filter(pl.col("damage") != "date").get_column("date")
    parseable = parseable.filter(parseable != "2016-13-45 25:61:00")  # copies of damaged dates have no key
    flagged = sum("key:duplicate" in r for r in found.get_column(RULES).drop_nulls().to_list())
    assert flagged == parseable.len() - parseable.n_unique() > 0  # every repeat of a key, and only those
    assert found.filter(pl.col("damage") == "").get_column(RULES).null_count() > 0  # intact rows pass


CONTRACT = Contract(
    columns={
        "id": Column(type=ColumnType.INT, role=Role.ID),
        "ts": Column(type=ColumnType.DATETIME, role=Role.EVENT_TIME),
        "x": Column(type=ColumnType.FLOAT, nullable=False, min=-100, max=100),
        "on": Column(type=ColumnType.BOOL),
        "day": Column(type=ColumnType.DATE),
        "colour": Column(type=ColumnType.STRING, allowed=["red", "green"]),
    },
    max_unparseable_rate=0.9,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messy_batches(CONTRACT))
def test_every_row_lands_in_exactly_one_place(frame: pl.DataFrame) -> None:
    result = check_batch(frame, CONTRACT)
    if not result.ok:
        assert result.valid.height == 0 and result.rejected.height == 0
        return
    positions = Counter(result.valid.get_column(ROW).to_list() + result.rejected.get_column(ROW).to_list())
    assert sorted(positions) == list(range(1, frame.height + 1))
    assert set(positions.values()) == {1} or frame.height == 0
    assert all(len(rules) > 0 for rules in result.rejected.get_column(RULES).to_list())
    assert result.valid.get_column("x").is_between(-100, 100).all()


def test_the_compiled_row_check_agrees_with_the_full_check(small_contract: Contract) -> None:
    typed = check_batch(small_frame(6), small_contract).valid.drop(ROW)
    checker = RowChecker(small_contract)
    fast = checker.valid_rows(typed)
    assert fast is not None and fast.equals(typed)
    broken = {
        "x": pl.Series("x", [1.0, None, 200.0, float("inf"), 2.0, float("nan")]),  # not_null, max, finite, NaN=null
        "colour": pl.Series("colour", ["red", "green", "red", "purple", "red", "red"]),  # allowed
        "n": pl.Series("n", [1, 2, 3, -1, 5, 6]),  # min
    }
    for name, values in broken.items():
        frame = typed.with_columns(values)
        assert checker.valid_rows(frame) is None, name  # the full check explains it
        assert check_batch(frame, small_contract, check_keys=False).rejected.height > 0, name
    assert checker.valid_rows(small_frame(6)) is None  # text to parse: the full check's job
    assert checker.valid_rows(typed.drop("x")) is None  # a required column missing
    without_target = checker.valid_rows(typed.drop("y"))  # an optional column missing: typed nulls
    assert without_target is not None and without_target.get_column("y").null_count() == 6
    sent_null = typed.with_columns(pl.lit(None).alias("y"))  # JSON nulls in every row: a column of type Null
    assert sent_null.schema["y"] == pl.Null
    fast_null = checker.valid_rows(sent_null)
    assert fast_null is not None and fast_null.equals(without_target)
    assert check_batch(sent_null, small_contract, check_keys=False).valid.drop(ROW).equals(without_target)
    assert checker.valid_rows(typed.with_columns(pl.lit(None).alias("x"))) is None  # x is required: the full check
    as_json = typed.with_columns(pl.col("ts").dt.strftime("%Y-%m-%dT%H:%M:%S"))  # JSON has no time type
    parsed = checker.valid_rows(as_json)
    assert parsed is not None and parsed.equals(typed)
    assert checker.valid_rows(as_json.with_columns(pl.lit("soon").alias("ts"))) is None  # the full check names it


VALUES = {
    "x": st.one_of(st.none(), st.floats(-10, 120), st.sampled_from([float("nan"), float("inf"), -float("inf")])),
    "n": st.one_of(st.none(), st.integers(-3, 10)),
    "colour": st.one_of(st.none(), st.sampled_from(["red", "green", "blue"])),
    "flag": st.one_of(st.none(), st.booleans()),
    "id": st.one_of(st.none(), st.sampled_from(["e1", "e2"])),
}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.fixed_dictionaries(VALUES), min_size=1, max_size=6))
def test_the_compiled_check_never_passes_what_the_full_check_refuses(small_contract: Contract, rows: list) -> None:
    """Typed values as JSON brings them (NaN, infinities, nulls, out of range, unknown
    categories): the compiled check passes exactly the frames the full check accepts whole,
    with the same typed values."""
    frame = pl.DataFrame(
        {
            **{name: pl.Series(name, [r[name] for r in rows], dtype) for name, dtype in (
                ("id", pl.String), ("x", pl.Float64), ("n", pl.Int64), ("colour", pl.String), ("flag", pl.Boolean))},
            "ts": pl.Series("ts", ["2024-03-01T10:00:00"] * len(rows)),
        }
    )  # fmt: skip
    full = check_batch(frame, small_contract, check_keys=False)
    fast = RowChecker(small_contract).valid_rows(frame)
    accepted_whole = full.ok and full.rejected.height == 0
    assert (fast is not None) == accepted_whole
    if fast is not None:
        assert fast.equals(full.valid.drop(ROW).select(fast.columns))


def test_an_int_column_pandas_holds_as_floats_stays_on_the_fast_path(small_contract: Contract) -> None:
    # pandas has no int with gaps: a request through mlflow.pyfunc carries them as float64.
    typed = check_batch(small_frame(6), small_contract).valid.drop(ROW)
    as_floats = typed.with_columns(pl.col("n").cast(pl.Float64))
    fast = RowChecker(small_contract).valid_rows(as_floats)
    assert fast is not None and fast.equals(typed)
    halves = as_floats.with_columns(pl.Series("n", [1.0, 2.5, 3.0, 4.0, 5.0, 6.0]))
    assert RowChecker(small_contract).valid_rows(halves) is None  # 2.5 is no int: the full check says so
    rejected = check_batch(halves, small_contract, check_keys=False).rejected
    assert rejected.get_column("n").to_list() == ["2.5"] and rejected.get_column(RULES).to_list() == [["n:type"]]
