"""The canary: a rollout's candidate answers its share of the requests (``[rollout]`` steps),
the same entities every time, and the champion answers the rest.

Its answers are logged as ``source = "canary"``, apart from the champion's ``online`` ones, so
each arm is monitored on the rows it answered. Which version and share come from the lake's
``rollouts`` (:mod:`driftloop.rollout.state`), not from an alias: every server reads the same row.
"""

from __future__ import annotations

from collections.abc import Mapping

from driftloop.lake import PredictionSource
from driftloop.rollout.state import Rollout
from driftloop.serve.deployments.base import Role


class Canary:
    """Answers ``rollout.percent`` of the traffic with ``rollout.candidate``."""

    name = "canary"
    role = Role.CANARY
    source = PredictionSource.CANARY

    def __init__(self, rollout: Rollout) -> None:
        self.rollout = rollout

    @property
    def percent(self) -> float:
        return self.rollout.percent

    def wanted(self, aliases: Mapping[str, str]) -> str | None:
        return self.rollout.candidate if self.rollout.running else None
