"""Several retrain policies replayed over the same history: the front of error against
trainings, and the policy to choose within a training budget.

A policies file lists each policy by name and the ``[loop]`` settings it changes (``retrain_on``,
``cooldown_days``, ``training_window``, ``window_days``, ...), and optionally how a challenger is
judged (:data:`PROMOTE_KEYS` of ``[promote]``); everything else is the project's own. The policies are replayed under
``PROJECT/policies``, sharing a project while they act alike (:mod:`driftloop.replay.branches`),
and each loop is set against the static model and, once for all, against retraining every day.

The error of a policy is the mean over targets of its decisive metric relative to the static
model's (scale-free: the targets have their own units; below 1 is better than never
retraining). A policy is on the front when no other one is at least as good on both error and
trainings and better on one. The recommendation is the lowest error within the budget of
trainings (default: a fifth of the replayed days, the first model included).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from driftloop.errors import ConfigError
from driftloop.model.metrics import HIGHER_IS_BETTER
from driftloop.project import Project
from driftloop.replay.strategies import StrategyResult
from driftloop.settings import Settings
from driftloop.settings.loop import LoopSettings
from driftloop.settings.promote import PromoteSettings

POLICIES_FOLDER = "policies"
# The [promote] settings a policy may change: how its challengers are judged.
PROMOTE_KEYS = ("margin", "judge_days", "judge_wait_days")


class Policy(BaseModel):
    """One policy: a name, the ``[loop]`` settings it changes, and the ``[promote]`` ones of
    :data:`PROMOTE_KEYS` it changes."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64)
    loop: dict[str, Any] = Field(default_factory=dict)
    promote: dict[str, Any] = Field(default_factory=dict)

    @field_validator("loop")
    @classmethod
    def _known_loop_settings(cls, value: dict[str, Any]) -> dict[str, Any]:
        LoopSettings.model_validate(value)  # a misspelt or out-of-range setting is named here
        return value

    @field_validator("promote")
    @classmethod
    def _known_promote_settings(cls, value: dict[str, Any]) -> dict[str, Any]:
        PromoteSettings.model_validate(value)
        return value

    @property
    def changes(self) -> dict[str, Any]:
        """Every setting the policy changes, by its key in a policies file."""
        return {**self.loop, **self.promote}

    @property
    def folder_name(self) -> str:
        return re.sub(r"[^A-Za-z0-9._-]+", "-", self.name).strip("-") or "policy"


def read_policies(path: Path) -> list[Policy]:
    """The policies of a TOML file: ``[[policy]]`` tables with ``name``, :data:`PROMOTE_KEYS` and ``[loop]`` keys."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read the policies file {path}: {exc}") from exc
    tables = data.get("policy")
    if not isinstance(tables, list) or not tables:
        raise ConfigError(f"{path} lists no policy; write one [[policy]] table per policy, each with a name")
    policies = []
    for i, table in enumerate(tables, start=1):
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: policy {i} is not a table")
        promote = {k: v for k, v in table.items() if k in PROMOTE_KEYS}
        loop = {k: v for k, v in table.items() if k != "name" and k not in PROMOTE_KEYS}
        try:
            policies.append(Policy(name=table.get("name", ""), loop=loop, promote=promote))
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise ConfigError(f"{path}: policy {i} ({table.get('name', 'unnamed')}): {problems}") from exc
    names = [p.folder_name for p in policies]
    if len(set(names)) != len(names):
        raise ConfigError(f"{path}: policy names must differ (as folder names: {names})")
    return policies


@dataclass(frozen=True)
class PolicyOutcome:
    """How the loop did under one policy."""

    policy: Policy
    loop: StrategyResult | None  # None when its replay could not run
    error: float  # mean over targets of the decisive metric relative to the static model's (NaN: failed)
    on_front: bool = False
    failed: str | None = None  # why its replay could not run (its first model not crowned, say)
    replayed_in: str | None = None  # its project's folder in the policies folder (shared by policies alike)

    @property
    def trainings(self) -> int:
        return self.loop.trainings if self.loop is not None else 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.policy.name,
            "settings": self.policy.changes,
            "trainings": self.trainings,
            "error_vs_static": self.error,
            "on_front": self.on_front,
            "overall": self.loop.overall if self.loop is not None else None,
            "failed": self.failed,
            "replayed_in": self.replayed_in,
        }


@dataclass(frozen=True)
class PolicyFront:
    """Every policy's outcome, the baselines, and the recommendation within the budget."""

    outcomes: list[PolicyOutcome]
    static: StrategyResult
    daily: StrategyResult | None
    metrics: dict[str, str]
    budget: int
    recommended: str | None  # the name of the policy, None when none fits the budget
    report: Path | None = None
    projects: int = 0  # projects the policies were replayed in (policies acting alike share one)
    ticks: int = 0  # ticks the replay ran, its forks' included (what it cost)

    def to_dict(self) -> dict[str, Any]:
        return {
            "budget": self.budget,
            "recommended": self.recommended,
            "metrics": self.metrics,
            "policies": [o.to_dict() for o in self.outcomes],
            "static": self.static.overall,
            "daily": None if self.daily is None else {"overall": self.daily.overall, "trainings": self.daily.trainings},
            "report": str(self.report) if self.report else None,
            "projects": self.projects,
            "ticks": self.ticks,
        }


def choose(
    outcomes: list[PolicyOutcome],
    static: StrategyResult,
    daily: StrategyResult | None,
    metrics: dict[str, str],
    *,
    days: int,
    budget: int | None = None,
) -> PolicyFront:
    """The front of ``outcomes`` and the lowest error within ``budget`` trainings (default: a
    fifth of the ``days`` replayed, plus the first model)."""
    limit = budget if budget is not None else max(1, days // 5) + 1
    marked = mark_front(outcomes)
    fitting = [o for o in marked if o.failed is None and o.trainings <= limit]
    best = min(fitting, key=lambda o: (o.error, o.trainings)) if fitting else None
    return PolicyFront(marked, static, daily, metrics, limit, best.policy.name if best else None)


def policy_settings(project: Project, policy: Policy) -> Settings:
    """``project``'s settings with ``policy``'s changes."""
    loop = LoopSettings.model_validate({**project.settings.loop.model_dump(), **policy.loop})
    update: dict[str, Any] = {"loop": loop}
    if policy.promote:
        update["promote"] = PromoteSettings.model_validate({**project.settings.promote.model_dump(), **policy.promote})
    return project.settings.model_copy(update=update)


def relative_error(loop: StrategyResult, static: StrategyResult, metrics: dict[str, str]) -> float:
    """The mean over targets of the loop's decisive metric relative to the static model's, as an
    error: below 1 is better (a higher-is-better metric is read as the static one over the loop's)."""
    ratios = []
    for target, metric in metrics.items():
        mine, theirs = loop.overall[target][metric], static.overall[target][metric]
        if HIGHER_IS_BETTER[metric]:
            mine, theirs = theirs, mine
        if theirs > 0:
            ratios.append(mine / theirs)
    return sum(ratios) / len(ratios) if ratios else float("nan")


def mark_front(outcomes: list[PolicyOutcome]) -> list[PolicyOutcome]:
    """The outcomes with ``on_front`` set: no other one at least as good on both error and
    trainings and better on one (a failed one is never on it)."""
    ran = [o for o in outcomes if o.failed is None]

    def dominated(o: PolicyOutcome) -> bool:
        return any(
            p.error <= o.error and p.trainings <= o.trainings and (p.error < o.error or p.trainings < o.trainings)
            for p in ran
        )

    return [replace(o, on_front=o.failed is None and not dominated(o)) for o in outcomes]
