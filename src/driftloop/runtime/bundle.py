"""The bundle: one signed file that carries a model version to a device with no registry, no
lake and no PyTorch.

A zip holding the model package under ``package/`` (the ONNX graph and its golden pairs, the
contract, feature definitions, preprocessing, reference profiles, weights), a manifest
``bundle.json`` (the model, version and kind, a SHA-256 and size per file, the fingerprint of the
signing key, a hash of the model's interface, the ONNX opset) and ``bundle.sig``, the Ed25519
signature of the manifest's bytes. :func:`open_bundle` trusts nothing before the signature
checks against the device's public key, then every file against its checksum, and only then
writes the package out; each refusal names what failed.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import zipfile
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from driftloop.about import VERSION
from driftloop.errors import BundleError
from driftloop.runtime.exported import OPSET
from driftloop.runtime.kinds import AnyPackage
from driftloop.runtime.signing import fingerprint, signs

BUNDLE_FORMAT = 1
MANIFEST = "bundle.json"
SIGNATURE = "bundle.sig"
PACKAGE = "package/"
# What a version may be called: it names a folder on the device.
VERSION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
# Files larger than this are not read into memory to be checked: no package comes near it.
MAX_FILE_BYTES = 2**31


@dataclass(frozen=True)
class OpenedBundle:
    """A bundle that passed its checks: its manifest and the folder its package was written to."""

    manifest: dict[str, Any]
    folder: Path

    @property
    def version(self) -> str:
        return str(self.manifest["version"])


def write_bundle(
    package: AnyPackage, out: Path, key: Ed25519PrivateKey, *, model: str, model_version: str
) -> dict[str, Any]:
    """Write ``package`` as a bundle to ``out`` (replaced whole, never left half-written), signed
    with ``key``; returns its manifest."""
    if package.exported is None:
        raise BundleError(
            f"version {model_version} of {model!r} holds no ONNX graph (it was trained before driftloop exported "
            "one), and a device scores the graph: train it again, then bundle the new version"
        )
    with TemporaryDirectory() as folder:
        files = {path.name: path.read_bytes() for path in sorted(package.save(Path(folder) / "package").iterdir())}
    manifest = {
        "format": BUNDLE_FORMAT,
        "model": model,
        "version": model_version,
        "kind": package.interface()["kind"],
        "interface_sha256": interface_hash(package),
        "opset": package.exported.record.get("opset", OPSET),
        "created_at": datetime.now(UTC).isoformat(),
        "driftloop": VERSION,
        "key": fingerprint(key.public_key()),
        "files": {
            name: {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)} for name, data in files.items()
        },
    }
    text = json.dumps(manifest, indent=2, sort_keys=True).encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(MANIFEST, text)
        archive.writestr(SIGNATURE, key.sign(text))
        for name, data in files.items():
            archive.writestr(PACKAGE + name, data)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    partial.write_bytes(buffer.getvalue())
    partial.replace(out)  # a reader sees the old file or the whole new one
    return manifest


def interface_hash(package: AnyPackage) -> str:
    """The SHA-256 of what the model takes and gives (its contract and outputs): two versions
    with the same hash answer the same requests."""
    return hashlib.sha256(json.dumps(package.interface(), sort_keys=True).encode()).hexdigest()


def open_bundle(path: Path, trusted: Ed25519PublicKey, into: Path) -> OpenedBundle:
    """Check the bundle at ``path`` against the ``trusted`` key and its checksums, then write its
    package into ``into`` (a new folder); a BundleError saying what failed otherwise, with
    nothing written."""
    try:
        with zipfile.ZipFile(path) as archive:
            manifest = _signed_manifest(archive, path, trusted)
            files = _checked_files(archive, path, manifest)
    except (OSError, zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, zlib.error) as exc:
        # zlib.error: a byte changed inside a compressed file, caught before its checksum is reached
        raise BundleError(f"{path} is not a readable driftloop bundle: {exc}") from exc
    if into.exists():
        raise BundleError(f"{into} exists already: a bundle is opened into a new folder")
    into.mkdir(parents=True)
    for name, data in files.items():
        with (into / name).open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())  # on disk before the caller renames the folder into place
    return OpenedBundle(manifest, into)


def read_manifest(path: Path) -> dict[str, Any]:
    """The manifest of the bundle at ``path``, unchecked: what it claims to be (to show, not to trust)."""
    try:
        with zipfile.ZipFile(path) as archive:
            claimed: dict[str, Any] = json.loads(archive.read(MANIFEST))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile, zlib.error) as exc:
        raise BundleError(f"{path} is not a readable driftloop bundle: {exc}") from exc
    return claimed


def _signed_manifest(archive: zipfile.ZipFile, path: Path, trusted: Ed25519PublicKey) -> dict[str, Any]:
    names = set(archive.namelist())
    missing = [name for name in (MANIFEST, SIGNATURE) if name not in names]
    if missing:
        raise BundleError(f"{path} is not a driftloop bundle: it has no {' or '.join(missing)}")
    text, signature = archive.read(MANIFEST), archive.read(SIGNATURE)
    if not signs(trusted, signature, text):
        claimed = _claimed_key(text)
        if claimed is not None and claimed != fingerprint(trusted):
            raise BundleError(
                f"{path} is signed with key {claimed}, and this side trusts key {fingerprint(trusted)}: refused "
                "(bundle it with the key whose public half the device holds)"
            )
        raise BundleError(f"{path}: the signature does not match its manifest: it was changed after signing; refused")
    manifest: dict[str, Any] = json.loads(text)
    if manifest.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"{path} is bundle format {manifest.get('format')}; this driftloop reads {BUNDLE_FORMAT}")
    if not VERSION_NAME.fullmatch(str(manifest.get("version"))):
        raise BundleError(f"{path} names its version {manifest.get('version')!r}: not a version name")
    return manifest


def _checked_files(archive: zipfile.ZipFile, path: Path, manifest: dict[str, Any]) -> dict[str, bytes]:
    listed: dict[str, dict[str, Any]] = manifest["files"]
    held = {name.removeprefix(PACKAGE) for name in archive.namelist() if name.startswith(PACKAGE)}
    if held != set(listed):
        extra, absent = sorted(held - set(listed)), sorted(set(listed) - held)
        raise BundleError(
            f"{path}: its files are not those the signed manifest lists (extra {extra}, missing {absent})"
        )
    files = {}
    for name, expected in listed.items():
        if "/" in name or "\\" in name or name in ("", ".", ".."):
            raise BundleError(f"{path}: the manifest names a file {name!r} outside the package folder")
        info = archive.getinfo(PACKAGE + name)
        if info.file_size != expected["bytes"] or info.file_size > MAX_FILE_BYTES:
            raise BundleError(f"{path}: {name} is {info.file_size} bytes, the manifest says {expected['bytes']}")
        data = archive.read(info)
        if hashlib.sha256(data).hexdigest() != expected["sha256"]:
            raise BundleError(f"{path}: {name} does not match its checksum: changed or damaged after signing; refused")
        files[name] = data
    return files


def _claimed_key(text: bytes) -> str | None:
    try:
        claimed = json.loads(text).get("key")
    except (ValueError, AttributeError):
        return None
    return claimed if isinstance(claimed, str) else None


def bundle_tag(model: str, version: str) -> str:
    """The HTTP entity tag of a version's bundle: a device that has the version asks for the
    newest bundle with it in ``If-None-Match``, and is sent nothing when that is still the newest."""
    return f'"{model}-{version}"'


__all__ = [
    "BUNDLE_FORMAT",
    "OpenedBundle",
    "bundle_tag",
    "interface_hash",
    "open_bundle",
    "read_manifest",
    "write_bundle",
]
