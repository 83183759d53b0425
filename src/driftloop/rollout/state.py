"""A rollout as the lake keeps it: one row per change of its state, the newest row the state.

Every server process reads the newest row of its model's newest rollout, so all of them route
the same way whoever changed it; the rows before it are the rollout's history (its steps, and
why it ended).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
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
    AB = "a/b"  # two or more versions on a fixed share each, until the sequential test finds the best


class RolloutStatus(StrEnum):
    """Where a rollout stands."""

    RUNNING = "running"  # the candidate takes its step's share of traffic
    ROLLED_BACK = "rolled back"  # a guard saw it fail: all traffic is the champion's again
    ABORTED = "aborted"  # someone ended it
    PROMOTED = "promoted"  # it passed the gates after its last step: the candidate is the champion
    REFUSED = "refused"  # the gates did not crown it after its last step
    DECIDED = "decided"  # an A/B test found the best version (its reason says which, and by how much)


@dataclass(frozen=True)
class Rollout:
    """One rollout of ``candidates`` beside ``champion``: its steps (the percent of traffic each
    candidate takes) and the one it is at. A canary has one candidate; an A/B test one or more,
    each on the same fixed share, the champion on the rest."""

    rollout_id: str
    model: str
    candidates: tuple[str, ...]
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
        cls, kind: RolloutKind, model: str, candidates: Sequence[str], champion: str, steps: list[float], reason: str
    ) -> Self:
        return cls(uuid.uuid4().hex[:12], model, tuple(candidates), champion, tuple(steps), 0, RolloutStatus.RUNNING,
                   reason, datetime.now(UTC), kind=kind)  # fmt: skip

    @property
    def candidate(self) -> str:
        """The first candidate: a canary's only one."""
        return self.candidates[0]

    @property
    def versions(self) -> tuple[str, ...]:
        """Every version in the rollout, the champion first."""
        return (self.champion, *self.candidates)

    @property
    def named(self) -> str:
        """The candidates in words: "version 3", "versions 3 and 4"."""
        return in_words(self.candidates)

    @property
    def percent(self) -> float:
        """The share of traffic (percent) each candidate takes now; 0 once the rollout has ended."""
        return self.steps[self.step] if self.running else 0.0

    @property
    def traffic(self) -> str:
        """The candidates' share in words: "20% of traffic", "30% of traffic each"."""
        return f"{self.percent:g}% of traffic" + (" each" if len(self.candidates) > 1 else "")

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


def in_words(versions: Sequence[str]) -> str:
    """Versions in words: "version 3", "versions 3 and 4", "versions 2, 3 and 4"."""
    if len(versions) == 1:
        return f"version {versions[0]}"
    return f"versions {', '.join(versions[:-1])} and {versions[-1]}"


def current(lake: Lake, model: str) -> Rollout | None:
    """The state of ``model``'s newest rollout (None before the first)."""
    if not lake.exists(Table.ROLLOUTS):
        return None
    rows = lake.read(Table.ROLLOUTS).filter(pl.col("model_name") == model)
    if rows.is_empty():
        return None
    newest = rows.sort("at").row(-1, named=True)
    candidates = tuple(newest.get("candidates") or [newest["candidate"]])  # rows written before A/B had arms
    return Rollout(
        newest["rollout_id"], newest["model_name"], candidates, newest["champion"],
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
        "candidates": list(rollout.candidates),
        "champion": rollout.champion, "steps": list(rollout.steps), "step": rollout.step,
        "status": str(rollout.status), "reason": rollout.reason, "at": rollout.at,
        "details": json.dumps(rollout.details, default=str), "kind": str(rollout.kind),
    }  # fmt: skip
    lake.append(Table.ROLLOUTS, pl.DataFrame([row], schema=dict(TABLES[Table.ROLLOUTS].columns)))


__all__ = ["Rollout", "RolloutKind", "RolloutStatus", "current", "history", "in_words", "record"]
