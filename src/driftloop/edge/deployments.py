"""What a device answers rows with: the version its store names, loaded and checked before it serves.

:meth:`DeviceDeployments.refresh` reads the store's pointer; a version it has not loaded yet is
loaded beside the one serving (ONNX Runtime on the bundle's graph), must reproduce its golden
pairs, and only then replaces it, in one assignment, so no request meets a half-loaded model. A
version that fails is refused and the old one goes on serving.
"""

from __future__ import annotations

import logging

from driftloop.edge.golden import golden_check
from driftloop.edge.store import DeviceStore
from driftloop.runtime.package import ModelPackage
from driftloop.serve.deployments import Following, Live
from driftloop.serve.deployments.base import Deployment
from driftloop.serve.deployments.champion import Champion
from driftloop.serve.loaded import LoadedModel

logger = logging.getLogger("driftloop.edge")


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


__all__ = ["DeviceDeployments"]
