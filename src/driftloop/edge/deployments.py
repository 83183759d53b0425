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
from driftloop.runtime.package import ModelPackage
from driftloop.serve.deployments import Following, Live
from driftloop.serve.deployments.base import Deployment
from driftloop.serve.deployments.champion import Champion
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


def golden_check(package: ModelPackage, version: str) -> None:
    """Run the package's golden inputs through its network as loaded here; a BundleError with the
    numbers when an output strays from its golden value (a runtime that computes differently)."""
    exported = package.exported
    if exported is None or "expected_outputs" not in exported.golden:
        raise BundleError(f"version {version} carries no golden pairs to check it against: it cannot serve here")
    golden = exported.golden
    found = package.network(golden["numbers"], golden["categories"])
    expected = golden["expected_outputs"]
    gap = np.abs(found - expected) / (1.0 + np.abs(expected)) if found.shape == expected.shape else np.array([np.inf])
    if not np.all(np.isfinite(gap)) or float(gap.max(initial=0.0)) > GOLDEN_TOLERANCE:
        raise BundleError(
            f"version {version} does not reproduce its golden outputs here: largest difference "
            f"{float(np.nanmax(gap)):.3g} (tolerance {GOLDEN_TOLERANCE:g}); it stays out of service"
        )


__all__ = ["DeviceDeployments", "golden_check"]
