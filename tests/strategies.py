"""Hypothesis strategies for messy batches: the text a broken export really contains."""

from __future__ import annotations

import polars as pl
from hypothesis import strategies as st

from driftloop.data.contract import ColumnType, Contract

GARBAGE = st.sampled_from(["", " ", "NaN", "nan", "inf", "-inf", "NA", "null", "1e400", "-0", "warm", "€", "\t7",
                           "2016-13-45", "25:61", "0x1F", "1,5", "true", "9" * 30, "\x00", "é"])  # fmt: skip

VALID: dict[ColumnType, st.SearchStrategy[str]] = {
    ColumnType.INT: st.integers(-(10**6), 10**6).map(str),
    ColumnType.FLOAT: st.floats(allow_nan=True, allow_infinity=True).map(repr),
    ColumnType.BOOL: st.sampled_from(["true", "false", "yes", "no", "1", "0"]),
    ColumnType.STRING: st.sampled_from(["red", "green", "blue"]),
    ColumnType.DATE: st.dates().map(lambda d: d.isoformat()),
    ColumnType.DATETIME: st.datetimes().map(lambda d: d.strftime("%Y-%m-%d %H:%M:%S")),
}


def cell(ctype: ColumnType) -> st.SearchStrategy[str | None]:
    return st.one_of(VALID[ctype], GARBAGE, st.none(), st.text(max_size=6))


@st.composite
def messy_batches(draw: st.DrawFn, contract: Contract, max_rows: int = 25) -> pl.DataFrame:
    """A text frame for ``contract``: valid values mixed with garbage, nulls, repeated rows,
    now and then a missing column or an extra one."""
    rows = draw(st.integers(0, max_rows))
    data: dict[str, list[str | None]] = {}
    for name, column in contract.columns.items():
        if draw(st.integers(0, 19)) == 0:
            continue  # a column missing now and then
        data[name] = [draw(cell(column.type)) for _ in range(rows)]
    if draw(st.booleans()):
        data["unexpected"] = [draw(st.text(max_size=3)) for _ in range(rows)]
    frame = pl.DataFrame(data, schema=dict.fromkeys(data, pl.String))
    if rows and draw(st.booleans()):  # repeat some rows: duplicate keys
        frame = pl.concat([frame, frame.head(draw(st.integers(1, rows)))])
    return frame
