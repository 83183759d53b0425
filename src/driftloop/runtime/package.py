"""The model package: everything a prediction needs, read and scored without MLflow or training code.

A folder with ``weights.safetensors`` (the network's parameters), ``package.json`` (network
shape, preprocessing state, target scaling, feature definitions, data contract, metrics, lineage
and the reference profiles of the training window, for drift monitoring) and the network as a
checked ONNX graph with its golden pairs (:mod:`driftloop.runtime.exported`). Only JSON,
safetensors and ONNX's protobuf are read: no pickle. Scoring runs the same steps everywhere (training's evaluation,
batch prediction, the server, a fresh process at the qa gate): contract check, features,
preprocessing, then the network through a scoring backend (:mod:`driftloop.runtime.backends`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from driftloop.data.contract import Contract
from driftloop.data.sources import to_polars
from driftloop.data.validate import CheckResult, RowChecker
from driftloop.errors import ModelPackageError
from driftloop.features import FeatureSet
from driftloop.runtime.backends import DEFAULT_BACKEND, Backend, chosen_backend, resolve_backend
from driftloop.runtime.exported import ExportedNetwork
from driftloop.runtime.preprocess import NumericInputs, Preprocessor
from driftloop.runtime.spec import NetworkSpec
from driftloop.runtime.targets import Targets

FORMAT_VERSION = 1
TABLE_KIND = "table"  # a package's kind when its manifest does not say (an image package says "image")
IMAGE_KIND = "image"
WEIGHTS = "weights.safetensors"
MANIFEST = "package.json"
# The manifest's record of the exported ONNX graph (absent in a package without one).
ONNX = "onnx"
# Rows of a prediction request listed in an error about invalid input.
ERROR_ROWS_SHOWN = 5


@dataclass
class ModelPackage:
    """A trained model's network (shape and weights) with its preprocessing, features and contract."""

    spec: NetworkSpec
    weights: dict[str, np.ndarray]
    preprocessor: Preprocessor
    heads: Targets  # what each head predicts: a number's scale, a label's classes
    features: FeatureSet
    metrics: dict[str, Any] = field(default_factory=dict)
    lineage: dict[str, Any] = field(default_factory=dict)
    reference: dict[str, Any] = field(default_factory=dict)  # profiles of the training window (JSON)
    exported: ExportedNetwork | None = None  # the network as an ONNX graph, checked against PyTorch
    backend_name: str = DEFAULT_BACKEND

    @property
    def contract(self) -> Contract:
        return self.features.contract

    @property
    def targets(self) -> list[str]:
        return list(self.heads.names)

    @cached_property
    def network(self) -> Backend:
        """The network as the scoring backend runs it, built once."""
        graph = None if self.exported is None else self.exported.graph
        try:
            return resolve_backend(chosen_backend(self.backend_name, graph is not None))(self.spec, self.weights, graph)
        except KeyError as exc:
            raise ModelPackageError(f"the package's weights lack the parameter {exc} its network needs") from exc

    def predict(self, data: Any) -> pl.DataFrame:
        """Predictions (one column per target) for raw rows as the contract describes them.

        Raises ModelPackageError naming the rows and rules when the input breaks the contract.
        """
        result = self.check(data)
        if not result.ok:
            raise ModelPackageError("input refused: " + "; ".join(str(p) for p in result.problems))
        if result.rejected.height:
            shown = result.rejected.head(ERROR_ROWS_SHOWN).select("_row", "_rules").rows()
            detail = "; ".join(f"row {row}: {', '.join(rules)}" for row, rules in shown)
            raise ModelPackageError(f"{result.rejected.height} input row(s) break the data contract: {detail}")
        return self.predict_valid(result.valid)

    def check(self, data: Any) -> CheckResult[pl.DataFrame]:
        """Raw rows checked against the contract as rows to score (their targets may be missing)."""
        return self._checker.check(to_polars(data))

    def predict_valid(self, rows: pl.DataFrame) -> pl.DataFrame:
        """Predictions for rows already typed and checked against the contract: a number per
        regression target, the class and its probabilities per label (:meth:`Targets.decode`)."""
        return self.heads.decode(self.predict_raw(rows))

    def predict_raw(self, rows: pl.DataFrame) -> np.ndarray:
        """The network's outputs for typed rows: scaled numbers and logits, heads side by side."""
        return self.network_outputs(self.features.apply(rows))

    def predict_featured(self, featured: pl.DataFrame, inputs: NumericInputs | None = None) -> pl.DataFrame:
        """Predictions for typed rows whose features are computed already (``features.apply``);
        ``inputs``: their numeric columns as read already (:meth:`read_inputs`, perhaps by another
        version: a rollout's arms read a batch once)."""
        return self.heads.decode(self.network_outputs(featured, inputs))

    def warm(self) -> None:
        """Build the network's session and run it once on a row of zeros: the first request a
        version answers (a swapped-in champion's, a canary's) must not pay for either."""
        numbers = np.zeros((1, len(self.preprocessor.numeric_names)), np.float32)
        self.network(numbers, np.zeros((1, len(self.preprocessor.categorical)), np.int64))

    def read_inputs(self, featured: pl.DataFrame) -> NumericInputs | None:
        """The numeric input columns of ``featured``, read once for every version that reads them."""
        return self.preprocessor.read(featured)

    def network_outputs(self, featured: pl.DataFrame, inputs: NumericInputs | None = None) -> np.ndarray:
        """The network's outputs for rows with their features: preprocessed, then scored."""
        numbers, categories = self.preprocessor.transform(featured, inputs)
        return self.network(numbers, categories)

    def interface(self) -> dict[str, Any]:
        """What the model takes and gives, as JSON: the contract its rows follow and its heads."""
        return {
            "kind": TABLE_KIND,
            "contract": self.contract.model_dump(mode="json", exclude_none=True),
            # Names and classes, not the scaling: that is the weights' business, and changes each retrain.
            "targets": {"names": self.heads.names, "classes": self.heads.classes},
        }

    @cached_property
    def _checker(self) -> RowChecker:
        return RowChecker(_scoring_contract(self.contract))

    def save(self, folder: Path) -> Path:
        """Write the package into ``folder`` (created); returns it."""
        manifest = {
            "format_version": FORMAT_VERSION,
            "network": self.spec.to_dict(),
            "preprocessor": self.preprocessor.to_dict(),
            "targets": self.heads.to_dict(),
            "features": json.loads(self.features.to_json()),
            "contract": self.contract.model_dump(mode="json", exclude_none=True),
            "metrics": self.metrics,
            "lineage": self.lineage,
            "reference": self.reference,
        }
        return write_package(folder, self.weights, manifest, self.exported)

    @classmethod
    def load(cls, folder: str | Path, *, backend: str = DEFAULT_BACKEND) -> ModelPackage:
        """Read a package written by :meth:`save`, to score with ``backend``."""
        path = Path(folder)
        try:
            manifest = read_manifest(path, TABLE_KIND, FORMAT_VERSION)
            contract = Contract.model_validate(manifest["contract"])
            spec = NetworkSpec.from_dict(manifest["network"])
            weights = load_file(str(path / WEIGHTS))
            exported = ExportedNetwork.load(path, manifest.get(ONNX))
        except (OSError, ValueError, KeyError, TypeError, SafetensorError) as exc:
            raise ModelPackageError(f"cannot read the model package at {path}: {exc}") from exc
        package = cls(
            spec,
            weights,
            Preprocessor.from_dict(manifest["preprocessor"]),
            Targets.from_dict(manifest["targets"]),
            FeatureSet.from_json(json.dumps(manifest["features"]), contract),
            manifest.get("metrics", {}),
            manifest.get("lineage", {}),
            manifest.get("reference", {}),
            exported,
            backend,
        )
        _ = package.network  # a package whose weights do not fit its network fails here, not at a request
        return package


