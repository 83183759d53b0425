"""The ``[bundle]`` section of driftloop.toml: the key bundles for devices are signed with."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class BundleSettings(BaseModel):
    """Where ``driftloop bundle`` finds its signing key."""

    model_config = ConfigDict(extra="forbid")

    key_file: str = Field(
        "keys/signing.pem",
        description="The Ed25519 private key bundles are signed with, relative to the project folder (made by "
        "`driftloop keys`, which writes its public half beside it for the devices).",
    )
    key_env: str = Field(
        "DRIFTLOOP_SIGNING_KEY",
        description="Environment variable that, when set, holds the private key's PEM instead of key_file (as a CI "
        "secret would).",
    )
