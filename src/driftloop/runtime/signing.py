"""Ed25519 keys for bundles: the central side signs a bundle's manifest with its private key, and a
device that holds only the public key checks it before it trusts a byte of the model.

Keys are PEM files (PKCS#8 for the private key, SubjectPublicKeyInfo for the public one), made
by :func:`generate_keys` (``driftloop keys``). A key's fingerprint (the first 16 hex digits of
the SHA-256 of its raw public bytes) names it in manifests and error messages, so "signed with
another key" says which.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from driftloop.errors import BundleError


def generate_keys(private_path: Path, *, force: bool = False) -> tuple[Path, Path]:
    """A new key pair: the private key at ``private_path`` (readable by its owner only), the
    public one beside it (``signing.pem`` -> ``signing.pub.pem``); returns both paths. An existing
    private key is kept unless ``force``: bundles signed by a new one would not verify on the
    devices that trust the old."""
    public_path = private_path.with_suffix(".pub.pem")
    if private_path.exists() and not force:
        raise BundleError(
            f"{private_path} already exists: devices trust its public key, so a new one would stop them taking "
            "new bundles; pass --force to replace it anyway"
        )
    private_path.parent.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    descriptor = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        os.fchmod(handle.fileno(), 0o600)  # a replaced key file keeps no wider mode it had
        handle.write(private)
    public_path.write_bytes(public_pem(key.public_key()))
    return private_path, public_path


def public_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def private_key(pem: bytes, where: str) -> Ed25519PrivateKey:
    """The Ed25519 private key in ``pem``; a BundleError naming ``where`` it came from otherwise."""
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise BundleError(f"{where} is not a readable, unencrypted PEM private key: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise BundleError(f"{where} holds a {type(key).__name__}; bundles are signed with Ed25519 (`driftloop keys`)")
    return key


def public_key(pem: bytes, where: str) -> Ed25519PublicKey:
    """The Ed25519 public key in ``pem``; a BundleError naming ``where`` it came from otherwise."""
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise BundleError(f"{where} is not a readable PEM public key: {exc}") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise BundleError(f"{where} holds a {type(key).__name__}; bundles are checked with Ed25519 keys")
    return key


def fingerprint(key: Ed25519PublicKey) -> str:
    """The key's name: the first 16 hex digits of the SHA-256 of its raw bytes."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def signs(key: Ed25519PublicKey, signature: bytes, data: bytes) -> bool:
    """Whether ``signature`` is ``key``'s over ``data``."""
    try:
        key.verify(signature, data)
    except InvalidSignature:
        return False
    return True


__all__ = [
    "fingerprint",
    "generate_keys",
    "private_key",
    "public_key",
    "public_pem",
    "signs",
]
