"""A rollout as the lake keeps it: one row per change of its state, the newest row the state.

Every server process reads the newest row of its model's newest rollout, so all of them route
the same way whoever changed it; the rows before it are the rollout's history (its steps, and
why it ended).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Self

import polars as pl

from driftloop.lake import TABLES, Table

if TYPE_CHECKING:
    from driftloop.lake import Lake


class RolloutKind(StrEnum):
    """What a rollout is for."""

    CANARY = "canary"  # the candidate earns a growing share, and the gates crown it after the last
    AB = "a/b"  # two versions on a fixed share each, until the sequential test tells them apart


class RolloutStatus(StrEnum):
    """Where a rollout stands."""

    RUNNING = "running"  # the candidate takes its step's share of traffic
    ROLLED_BACK = "rolled back"  # a guard saw it fail: all traffic is the champion's again
    ABORTED = "aborted"  # someone ended it
    PROMOTED = "promoted"  # it passed the gates after its last step: the candidate is the champion
    REFUSED = "refused"  # the gates did not crown it after its last step
    DECIDED = "decided"  # an A/B test told the versions apart (its reason says which is better)


@dataclass(frozen=True)
class Rollout:
    """One rollout of ``candidate`` beside ``champion``: its steps (percent of traffic) and the one
    it is at."""

    rollout_id: str
    model: str
    candidate: str
    champion: str
    steps: tuple[float, ...]
    step: int
    status: RolloutStatus
    reason: str
    at: datetime
    details: dict[str, Any] = field(default_factory=dict)
    kind: RolloutKind = RolloutKind.CANARY

    @classmethod
    def start(
        cls, kind: RolloutKind, model: str, candidate: str, champion: str, steps: list[float], reason: str
    ) -> Self:
        return cls(uuid.uuid4().hex[:12], model, candidate, champion, tuple(steps), 0, RolloutStatus.RUNNING,
                   reason, datetime.now(UTC), kind=kind)  # fmt: skip

    @property
    def percent(self) -> float:
        """The share of traffic (percent) the candidate takes now; 0 once the rollout has ended."""
        return self.steps[self.step] if self.running else 0.0

    @property
    def running(self) -> bool:
        return self.status is RolloutStatus.RUNNING

    @property
    def last_step(self) -> bool:
        return self.step == len(self.steps) - 1

    def then(self, status: RolloutStatus, reason: str, *, step: int | None = None, **details: Any) -> Rollout:
        """The rollout after a change: its new status (and step), why, and the numbers behind it."""
        chosen = self.step if step is None else step
        return replace(self, status=status, reason=reason, step=chosen, at=datetime.now(UTC), details=details)


def current(lake: Lake, model: str) -> Rollout | None:
    """The state of ``model``'s newest rollout (None before the first)."""
    if not lake.exists(Table.ROLLOUTS):
        return None
    rows = lake.read(Table.ROLLOUTS).filter(pl.col("model_name") == model)
    if rows.is_empty():
        return None
    newest = rows.sort("at").row(-1, named=True)
    return Rollout(
        newest["rollout_id"], newest["model_name"], newest["candidate"], newest["champion"],
        tuple(newest["steps"]), int(newest["step"]), RolloutStatus(newest["status"]), newest["reason"],
        newest["at"], json.loads(newest["details"] or "{}"), RolloutKind(newest["kind"] or RolloutKind.CANARY),
    )  # fmt: skip


def history(lake: Lake, model: str) -> pl.DataFrame:
    """Every change of every rollout of ``model``, oldest first."""
    if not lake.exists(Table.ROLLOUTS):
        return pl.DataFrame(schema=dict(TABLES[Table.ROLLOUTS].columns))
    return lake.read(Table.ROLLOUTS).filter(pl.col("model_name") == model).sort("at")


def record(lake: Lake, rollout: Rollout) -> None:
    """Append ``rollout``'s state as the newest row."""
    row = {
        "rollout_id": rollout.rollout_id, "model_name": rollout.model, "candidate": rollout.candidate,
        "champion": rollout.champion, "steps": list(rollout.steps), "step": rollout.step,
        "status": str(rollout.status), "reason": rollout.reason, "at": rollout.at,
        "details": json.dumps(rollout.details, default=str), "kind": str(rollout.kind),
    }  # fmt: skip
    lake.append(Table.ROLLOUTS, pl.DataFrame([row], schema=dict(TABLES[Table.ROLLOUTS].columns)))


__all__ = ["Rollout", "RolloutKind", "RolloutStatus", "current", "history", "record"]
