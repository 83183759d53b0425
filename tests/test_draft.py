from __future__ import annotations

import polars as pl
import pytest

from driftloop.data.contract import ColumnType, Role
from driftloop.data.draft import draft_contract
from driftloop.errors import ContractError


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
