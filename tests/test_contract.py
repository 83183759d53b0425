from __future__ import annotations

import re
from datetime import date

import polars as pl
import pytest
from pydantic import ValidationError

from driftloop.data.contract import Column, ColumnType, Contract, Role


def test_key_is_id_then_event_time(small_contract: Contract) -> None:
    assert small_contract.key == ["id", "ts"]
    assert small_contract.targets == ["y"]
    assert small_contract.columns["ts"].nullable is False  # key columns can never be null


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"type": "float", "min": 5, "max": 1}, "min (5.0) is above max (1.0)"),
        ({"type": "string", "min": 0}, "min/max apply to int and float"),
        ({"type": "float", "allowed": ["a"]}, "allowed values apply to string"),
        ({"type": "int", "formats": ["%Y"]}, "formats apply to date and datetime"),
        ({"type": "float", "role": "event_time"}, "event_time column must be date or datetime"),
        ({"type": "decimal"}, "Input should be 'int'"),
        ({"type": "int", "colour": "red"}, "Extra inputs are not permitted"),
    ],
)
def test_inconsistent_columns_are_refused(spec: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        Column.model_validate(spec)


def test_two_event_times_are_refused() -> None:
    clock = Column(type=ColumnType.DATETIME, role=Role.EVENT_TIME)
    with pytest.raises(ValidationError, match="at most one event_time column"):
        Contract(columns={"a": clock, "b": clock})


def test_ignored_columns_are_not_stored() -> None:
    contract = Contract(columns={"a": Column(type=ColumnType.INT), "b": Column(type=ColumnType.INT, role=Role.IGNORE)})
    assert contract.stored_columns == ["a"]


def test_several_id_columns_name_an_entity_and_come_back_typed() -> None:
    contract = Contract(
        columns={
            "store": Column(type=ColumnType.STRING, role=Role.ID),
            "lane": Column(type=ColumnType.INT, role=Role.ID),
            "day": Column(type=ColumnType.DATE, role=Role.ID),
            "t": Column(type=ColumnType.DATETIME, role=Role.EVENT_TIME),
        }
    )
    rows = pl.DataFrame({"store": ['a\\"b', "c"], "lane": [1, 22], "day": [date(2024, 1, 1), date(2024, 2, 29)]})
    entity = rows.select(contract.entity_id().alias("entity_id"))
    assert entity.get_column("entity_id").n_unique() == 2
    assert entity.select(contract.ids_from_entity(pl.col("entity_id"))).equals(rows)
    single = Contract(columns={"day": Column(type=ColumnType.DATE, role=Role.ID)})
    text = rows.select(single.entity_id().alias("entity_id"))
    assert text.get_column("entity_id").to_list() == ["2024-01-01", "2024-02-29"]
    assert text.select(single.ids_from_entity(pl.col("entity_id"))).equals(rows.select("day"))
    assert Contract(columns={}).ids_from_entity(pl.col("entity_id")) == []
    with pytest.raises(ValueError, match="at most one event_time column"):
        Contract(columns={n: Column(type=ColumnType.DATETIME, role=Role.EVENT_TIME) for n in ("a", "b")})
