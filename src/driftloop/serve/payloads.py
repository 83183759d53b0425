"""Request bodies of the three protocols the server speaks, as one frame of raw rows; and back.

- driftloop's own ``POST /v1/predict``: one record (an object) or a list of records;
- MLflow's ``POST /invocations``: ``dataframe_split``, ``dataframe_records``, ``instances``
  (records) or ``inputs`` (records, or columns as ``{"col": [values]}``);
- the Open Inference Protocol v2: ``{"inputs": [{"name", "shape", "datatype", "data"}]}``, one
  tensor per column.

Each body becomes :data:`Rows`: the row objects as JSON gave them (:data:`Records`), or plain
lists per column (:data:`Columns`). No frame yet: the batcher's worker thread makes the rows of a
whole batch of requests into columns (:func:`combined`) and one frame (:func:`to_frame`), so the
event loop only checks a body's shape. :func:`to_frame` keeps the types JSON gave; a column whose
values mix types (``20.5`` and ``"warm"``) is kept as text, so the contract check names the
exact cell.
"""

from __future__ import annotations

import json
from itertools import chain
from typing import Any, cast

import polars as pl

from driftloop.data.contract import Column, ColumnType, Contract
from driftloop.errors import RequestRefused
from driftloop.runtime.targets import probability_column

MLFLOW_FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
Columns = dict[str, list[Any]]  # column name -> one value per row
Records = list[dict[str, Any]]  # one object per row: column name -> value
Rows = Records | Columns  # one request's rows, as its protocol brought them
V2_DATATYPES: dict[type, str] = {float: "FP64", bool: "BOOL", int: "INT64", str: "BYTES"}


def from_records(records: Any, *, max_rows: int) -> Records:
    """A list of row objects (or one object), checked to be one."""
    rows = [records] if isinstance(records, dict) else records
    if not isinstance(rows, list) or not rows:
        raise RequestRefused("the body must be a record (a JSON object) or a non-empty list of records")
    _check_rows(len(rows), max_rows)
    bad = [i for i, row in enumerate(rows) if not isinstance(row, dict)]
    if bad:
        raise RequestRefused(
            f"row(s) {bad[:5]} are not JSON objects; each row is {{column: value, ...}}",
            [{"row": i, "msg": "not an object"} for i in bad[:20]],
        )
    return rows


def from_columns(columns: Any, *, max_rows: int) -> Columns:
    """The columns of ``{"column": [values, ...]}``, checked to be of one length."""
    if not isinstance(columns, dict) or not columns or not all(isinstance(v, list) for v in columns.values()):
        raise RequestRefused('columns must be given as {"name": [values, ...], ...}')
    lengths = {len(v) for v in columns.values()}
    if len(lengths) != 1:
        raise RequestRefused(f"columns differ in length: {sorted(lengths)}")
    _check_rows(lengths.pop(), max_rows)
    return dict(columns)


def from_mlflow(body: Any, *, max_rows: int) -> Rows:
    """The rows of an MLflow scoring request (``/invocations``)."""
    if not isinstance(body, dict) or len([k for k in body if k in MLFLOW_FORMATS]) != 1:
        raise RequestRefused(f"an /invocations body holds exactly one of {list(MLFLOW_FORMATS)}")
    if "dataframe_split" in body:
        split = body["dataframe_split"]
        if (
            not isinstance(split, dict)
            or not isinstance(split.get("columns"), list)
            or not isinstance(split.get("data"), list)
        ):
            raise RequestRefused('dataframe_split needs {"columns": [...], "data": [[...], ...]}')
        names, data = split["columns"], split["data"]
        if any(not isinstance(row, list) or len(row) != len(names) for row in data):
            raise RequestRefused(f"every row of dataframe_split.data must be a list of {len(names)} values")
        return from_records([dict(zip(names, row, strict=True)) for row in data], max_rows=max_rows)
    if "inputs" in body and isinstance(body["inputs"], dict):
        return from_columns(body["inputs"], max_rows=max_rows)
    key = next(k for k in body if k in MLFLOW_FORMATS)
    return from_records(body[key], max_rows=max_rows)


