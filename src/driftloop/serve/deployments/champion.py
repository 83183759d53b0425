"""The champion: the version the ``champion`` alias names answers every request."""

from __future__ import annotations

from collections.abc import Mapping

from driftloop.lake import PredictionSource
from driftloop.registry import Alias
from driftloop.serve.deployments.base import Role


class Champion:
    """Answers the traffic with the champion; its predictions are logged as ``online``."""

    name = "champion"
    role = Role.ANSWERS
    source = PredictionSource.ONLINE

    def wanted(self, aliases: Mapping[str, str]) -> str | None:
        return aliases.get(Alias.CHAMPION)
