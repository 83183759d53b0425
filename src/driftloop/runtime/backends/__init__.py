"""Scoring backends, one module each, behind :class:`~driftloop.runtime.backends.base.Backend`:
``torch`` (the folded PyTorch network) now; ONNX Runtime is the next. A backend is chosen by
name and resolved in one function, its module imported only then (an edge device has no torch).
"""

from __future__ import annotations

import importlib

from driftloop.errors import ModelPackageError
from driftloop.runtime.backends.base import Backend, BackendLoader, ImageBackend, ImageBackendLoader

# Backend name -> the module and class that build it, for tables and for images.
BACKENDS: dict[str, tuple[str, str]] = {"torch": ("driftloop.runtime.backends.torch", "FoldedTorch")}
IMAGE_BACKENDS: dict[str, tuple[str, str]] = {"torch": ("driftloop.runtime.backends.torch", "FoldedConv")}
DEFAULT_BACKEND = "torch"


def resolve_backend(name: str) -> BackendLoader:
    """The loader of backend ``name``; a ModelPackageError naming the known ones otherwise."""
    if name not in BACKENDS:
        raise ModelPackageError(f"no scoring backend named {name!r}; the backends are {sorted(BACKENDS)}")
    module, attribute = BACKENDS[name]
    loader: BackendLoader = getattr(importlib.import_module(module), attribute)
    return loader


def resolve_image_backend(name: str) -> ImageBackendLoader:
    """The loader of image backend ``name``; a ModelPackageError naming the known ones otherwise."""
    if name not in IMAGE_BACKENDS:
        raise ModelPackageError(f"no image scoring backend named {name!r}; the backends are {sorted(IMAGE_BACKENDS)}")
    module, attribute = IMAGE_BACKENDS[name]
    loader: ImageBackendLoader = getattr(importlib.import_module(module), attribute)
    return loader


__all__ = [
    "BACKENDS",
    "DEFAULT_BACKEND",
    "IMAGE_BACKENDS",
    "Backend",
    "BackendLoader",
    "ImageBackend",
    "ImageBackendLoader",
    "resolve_backend",
    "resolve_image_backend",
]
