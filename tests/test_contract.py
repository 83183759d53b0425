from __future__ import annotations

import re

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