def from_v2(body: Any, *, max_rows: int) -> Columns:
    """The rows of an Open Inference Protocol v2 request: one input tensor per column."""
    inputs = body.get("inputs") if isinstance(body, dict) else None
    if not isinstance(inputs, list) or not inputs:
        raise RequestRefused('a v2 request is {"inputs": [{"name", "shape", "datatype", "data"}, ...]}')
    columns: dict[str, Any] = {}
    for i, tensor in enumerate(inputs):
        if not isinstance(tensor, dict) or not isinstance(tensor.get("name"), str) or "data" not in tensor:
            raise RequestRefused(f"inputs[{i}] needs a name and data", [{"loc": ["inputs", i], "msg": "malformed"}])
        data = tensor["data"]
        columns[tensor["name"]] = data if isinstance(data, list) else [data]
    return from_columns(columns, max_rows=max_rows)


def v2_outputs(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Output tensors of a v2 response, one per target, from the output rows."""
    names = list(records[0]) if records else []
    tensors = []
    for name in names:
        data = [record[name] for record in records]
        kind = next((type(v) for v in data if v is not None), float)
        tensors.append({"name": name, "shape": [len(data)], "datatype": V2_DATATYPES.get(kind, "FP64"), "data": data})
    return tensors


def _check_rows(rows: int, max_rows: int) -> None:
    if rows > max_rows:
        raise RequestRefused(
            f"the request holds {rows} rows, more than the {max_rows} allowed ([serve] max_rows); "
            "split it, or score large sets with `driftloop predict`",
            status=413,
        )


def row_count(rows: Rows) -> int:
    """How many rows a request holds."""
    if isinstance(rows, list):
        return len(rows)
    return len(next(iter(rows.values()))) if rows else 0


def combined(parts: list[Rows]) -> Columns:
    """The columns of several requests' rows, one request after the other.

    A column that some rows lack (another request, or another row of the same request, sent
    it) is None in them: the contract check then judges those rows as if the column were
    missing. Records whose objects all have the same keys, the usual case, take one pass per
    column.
    """
    if all(isinstance(part, list) for part in parts):
        records = cast(Records, parts[0] if len(parts) == 1 else list(chain.from_iterable(parts)))
        keys = records[0].keys()
        if all(record.keys() == keys for record in records):
            return {name: [record[name] for record in records] for name in keys}
        names = dict.fromkeys(name for record in records for name in record)  # in order of appearance
        return {name: [record.get(name) for record in records] for name in names}
    columns = [part if isinstance(part, dict) else combined([part]) for part in parts]
    if len(columns) == 1:
        return columns[0]
    names = dict.fromkeys(name for part in columns for name in part)
    return {
        name: list(chain.from_iterable(part[name] if name in part else [None] * row_count(part) for part in columns))
        for name in names
    }


def to_frame(columns: Columns) -> pl.DataFrame:
    """A frame of raw rows, typed as JSON gave them (mixed types as text)."""
    series = []
    for name, values in columns.items():
        try:
            series.append(pl.Series(name, values, strict=True))
        except (TypeError, ValueError, OverflowError, pl.exceptions.PolarsError):
            if all(v is None or (isinstance(v, int | float) and not isinstance(v, bool)) for v in values):
                series.append(pl.Series(name, values, dtype=pl.Float64))  # 20 and 20.5 in one column
            else:  # as text: the contract check names the cell that is not what it should be
                series.append(pl.Series(name, [_text(v) for v in values], dtype=pl.String))
    return pl.DataFrame(series)


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value)


def request_schemas(contract: Contract) -> dict[str, dict[str, Any]]:
    """OpenAPI request bodies of the three protocols, from the data contract (for /docs and clients)."""
    inputs = [c for c in contract.stored_columns if c not in contract.targets]
    record = {
        "type": "object",
        "properties": {c: _json_type(contract.columns[c]) for c in inputs},
        "required": [c for c in inputs if contract.columns[c].required],
    }
    records = {"type": "array", "items": record, "minItems": 1}
    columns = {"type": "object", "additionalProperties": {"type": "array"}}
    split = {
        "type": "object",
        "properties": {"columns": {"type": "array", "items": {"type": "string"}}, "data": {"type": "array"}},
        "required": ["columns", "data"],
    }
    tensor = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "shape": {"type": "array", "items": {"type": "integer"}},
                       "datatype": {"type": "string"}, "data": {"type": "array"}},
        "required": ["name", "data"],
    }  # fmt: skip
    mlflow = {
        "oneOf": [
            {"type": "object", "properties": {"dataframe_split": split}, "required": ["dataframe_split"]},
            {"type": "object", "properties": {"dataframe_records": records}, "required": ["dataframe_records"]},
            {"type": "object", "properties": {"instances": records}, "required": ["instances"]},
            {"type": "object", "properties": {"inputs": {"oneOf": [records, columns]}}, "required": ["inputs"]},
        ]
    }
    v2 = {"type": "object", "properties": {"inputs": {"type": "array", "items": tensor}}, "required": ["inputs"]}
    return {"v1": {"oneOf": [record, records]}, "mlflow": mlflow, "v2": v2}


def answer_schemas(contract: Contract) -> dict[str, dict[str, Any]]:
    """OpenAPI schemas of the answers of the three protocols (for /docs and clients)."""
    number = {"type": "number", "nullable": True}  # null where the network gave NaN
    outputs = output_schemas(contract)
    row = {"type": "object", "properties": outputs, "required": list(outputs)}
    v1_row = {"type": "object", "properties": {**outputs, "prediction_id": {"type": "string"}},
              "required": [*outputs, "prediction_id"]}  # fmt: skip
    tensor = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "shape": {"type": "array", "items": {"type": "integer"}},
                       "datatype": {"type": "string"},
                       "data": {"type": "array", "items": {"oneOf": [number, *_label_schemas(contract)]}}},
        "required": ["name", "shape", "datatype", "data"],
    }  # fmt: skip
    text = {"type": "string"}
    return {
        "v1": {"type": "object", "required": ["model", "model_version", "request_id", "predictions"],
               "properties": {"model": text, "model_version": text, "request_id": text,
                              "predictions": {"type": "array", "items": v1_row}}},
        "mlflow": {"type": "object", "required": ["predictions"],
                   "properties": {"predictions": {"type": "array", "items": row}}},
        "v2": {"type": "object", "required": ["model_name", "model_version", "id", "outputs"],
               "properties": {"model_name": text, "model_version": text, "id": text,
                              "outputs": {"type": "array", "items": tensor}}},
    }  # fmt: skip


def output_schemas(contract: Contract) -> dict[str, dict[str, Any]]:
    """The JSON schema of each output column: a number per regression target; a label's class
    (in its type, one of its classes) and one probability per class."""
    number = {"type": "number", "nullable": True}  # null where the network gave NaN
    schemas: dict[str, dict[str, Any]] = {}
    for target in contract.targets:
        column = contract.columns[target]
        if column.classes is None:
            schemas[target] = number
            continue
        schemas[target] = _label_schema(column)
        schemas.update({probability_column(target, c): {"type": "number", "minimum": 0, "maximum": 1}
                        for c in column.classes})  # fmt: skip
    return schemas


def _label_schemas(contract: Contract) -> list[dict[str, Any]]:
    return [_label_schema(contract.columns[t]) for t in contract.class_targets]


def _label_schema(column: Column) -> dict[str, Any]:
    kinds = {ColumnType.INT: "integer", ColumnType.BOOL: "boolean"}
    labels: list[Any] = list(column.classes or ())
    if column.type is ColumnType.INT:
        labels = [int(c) for c in labels]
    if column.type is ColumnType.BOOL:
        labels = [c == "true" for c in labels]
    return {"type": kinds.get(column.type, "string"), "enum": labels}


def _json_type(column: Column) -> dict[str, Any]:
    kinds: dict[ColumnType, dict[str, Any]] = {
        ColumnType.INT: {"type": "integer"},
        ColumnType.FLOAT: {"type": "number"},
        ColumnType.BOOL: {"type": "boolean"},
    }
    schema = dict(kinds.get(column.type, {"type": "string"}))
    if column.type.is_temporal:  # the contract's formats, not RFC 3339 (no time zone suffix)
        schema["description"] = "one of the formats " + ", ".join(column.parse_formats)
    if column.min is not None and column.type in (ColumnType.INT, ColumnType.FLOAT):
        schema["minimum"] = column.min
    if column.max is not None and column.type in (ColumnType.INT, ColumnType.FLOAT):
        schema["maximum"] = column.max
    if column.allowed is not None:
        schema["enum"] = column.allowed
    if column.nullable and "type" in schema:
        schema["nullable"] = True
    return schema
