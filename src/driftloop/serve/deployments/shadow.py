"""The shadow: the challenger scores the same requests as the champion, and is never seen.

Its outputs are logged (``source = "shadow"``) beside the champion's for the same prediction
ids, so ``driftloop monitor --source online`` can tell how far apart the two are and which was
closer once labels arrive, before the challenger answers anyone.
"""

from __future__ import annotations

from collections.abc import Mapping

from driftloop.lake import PredictionSource
from driftloop.registry import Alias
from driftloop.serve.deployments.base import Role


class Shadow:
    """Scores the answered rows with the challenger (the ``challenger`` alias), in the background."""

    name = "shadow"
    role = Role.SHADOWS
    source = PredictionSource.SHADOW

    def wanted(self, aliases: Mapping[str, str]) -> str | None:
        return aliases.get(Alias.CHALLENGER)
