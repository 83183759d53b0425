"""The canary: a rollout's candidate answers its share of the requests (``[rollout]`` steps),
the same entities every time, and the champion answers the rest. An A/B test has one canary
deployment per candidate, each on its own slots of the same fixed share.

Its answers are logged as ``source = "canary"`` with its version, apart from the champion's
``online`` ones, so each arm is monitored on the rows it answered. Which versions and shares
come from the lake's ``rollouts`` (:mod:`driftloop.rollout.state`), not from an alias: every
server reads the same row.
"""

from __future__ import annotations

from collections.abc import Mapping

from driftloop.lake import PredictionSource
from driftloop.rollout.state import Rollout
from driftloop.serve.deployments.base import Role


class Canary:
    """Answers the share of the traffic ``rollout`` gives its ``arm``-th candidate."""

    role = Role.CANARY
    source = PredictionSource.CANARY

    def __init__(self, rollout: Rollout, arm: int = 0) -> None:
        self.rollout = rollout
        self.arm = arm
        self.name = f"canary {rollout.candidates[arm]}"

    @property
    def percent(self) -> float:
        return self.rollout.percent

    def wanted(self, aliases: Mapping[str, str]) -> str | None:
        return self.rollout.candidates[self.arm] if self.rollout.running else None


def canaries(rollout: Rollout | None) -> list[Canary]:
    """A deployment kind per candidate of ``rollout`` while it runs (none otherwise)."""
    if rollout is None or not rollout.running:
        return []
    return [Canary(rollout, arm) for arm in range(len(rollout.candidates))]
