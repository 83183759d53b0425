"""What a device answers images with: the version its store names, loaded and checked on its
golden pairs before it replaces the one serving (the image twin of :mod:`driftloop.edge.deployments`,
apart so a table model's device never loads the image libraries).
"""

from __future__ import annotations

import logging

from driftloop.edge.golden import golden_check
from driftloop.edge.store import DeviceStore
from driftloop.runtime.kinds import image_package, load_package
from driftloop.serve.image_scoring import ImageFollowing, ServedImageModel

logger = logging.getLogger("driftloop.edge")


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


__all__ = ["DeviceImageModel"]
