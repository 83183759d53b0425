"""The model package: everything a prediction needs, loadable without pickle.

A folder with ``weights.safetensors`` (the network's tensors) and ``package.json`` (network
shape, preprocessing state, target scaling, feature definitions, data contract, metrics,
lineage and the reference profiles of the training window, for drift monitoring). The same
folder is the data of an MLflow pyfunc model whose loader is this module (``_load_pyfunc``),
so ``mlflow.pyfunc.load_model(uri).predict(frame)`` runs the exact code path of
:meth:`ModelPackage.predict`: contract check, features, preprocessing, network.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd
import polars as pl
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from driftloop.data.contract import Contract
from driftloop.data.sources import to_polars
from driftloop.data.validate import CheckResult, RowChecker
from driftloop.errors import ModelPackageError
from driftloop.features import FeatureSet
from driftloop.model.network import FoldedNet, NetworkSpec, TabularNet
from driftloop.model.train import predict_scaled
from driftloop.preprocess import Preprocessor, TargetScaler

FORMAT_VERSION = 1
WEIGHTS = "weights.safetensors"
MANIFEST = "package.json"
# Rows of a prediction request listed in an error about invalid input.
ERROR_ROWS_SHOWN = 5


@dataclass
class ModelPackage:
    """A trained model with its preprocessing, features and contract."""

    network: TabularNet
    preprocessor: Preprocessor
    scaler: TargetScaler
    features: FeatureSet
    metrics: dict[str, Any] = field(default_factory=dict)
    lineage: dict[str, Any] = field(default_factory=dict)
    reference: dict[str, Any] = field(default_factory=dict)  # profiles of the training window (JSON)

    @property
    def contract(self) -> Contract:
        return self.features.contract

    @property
    def targets(self) -> list[str]:
        return list(self.scaler.mean)

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

    def check(self, data: Any) -> CheckResult:
        """Raw rows checked against the contract as rows to score (their targets may be missing)."""
        return self._checker.check(to_polars(data))

    @cached_property
    def scorer(self) -> FoldedNet:
        """The network folded for scoring, built once (see :class:`FoldedNet`)."""
        return self.network.folded()

    @cached_property
    def _checker(self) -> RowChecker:
        return RowChecker(_scoring_contract(self.contract))

    def predict_valid(self, rows: pl.DataFrame) -> pl.DataFrame:
        """Predictions for rows already typed and checked against the contract."""
        numbers, categories = self.preprocessor.transform(self.features.apply(rows))
        outputs = self.scaler.unscale(predict_scaled(self.scorer, numbers, categories))
        return pl.DataFrame({t: outputs[:, i] for i, t in enumerate(self.targets)})

    def save(self, folder: Path) -> Path:
        """Write the package into ``folder`` (created); returns it."""
        folder.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in self.network.state_dict().items()}, str(folder / WEIGHTS))
        manifest = {
            "format_version": FORMAT_VERSION,
            "network": self.network.spec.to_dict(),
            "preprocessor": self.preprocessor.to_dict(),
            "targets": self.scaler.to_dict(),
            "features": json.loads(self.features.to_json()),
            "contract": self.contract.model_dump(mode="json", exclude_none=True),
            "metrics": self.metrics,
            "lineage": self.lineage,
            "reference": self.reference,
        }
        (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str), encoding="utf-8")
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> ModelPackage:
        """Read a package written by :meth:`save`; only JSON and safetensors are read."""
        path = Path(folder)
        try:
            manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
            if manifest.get("format_version") != FORMAT_VERSION:
                raise ModelPackageError(
                    f"{path} holds package format {manifest.get('format_version')}, this driftloop reads "
                    f"{FORMAT_VERSION}; load it with the driftloop version that wrote it"
                )
            contract = Contract.model_validate(manifest["contract"])
            network = TabularNet(NetworkSpec.from_dict(manifest["network"]))
            network.load_state_dict(load_file(str(path / WEIGHTS)))
        except (OSError, ValueError, KeyError, RuntimeError, SafetensorError) as exc:
            raise ModelPackageError(f"cannot read the model package at {path}: {exc}") from exc
        network.eval()
        return cls(
            network,
            Preprocessor.from_dict(manifest["preprocessor"]),
            TargetScaler.from_dict(manifest["targets"]),
            FeatureSet.from_json(json.dumps(manifest["features"]), contract),
            manifest.get("metrics", {}),
            manifest.get("lineage", {}),
            manifest.get("reference", {}),
        )


def _scoring_contract(contract: Contract) -> Contract:
    """The contract for rows to score: their targets are unknown yet, so not required."""
    columns = {
        name: column.model_copy(update={"required": False, "nullable": True}) if name in contract.targets else column
        for name, column in contract.columns.items()
    }
    return contract.model_copy(update={"columns": columns})


class PyfuncModel:
    """What ``mlflow.pyfunc.load_model`` returns the inside of: pandas in, pandas out."""

    def __init__(self, package: ModelPackage) -> None:
        self.package = package

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> pd.DataFrame:
        return self.package.predict(model_input).to_pandas()

    def get_raw_model(self) -> ModelPackage:
        """What ``PyFuncModel.get_raw_model()`` hands back: the package itself."""
        return self.package


def _load_pyfunc(data_path: str) -> PyfuncModel:
    """MLflow's entry point for the pyfunc flavor (``loader_module``): no pickle involved."""
    return PyfuncModel(ModelPackage.load(data_path))