def write_package(
    folder: Path, weights: dict[str, np.ndarray], manifest: dict[str, Any], exported: ExportedNetwork | None
) -> Path:
    """Write a package's weights, exported network and manifest into ``folder`` (created); returns it."""
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: np.ascontiguousarray(v) for k, v in weights.items()}, str(folder / WEIGHTS))
    if exported is not None:
        manifest = {**manifest, ONNX: exported.save(folder)}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str), encoding="utf-8")
    return folder


def read_manifest(path: Path, kind: str, version: int) -> dict[str, Any]:
    """The manifest of the package in ``path``, if it is of ``kind`` (a package that does not say
    is a table's) and of format ``version``; a ModelPackageError saying which otherwise."""
    manifest: dict[str, Any] = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    found = manifest.get("kind", TABLE_KIND)
    if found != kind:
        raise ModelPackageError(f"{path} holds a package of kind {found!r}, not {kind!r}")
    if manifest.get("format_version") != version:
        raise ModelPackageError(
            f"{path} holds package format {manifest.get('format_version')}, this driftloop reads {version}; "
            "load it with the driftloop version that wrote it"
        )
    return manifest


def _scoring_contract(contract: Contract) -> Contract:
    """The contract for rows to score: their targets are unknown yet, so not required, and a
    label a caller sends along is not checked (the model does not read it)."""
    scoring = {"required": False, "nullable": True, "classes": None}
    columns = {
        name: column.model_copy(update=scoring) if name in contract.targets else column
        for name, column in contract.columns.items()
    }
    return contract.model_copy(update={"columns": columns})
