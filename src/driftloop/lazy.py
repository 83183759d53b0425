"""Names a package exports but imports on first use (PEP 562), so that importing the package
does not import what those names need (Delta, MLflow, PyTorch) until someone asks for them."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping


def lazy_names(package: str, where: Mapping[str, str]) -> Callable[[str], object]:
    """A module ``__getattr__`` for ``package`` that imports each name of ``where`` (name ->
    module) when it is first looked up, and keeps it as a plain attribute from then on."""

    def attribute(name: str) -> object:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(where[name]), name)
        vars(sys.modules[package])[name] = value  # found once: the next lookup is a plain attribute
        return value

    return attribute


__all__ = ["lazy_names"]
