"""Scoring backends, one module each, behind :class:`~driftloop.runtime.backends.base.Backend`:
``onnx`` (the exported graph in ONNX Runtime) and ``torch`` (the folded PyTorch network). A
backend is chosen by name and resolved in one function, its module imported only then (an edge
device has no torch). ``auto``, the default, is ONNX Runtime where the package holds a graph
and ONNX Runtime is installed (the faster path, measured in ``benchmarks/bench_edge.py``),
else the folded network.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

from driftloop.errors import ModelPackageError
from driftloop.runtime.backends.base import Backend, BackendLoader, ImageBackend, ImageBackendLoader

# Backend name -> the module and class that build it, for tables and for images.
BACKENDS: dict[str, tuple[str, str]] = {
    "onnx": ("driftloop.runtime.backends.onnx", "OnnxTable"),
    "torch": ("driftloop.runtime.backends.torch", "FoldedTorch"),
}
IMAGE_BACKENDS: dict[str, tuple[str, str]] = {
    "onnx": ("driftloop.runtime.backends.onnx", "OnnxConv"),
    "torch": ("driftloop.runtime.backends.torch", "FoldedConv"),
}
AUTO = "auto"
DEFAULT_BACKEND = AUTO


def chosen_backend(name: str, has_graph: bool) -> str:
    """The backend ``name`` stands for: itself, or for ``auto`` ONNX Runtime when the package
    has a graph and ONNX Runtime is installed, else PyTorch."""
    if name != AUTO:
        return name
    return "onnx" if has_graph and importlib.util.find_spec("onnxruntime") is not None else "torch"


def resolve_backend(name: str) -> BackendLoader:
    """The loader of backend ``name``; a ModelPackageError naming the known ones otherwise."""
    loader: BackendLoader = _loader(BACKENDS, name, "scoring backend")
    return loader


def resolve_image_backend(name: str) -> ImageBackendLoader:
    """The loader of image backend ``name``; a ModelPackageError naming the known ones otherwise."""
    loader: ImageBackendLoader = _loader(IMAGE_BACKENDS, name, "image scoring backend")
    return loader


def _loader(known: dict[str, tuple[str, str]], name: str, what: str) -> Any:
    if name not in known:
        raise ModelPackageError(f"no {what} named {name!r}; the backends are {sorted([AUTO, *known])}")
    module, attribute = known[name]
    return getattr(importlib.import_module(module), attribute)


__all__ = [
    "AUTO",
    "BACKENDS",
    "DEFAULT_BACKEND",
    "IMAGE_BACKENDS",
    "Backend",
    "BackendLoader",
    "ImageBackend",
    "ImageBackendLoader",
    "chosen_backend",
    "resolve_backend",
    "resolve_image_backend",
]
