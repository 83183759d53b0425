"""What a server logged with each prediction, read back: the request's inputs (kept as JSON in
``predictions.inputs``) as contract columns, and a prediction row's key. Needs Polars only, so a
device profiles its own log with it.
"""

from __future__ import annotations

import polars as pl

from driftloop.data.contract import ColumnType, Contract
from driftloop.errors import MonitorError

INPUTS = "inputs"  # the predictions column holding a logged request's inputs as JSON


def key_columns(contract: Contract) -> list[pl.Expr]:
    """The contract's key columns rebuilt from a prediction row's entity id and event time."""
    columns = contract.ids_from_entity(pl.col("entity_id"))
    if contract.clock is not None:
        columns.append(contract.clock.from_instants(pl.col("event_time")))
    return columns


def logged_inputs(logged: pl.DataFrame, contract: Contract) -> pl.DataFrame:
    """The contract columns of logged online predictions, one row per prediction.

    A request that sent no entity id or event time gets the ones it was logged with (its event
    time is then when it was scored); targets are left empty, truth comes from labels.
    """
    if INPUTS not in logged.columns:
        raise MonitorError("these predictions carry no logged inputs (the 'inputs' column); were they scored online?")
    names = [c for c in contract.stored_columns if c not in contract.targets]
    # JSON has no date type: times were encoded as text, and are parsed back below.
    shape = pl.Struct({n: pl.String if contract.columns[n].type.is_temporal else contract.columns[n].type.polars
                       for n in names})  # fmt: skip
    times = [
        pl.col(n).str.to_date()
        if contract.columns[n].type is ColumnType.DATE
        else pl.col(n).str.to_datetime(time_unit="us")
        for n in names
        if contract.columns[n].type.is_temporal
    ]
    try:
        typed = logged.select(pl.col(INPUTS).str.json_decode(shape)).unnest(INPUTS).with_columns(times)
    except pl.exceptions.PolarsError as exc:
        raise MonitorError(f"the logged inputs of online predictions cannot be read back: {exc}") from exc
    logged_keys = logged.select(key_columns(contract))
    typed = typed.with_columns(pl.coalesce(pl.col(k), logged_keys.get_column(k)).alias(k) for k in contract.key)
    return typed.with_columns(pl.lit(None, contract.columns[t].type.polars).alias(t) for t in contract.targets)


__all__ = ["INPUTS", "key_columns", "logged_inputs"]
