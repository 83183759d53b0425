"""The registry's state as types: a version's stage, the aliases that carry the champion, and the
kinds of decision; and :class:`Decision`, one decision with the evidence behind it (each gate's
:class:`GateResult`).

Stages are tags on a version (MLflow's own stages are deprecated); the aliases are MLflow's.
Code reads state from these values, never from the sentences written for people.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class Stage(StrEnum):
    """Where a version is in its life: dev -> qa -> prod, or rejected, or archived once replaced."""

    DEV = "dev"
    QA = "qa"
    PROD = "prod"
    REJECTED = "rejected"
    ARCHIVED = "archived"


class Alias(StrEnum):
    """The registry's aliases: the version serving, the one in qa waiting, the one before."""

    CHAMPION = "champion"
    CHALLENGER = "challenger"
    PREVIOUS = "previous"


class DecisionKind(StrEnum):
    """What a decision was, as the ``events`` table and the version's tags record it."""

    PROMOTED_TO_QA = "promoted to qa"
    REJECTED_AT_QA = "rejected at qa"
    CHAMPION = "champion"
    REJECTED = "rejected"
    ROLLBACK = "rollback"
    RETRAIN = "retrain"
    CANARY = "canary"  # a rollout began: the version takes a share of live traffic
    CANARY_ROLLED_BACK = "canary rolled back"  # a guard saw it fail
    CANARY_ABORTED = "canary aborted"
    AB_TEST = "a/b test"  # two versions on fixed shares of live traffic
    AB_RESULT = "a/b result"  # the sequential test told them apart


# Decisions that move a version forward (or, for a rollback, back into production).
ACCEPTING = frozenset({DecisionKind.PROMOTED_TO_QA, DecisionKind.CHAMPION, DecisionKind.ROLLBACK})
# Tags on a version: its stage, and its latest decision (so an interrupted one can be resumed).
STAGE_TAG = "stage"
DECISION_TAG = "decision"


@dataclass(frozen=True)
class GateResult:
    """One gate: passed or not, why, and the numbers behind it."""

    name: str
    passed: bool
    detail: str
    numbers: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Decision:
    """One lifecycle decision with the evidence behind it."""

    kind: DecisionKind
    version: str
    stage_before: Stage
    stage_after: Stage
    reason: str
    champion_before: str | None = None
    champion_after: str | None = None
    gates: list[GateResult] = field(default_factory=list)
    at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def accepted(self) -> bool:
        """Whether the version moved forward (a rejection or a retrain record does not)."""
        return self.kind in ACCEPTING

    def to_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if k != "gates"}
        data["gates"] = [g.to_dict() for g in self.gates]
        return data
