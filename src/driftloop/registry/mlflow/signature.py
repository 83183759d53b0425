"""A model's MLflow signature, written from its contract rather than guessed from an example
(an image model's: a file's bytes in, a class and its probabilities out).

An example frame only shows the values it happens to hold: an integer column whose five example
rows have no gap is declared a required ``long``, and the first window with a missing value
fails MLflow's schema enforcement ("Can not safely convert float64 to int64"). The contract says
what may come, so the signature follows it:

- a nullable int is ``any``: pandas holds it as int64 without a gap and as float64 (NaN) with
  one, and MLflow refuses each under the other's type ("Can not safely convert float64 to
  int64", and int64 to float64 too); the contract check types it, turning ``3.0`` into ``3``;
- a nullable bool is ``any`` too: MLflow's scoring server parses JSON by the signature's
  types, and a null read as ``boolean`` becomes ``False``, a value the caller never sent;
- a date is ``datetime``: pandas has no date type;
- a column the contract does not require, and a time assembled from parts (and its parts), are
  optional (``required = false``).
"""

from __future__ import annotations

from mlflow.models import ModelSignature
from mlflow.types import ColSpec, Schema, TensorSpec
from mlflow.types.schema import AnyType

from driftloop.data.contract import Column, ColumnType, Contract
from driftloop.registry.mlflow.pyfunc import IMAGE_INPUT
from driftloop.runtime.image_package import ImagePackage
from driftloop.runtime.targets import probability_column

MLFLOW_TYPES = {
    ColumnType.INT: "long",
    ColumnType.FLOAT: "double",
    ColumnType.BOOL: "boolean",
    ColumnType.STRING: "string",
    ColumnType.DATE: "datetime",
    ColumnType.DATETIME: "datetime",
}


def contract_signature(contract: Contract, targets: list[str]) -> ModelSignature:
    """The signature of a model over ``contract`` predicting ``targets``: its inputs (every
    stored column but the targets, and the parts a time is assembled from) and its outputs (a
    number per regression target; the class, in the label's type, and a probability per class)."""
    parts = {p for column in contract.columns.values() for p in column.parts or ()}
    names = [n for n in contract.columns if n in parts or (n in contract.stored_columns and n not in contract.targets)]
    inputs: list[ColSpec | TensorSpec] = [
        _spec(n, contract.columns[n], optional=n in parts or bool(contract.columns[n].parts)) for n in names
    ]
    outputs: list[ColSpec | TensorSpec] = []
    for t in targets:
        classes = contract.columns[t].classes
        outputs.append(ColSpec(MLFLOW_TYPES[contract.columns[t].type] if classes else "double", t))
        outputs += [ColSpec("double", probability_column(t, c)) for c in classes or ()]
    return ModelSignature(inputs=Schema(inputs), outputs=Schema(outputs))


def image_signature(package: ImagePackage) -> ModelSignature:
    """An image model's signature: a file's bytes in (column ``image``), the class and each
    class's probability out."""
    outputs: list[ColSpec | TensorSpec] = [ColSpec("string", package.target)]
    outputs += [ColSpec("double", probability_column(package.target, c)) for c in package.classes]
    return ModelSignature(inputs=Schema([ColSpec("binary", IMAGE_INPUT)]), outputs=Schema(outputs))


def _spec(name: str, column: Column, *, optional: bool) -> ColSpec:
    untyped = column.nullable and column.type in (ColumnType.INT, ColumnType.BOOL)
    kind = AnyType() if untyped else MLFLOW_TYPES[column.type]  # type: ignore[no-untyped-call]
    return ColSpec(kind, name, required=column.required and not optional)
