"""Scoring backends, one module each, behind :class:`~driftloop.runtime.backends.base.Backend`:
``torch`` (the folded PyTorch network) now; ONNX Runtime is the next. A backend is chosen by
name and resolved in one function, its module imported only then (an edge device has no torch).
"""

from __future__ import annotations

import importlib
from typing import Any

from driftloop.errors import ModelPackageError
from driftloop.runtime.backends.base import Backend, BackendLoader, ImageBackend, ImageBackendLoader

# Backend name -> the module and class that build it, for tables and for images.
BACKENDS: dict[str, tuple[str, str]] = {"torch": ("driftloop.runtime.backends.torch", "FoldedTorch")}
IMAGE_BACKENDS: dict[str, tuple[str, str]] = {"torch": ("driftloop.runtime.backends.torch", "FoldedConv")}
DEFAULT_BACKEND = "torch"


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
        raise ModelPackageError(f"no {what} named {name!r}; the backends are {sorted(known)}")
    module, attribute = known[name]
    return getattr(importlib.import_module(module), attribute)


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
