"""Every kind of model package, and reading a package whatever its kind.

A package's manifest says its kind (a table's says nothing, as before images); a new network
kind is one entry here, with its own package class beside the others.
"""

from __future__ import annotations

import json
from pathlib import Path

from driftloop.errors import ModelPackageError
from driftloop.runtime.backends import DEFAULT_BACKEND
from driftloop.runtime.image_package import KIND as IMAGE_KIND
from driftloop.runtime.image_package import ImagePackage
from driftloop.runtime.package import MANIFEST, TABLE_KIND, ModelPackage

AnyPackage = ModelPackage | ImagePackage

KINDS: dict[str, type[ModelPackage] | type[ImagePackage]] = {TABLE_KIND: ModelPackage, IMAGE_KIND: ImagePackage}


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
    return KINDS[package_kind(folder)].load(folder, backend=backend)


def targets_of(package: AnyPackage) -> dict[str, list[str] | None]:
    """What ``package`` predicts: each target, with its classes (None for a number)."""
    if isinstance(package, ImagePackage):
        return {package.target: list(package.classes)}
    return {t: package.heads.classes.get(t) for t in package.heads.names}


def table_package(package: AnyPackage, what: str) -> ModelPackage:
    """``package`` as a table's; a ModelPackageError naming ``what`` when it is another kind."""
    if isinstance(package, ModelPackage):
        return package
    raise ModelPackageError(f"{what} is an image model; this step scores tables (rows of a contract's columns)")


def image_package(package: AnyPackage, what: str) -> ImagePackage:
    """``package`` as an image network's; a ModelPackageError naming ``what`` when it is another kind."""
    if isinstance(package, ImagePackage):
        return package
    raise ModelPackageError(f"{what} is a table model; this step scores images")
