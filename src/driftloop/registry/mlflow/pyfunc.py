"""The MLflow pyfunc flavour of a model package: ``mlflow.pyfunc.load_model(uri)`` gives an object
whose ``predict`` runs :meth:`~driftloop.runtime.package.ModelPackage.predict` on pandas frames.
This module is the flavour's ``loader_module``; it imports nothing of MLflow and loads no pickle.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from driftloop.runtime.package import ModelPackage


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
