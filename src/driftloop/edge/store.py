"""The device's folder: the versions it has verified and opened, which one serves, and its log.

Layout::

    DIR/versions/<version>/   a bundle's package, written only after its signature and checksums held
    DIR/serving               the version that serves (replaced whole, by rename: never half-written)
    DIR/predictions.sqlite    every answered prediction (:mod:`driftloop.edge.logbook`)

A version is opened into a temporary folder beside the others and renamed into place, so a
crash mid-way leaves either no folder for it or a whole one.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from driftloop.errors import BundleError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

VERSIONS = "versions"
SERVING = "serving"
LOG = "predictions.sqlite"
# A version being opened, before it is renamed into place.
STAGING = ".incoming-"
# The manifest each opened version keeps beside its package, to say what it is without the bundle.
MANIFEST = "bundle.json"


class DeviceStore:
    """One device's folder of versions and the pointer to the one serving."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        (folder / VERSIONS).mkdir(parents=True, exist_ok=True)

    @property
    def log_path(self) -> Path:
        return self.folder / LOG

    def install(self, bundle: Path, trusted: Ed25519PublicKey) -> str:
        """Verify ``bundle`` against ``trusted`` and open it as a version of this device (kept as
        it is when that version is here already); returns the version. Nothing is written for a
        bundle that fails its checks."""
        # Here, not at the top: a device's server only reads versions installed already, and never
        # loads the signature library (its memory is the device's).
        from driftloop.runtime.bundle import open_bundle

        self._sweep()
        staging = self.folder / VERSIONS / f"{STAGING}{uuid.uuid4().hex}"
        try:
            opened = open_bundle(bundle, trusted, staging)
            (staging / MANIFEST).write_text(json.dumps(opened.manifest, indent=2), encoding="utf-8")
            target = self.folder / VERSIONS / opened.version
            if not target.exists():
                staging.rename(target)  # whole or absent: a rename on one file system
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return opened.version

    def versions(self) -> list[str]:
        """The versions opened on this device."""
        return sorted(p.name for p in (self.folder / VERSIONS).iterdir() if p.is_dir() and not p.name.startswith("."))

    def manifest(self, version: str) -> dict[str, Any]:
        """The signed manifest version ``version`` came with."""
        manifest: dict[str, Any] = json.loads((self.package(version) / MANIFEST).read_text(encoding="utf-8"))
        return manifest

    def verified(self, version: str) -> Path:
        """The package folder of ``version``, its files checked again against the signed
        manifest's checksums (a disk that lost or changed a byte since, a power cut during a
        write); a BundleError naming the file otherwise."""
        folder = self.package(version)
        for name, expected in self.manifest(version)["files"].items():
            path = folder / name
            if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != expected["sha256"]:
                raise BundleError(f"version {version} is damaged on this device: {path} no longer matches its checksum")
        return folder

    def package(self, version: str) -> Path:
        """The package folder of ``version``; a BundleError when the device does not hold it."""
        folder = self.folder / VERSIONS / version
        if not folder.is_dir():
            raise BundleError(f"this device holds no version {version!r} (it holds {self.versions()})")
        return folder

    def discard(self, version: str) -> None:
        """Remove ``version`` from the device (never the one serving)."""
        if version == self.serving():
            raise BundleError(f"version {version} serves on this device: point the device at another first")
        shutil.rmtree(self.package(version))

    def serving(self) -> str | None:
        """The version that serves (None before one was chosen)."""
        pointer = self.folder / SERVING
        if not pointer.exists():
            return None
        return pointer.read_text(encoding="utf-8").strip() or None

    def serve(self, version: str) -> None:
        """Make ``version`` (held here) the one that serves: the pointer is replaced by a rename."""
        self.package(version)
        self._sweep()
        partial = self.folder / f"{SERVING}.{uuid.uuid4().hex}"
        with partial.open("w", encoding="utf-8") as handle:
            handle.write(version)
            handle.flush()
            os.fsync(handle.fileno())  # on disk before it is named: a power cut leaves the old pointer or this
        partial.replace(self.folder / SERVING)

    def _sweep(self) -> None:
        """Remove what a writer killed mid-way left (a half-opened version, a pointer never
        renamed): one writer (the agent, or ``edge serve`` at its start) works on a store at a time."""
        for stale in (self.folder / VERSIONS).glob(f"{STAGING}*"):
            shutil.rmtree(stale, ignore_errors=True)
        for stale in self.folder.glob(f"{SERVING}.*"):
            stale.unlink(missing_ok=True)


__all__ = ["LOG", "DeviceStore"]
