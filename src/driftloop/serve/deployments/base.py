"""What a deployment is: a registered version in front of live traffic, in a role.

A deployment *kind* (one module each: ``champion``, ``shadow``, ``canary``) says which
version it wants from the registry's state and what it does with traffic: answer it, or score
it beside the answer and never be seen. A :class:`Deployment` is a kind with its version loaded.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from driftloop.lake import PredictionSource
from driftloop.serve.loaded import LoadedModel


class Role(StrEnum):
    """What a deployment does with the traffic it is given."""

    ANSWERS = "answers"  # its outputs are the answer
    SHADOWS = "shadows"  # it scores the answered rows too; logged, never returned
    CANARY = "canary"  # its outputs are the answer to its share of the requests


class DeploymentKind(Protocol):
    """One way of putting a version in front of traffic."""

    name: str
    role: Role
    source: PredictionSource  # how its predictions are logged

    def wanted(self, aliases: Mapping[str, str]) -> str | None:
        """The version this kind serves given the registry's aliases (None: none now)."""
        ...


@dataclass(frozen=True)
class Deployment:
    """A kind of deployment with the version it serves, loaded."""

    kind: DeploymentKind
    model: LoadedModel

    @property
    def role(self) -> Role:
        return self.kind.role

    @property
    def source(self) -> PredictionSource:
        return self.kind.source
