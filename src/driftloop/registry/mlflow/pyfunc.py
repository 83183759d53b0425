"""The MLflow pyfunc flavour of a model package: ``mlflow.pyfunc.load_model(uri)`` gives an object
whose ``predict`` scores pandas frames with the package, whatever its kind. This module is the
flavour's ``loader_module``; it imports nothing of MLflow and loads no pickle.

A table package takes the contract's columns. An image package takes a frame with one column,
``image``, of image files' bytes (one image a row), and gives the class and each class's
probability a row, as MLflow's own image examples do.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from driftloop.errors import ModelPackageError
from driftloop.runtime.image_package import ImagePackage
from driftloop.runtime.kinds import AnyPackage, load_package
from driftloop.runtime.package import ModelPackage

# The column of an image model's input frame that holds the files' bytes.
IMAGE_INPUT = "image"


class PyfuncModel:
    """What ``mlflow.pyfunc.load_model`` returns the inside of: pandas in, pandas out."""

    def __init__(self, package: AnyPackage) -> None:
        self.package = package

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> pd.DataFrame:
        if isinstance(self.package, ModelPackage):
            return self.package.predict(model_input).to_pandas()
        return image_frame_predictions(self.package, model_input)

    def get_raw_model(self) -> AnyPackage:
        """What ``PyFuncModel.get_raw_model()`` hands back: the package itself."""
        return self.package


def image_frame_predictions(package: ImagePackage, frame: Any) -> pd.DataFrame:
    """An image package's predictions for a frame whose ``image`` column holds files' bytes."""
    if not isinstance(frame, pd.DataFrame) or IMAGE_INPUT not in frame.columns:
        columns = f" with columns {list(frame.columns)}" if isinstance(frame, pd.DataFrame) else ""
        raise ModelPackageError(
            f"an image model takes a frame with a column {IMAGE_INPUT!r} of image files' bytes, "
            f"not a {type(frame).__name__}{columns}"
        )
    files = frame[IMAGE_INPUT].tolist()
    bad = [i for i, f in enumerate(files) if not isinstance(f, bytes | bytearray)]
    if bad:
        raise ModelPackageError(f"rows {bad[:5]} of column {IMAGE_INPUT!r} are not bytes: send each image file's bytes")
    return package.predict([bytes(f) for f in files]).frame().to_pandas()


def _load_pyfunc(data_path: str) -> PyfuncModel:
    """MLflow's entry point for the pyfunc flavor (``loader_module``): no pickle involved."""
    return PyfuncModel(load_package(data_path))
