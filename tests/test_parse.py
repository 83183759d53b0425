from __future__ import annotations

from datetime import date, datetime

import polars as pl
import pytest

from driftloop.data.contract import ColumnType
from driftloop.data.parse import cast_typed, clean_text, parse_column, unparsed


def parse(values: list[str | None], ctype: ColumnType, formats: tuple[str, ...] = ()) -> list[object]:
    text = clean_text(pl.Series("v", values, pl.String))
    return parse_column(text, ctype, formats).to_list()


def test_numbers_tolerate_padding_and_reject_words() -> None:
    assert parse(["  60", "60.0", "6e1", "60.5", "warm", ""], ColumnType.INT) == [60, 60, 60, None, None, None]
    assert parse([" 1.5 ", "5.29999999e+00", "x", "inf"], ColumnType.FLOAT)[:3] == [1.5, 5.29999999, None]


def test_null_words_are_missing_outside_strings_only() -> None:
    text = clean_text(pl.Series(["NA", "null", " ", "warm"]))
    values = parse_column(text, ColumnType.FLOAT)
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
    assert (cast_typed(pl.col("v"), source, ctype) is not None) is lossless


def test_aware_datetimes_are_stored_as_utc() -> None:
    frame = pl.DataFrame({"v": [datetime(2024, 7, 1, 12, 0)]}).with_columns(
        pl.col("v").dt.replace_time_zone("Europe/Brussels")
    )
    expr = cast_typed(pl.col("v"), frame.schema["v"], ColumnType.DATETIME)
    assert expr is not None
    assert frame.select(expr).item() == datetime(2024, 7, 1, 10, 0)


def test_a_date_column_through_pandas_is_its_calendar_day() -> None:
    # pandas has no date type: MLflow's pyfunc hands a date column over as midnight datetimes.
    through_pandas = pl.from_pandas(pl.DataFrame({"v": [date(2016, 1, 11), None]}).to_pandas())
    assert isinstance(through_pandas.schema["v"], pl.Datetime)
    expr = cast_typed(pl.col("v"), through_pandas.schema["v"], ColumnType.DATE)
    assert expr is not None
    assert through_pandas.select(expr).to_series().to_list() == [date(2016, 1, 11), None]


def test_a_nested_value_is_text_that_fails_its_type() -> None:
    values = pl.Series("v", [[1, 2], None, [3]])  # a list where a number was expected
    text = clean_text(values)
    assert text.to_list() == ["[1, 2]", None, "[3]"]
    assert unparsed(text, parse_column(text, ColumnType.FLOAT), ColumnType.FLOAT).to_list() == [True, False, True]
