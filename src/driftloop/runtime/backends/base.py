"""What a scoring backend is: the network's function, rebuilt from a package's spec and weights.

A backend takes the preprocessed inputs (standardised numbers, category indices) and gives the
scaled outputs, one column per target; the package around it does the contract check, features,
preprocessing and unscaling, the same for every backend. A backend is immutable once built, so
threads may score with it at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

import numpy as np

from driftloop.runtime.image_spec import ConvSpec
from driftloop.runtime.spec import NetworkSpec


class Backend(Protocol):
    """A network ready to score: ``(numbers float32, categories int64) -> scaled outputs float32``."""

    name: str

    def __call__(self, numbers: np.ndarray, categories: np.ndarray) -> np.ndarray: ...


class BackendLoader(Protocol):
    """Builds a backend from a network's spec and weights (parameter name -> array), or from its
    exported ONNX graph (None when the package has none)."""

    def __call__(self, spec: NetworkSpec, weights: Mapping[str, np.ndarray], graph: bytes | None = None) -> Backend: ...


class ImageBackend(Protocol):
    """An image network ready to score: standardised images (N, C, H, W float32) -> (logits, embeddings)."""

    name: str

    def __call__(self, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


class ImageBackendLoader(Protocol):
    """Builds an image backend from a network's spec and weights, or from its ONNX graph."""

    def __call__(
        self, spec: ConvSpec, weights: Mapping[str, np.ndarray], graph: bytes | None = None
    ) -> ImageBackend: ...
