"""What a device answers with: the version its store names, loaded and checked before it serves.

:meth:`DeviceDeployments.refresh` reads the store's pointer; a version it has not loaded yet is
loaded beside the one serving (ONNX Runtime on the bundle's graph), must reproduce its golden
pairs, and only then replaces it, in one assignment, so no request meets a half-loaded model. A
version that fails is refused and the old one goes on serving.
"""

from __future__ import annotations

import logging

import numpy as np

from driftloop.edge.store import DeviceStore
from driftloop.errors import BundleError
from driftloop.runtime.backends.onnx import IMAGE_OUTPUTS
from driftloop.runtime.image_package import ImagePackage
from driftloop.runtime.kinds import AnyPackage, image_package, load_package
from driftloop.runtime.package import ModelPackage
from driftloop.serve.deployments import Following, Live
from driftloop.serve.deployments.base import Deployment
from driftloop.serve.deployments.champion import Champion
from driftloop.serve.image_scoring import ImageFollowing, ServedImageModel
from driftloop.serve.loaded import LoadedModel

logger = logging.getLogger("driftloop.edge")
# How far a device's outputs may be from the golden ones (relative to 1 + |golden|): the graph
# and ONNX Runtime are the ones the golden pairs were made with, so only rounding separates them.
GOLDEN_TOLERANCE = 1e-4


class DeviceDeployments(Following):
    """The champion of a device: the version its store says, answering every request."""

    source = "the device's store"

    def __init__(self, store: DeviceStore, model_name: str) -> None:
        super().__init__()
        self.store = store
        self.model_name = model_name

    def refresh(self) -> bool:
        """Load the version the store names if it is not the one serving; True when it changed."""
        with self._lock:
            wanted = self.store.serving()
            answering = self.live.answering
            if wanted is None or (answering is not None and answering.model.version == wanted):
                return False
            package = ModelPackage.load(self.store.verified(wanted))
            golden_check(package, wanted)
            self.live = Live((Deployment(Champion(), LoadedModel(self.model_name, wanted, "", package)),))
            self.swaps += 1
            logger.warning("serving version %s of %s", wanted, self.model_name)
            return True


class DeviceImageModel(ImageFollowing):
    """The image model of a device: the version its store names, checked on its golden pairs
    before it replaces the one serving."""

    source = "the device's store"

    def __init__(self, store: DeviceStore, model_name: str) -> None:
        super().__init__()
        self.store = store
        self.model_name = model_name

    def wanted(self) -> str | None:
        return self.store.serving()

    def load(self, version: str) -> ServedImageModel:
        package = image_package(load_package(self.store.verified(version)), f"version {version} on this device")
        golden_check(package, version)
        logger.warning("serving version %s of %s", version, self.model_name)
        return ServedImageModel(self.model_name, version, "", package)


def golden_check(package: AnyPackage, version: str) -> None:
    """Run the package's golden inputs through its network as loaded here; a BundleError with the
    numbers when an output strays from its golden value (a runtime that computes differently)."""
    exported = package.exported
    golden = exported.golden if exported is not None else {}
    if isinstance(package, ImagePackage):
        wanted = [f"expected_{name}" for name in IMAGE_OUTPUTS]
        found = dict(zip(wanted, package.network(golden["pixels"]), strict=True)) if "pixels" in golden else {}
    else:
        wanted = ["expected_outputs"]
        has_inputs = "numbers" in golden and "categories" in golden
        found = {wanted[0]: package.network(golden["numbers"], golden["categories"])} if has_inputs else {}
    if not found or any(name not in golden for name in wanted):
        raise BundleError(f"version {version} carries no golden pairs to check it against: it cannot serve here")
    worst = max(_gap(found[name], golden[name]) for name in wanted)
    if not worst <= GOLDEN_TOLERANCE:
        raise BundleError(
            f"version {version} does not reproduce its golden outputs here: largest difference "
            f"{worst:.3g} (tolerance {GOLDEN_TOLERANCE:g}); it stays out of service"
        )


def _gap(found: np.ndarray, expected: np.ndarray) -> float:
    """The largest difference relative to 1 + |expected|; infinite for another shape or a NaN."""
    if found.shape != expected.shape:
        return float("inf")
    gap = np.abs(found - expected) / (1.0 + np.abs(expected))
    return float(gap.max(initial=0.0)) if np.all(np.isfinite(gap)) else float("inf")


__all__ = ["DeviceDeployments", "DeviceImageModel", "golden_check"]
