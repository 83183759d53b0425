"""Every kind of model package, and reading a package whatever its kind.

A package's manifest says its kind (a table's says nothing, as before images); a new network
kind is one entry here, with its own package class beside the others. A kind's class is imported
when a package of that kind is read: a table model's device never loads the image libraries.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

from driftloop.errors import ModelPackageError
from driftloop.runtime.backends import DEFAULT_BACKEND
from driftloop.runtime.package import IMAGE_KIND, MANIFEST, TABLE_KIND, ModelPackage

if TYPE_CHECKING:
    from driftloop.runtime.image_package import ImagePackage

AnyPackage: TypeAlias = "ModelPackage | ImagePackage"

# A kind -> the module and class that read its packages.
KINDS: dict[str, tuple[str, str]] = {
    TABLE_KIND: ("driftloop.runtime.package", "ModelPackage"),
    IMAGE_KIND: ("driftloop.runtime.image_package", "ImagePackage"),
}


def package_kind(folder: str | Path) -> str:
    """The kind the package in ``folder`` says it is; a ModelPackageError when it cannot be read."""
    path = Path(folder) / MANIFEST
    try:
        kind = json.loads(path.read_text(encoding="utf-8")).get("kind", TABLE_KIND)
    except (OSError, ValueError, AttributeError) as exc:
        raise ModelPackageError(f"cannot read the package manifest {path}: {exc}") from exc
    if kind not in KINDS:
        raise ModelPackageError(f"{path} holds a package of kind {kind!r}; this driftloop reads {sorted(KINDS)}")
    return str(kind)


def load_package(folder: str | Path, *, backend: str = DEFAULT_BACKEND) -> AnyPackage:
    """The package in ``folder``, read by the class of its kind, to score with ``backend``."""
    module, name = KINDS[package_kind(folder)]
    kind: type[ModelPackage] | type[ImagePackage] = getattr(importlib.import_module(module), name)
    return kind.load(folder, backend=backend)


def targets_of(package: AnyPackage) -> dict[str, list[str] | None]:
    """What ``package`` predicts: each target, with its classes (None for a number)."""
    if isinstance(package, ModelPackage):
        return {t: package.heads.classes.get(t) for t in package.heads.names}
    return {package.target: list(package.classes)}


def table_package(package: AnyPackage, what: str) -> ModelPackage:
    """``package`` as a table's; a ModelPackageError naming ``what`` when it is another kind."""
    if isinstance(package, ModelPackage):
        return package
    raise ModelPackageError(f"{what} is an image model; this step scores tables (rows of a contract's columns)")


def image_package(package: AnyPackage, what: str) -> ImagePackage:
    """``package`` as an image network's; a ModelPackageError naming ``what`` when it is another kind."""
    if not isinstance(package, ModelPackage):
        return package
    raise ModelPackageError(f"{what} is a table model; this step scores images")
