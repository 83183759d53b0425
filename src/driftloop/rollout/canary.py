"""A canary's life: started on a version that passed the qa gates, stepped up as its arm earns
it, rolled back by a guard, aborted by hand, and past its last step judged by the promotion
gates like any challenger.

Every change is a row of the lake's ``rollouts`` (what every server routes by), the start and
the ends are events of the registry's timeline, and each is an alert.
"""

from __future__ import annotations

from typing import Any

from driftloop.alerts import alert
from driftloop.errors import RegistryError
from driftloop.project import Project
from driftloop.registry import Registry
from driftloop.registry.decisions import Alias, DecisionKind, Stage
from driftloop.rollout.state import Rollout, RolloutStatus, current, record


def start_canary(project: Project, version: str | None = None, percent: float | None = None) -> Rollout:
    """Put ``version`` (default: the challenger) in front of ``percent`` of traffic (default: the
    first of ``[rollout] steps``), then the later steps. A dev version goes through the qa gates
    first; a RegistryError when it fails them, when there is no champion to compare with, or
    when a rollout is already running."""
    if project.settings.images is not None:
        raise RegistryError(
            "canary rollouts serve table models so far; promote an image model with `driftloop promote`"
        )
    registry = Registry(project)
    aliases = registry.aliases()
    champion = aliases.get(Alias.CHAMPION)
    if champion is None:
        raise RegistryError(f"model {registry.name!r} has no champion for a canary to be compared with: promote one")
    candidate = version or aliases.get(Alias.CHALLENGER)
    if candidate is None:
        raise RegistryError("no version to roll out: name one, or train one (the challenger in qa is the default)")
    if candidate == champion:
        raise RegistryError(f"version {candidate} is the champion already")
    running = current(project.lake, registry.name)
    if running is not None and running.running:
        raise RegistryError(f"version {running.candidate} is in a canary already: `driftloop rollout abort` first")
    if registry.stage(candidate) is Stage.DEV:
        qualified = registry.qualify(candidate)
        if not qualified.accepted:
            raise RegistryError(f"version {candidate} failed the qa gates: {qualified.reason}")
    steps = project.settings.rollout.steps
    if percent is not None:
        if not 0 < percent <= 100:
            raise RegistryError(f"a canary takes between 0 and 100 percent of traffic, not {percent}")
        steps = [percent, *(s for s in steps if s > percent)]
    reason = f"version {candidate} takes {steps[0]:g}% of traffic beside champion {champion} (steps {steps})"
    rollout = Rollout.start(registry.name, candidate, champion, steps, reason)
    record(project.lake, rollout)
    registry.record_event(DecisionKind.CANARY, candidate, reason)
    _alert(project, "canary", reason, rollout)
    return rollout


def roll_back(project: Project, rollout: Rollout, reason: str, numbers: dict[str, Any]) -> Rollout:
    """End ``rollout``: every request goes to the champion again, with the guard's reason."""
    ended = rollout.then(RolloutStatus.ROLLED_BACK, reason, **numbers)
    record(project.lake, ended)
    Registry(project).record_event(DecisionKind.CANARY_ROLLED_BACK, rollout.candidate, reason)
    _alert(project, "canary rolled back", f"version {rollout.candidate}: {reason}", ended)
    return ended


def abort(project: Project, reason: str = "aborted by hand") -> Rollout:
    """End the running rollout by hand; a RegistryError when none is running."""
    rollout = running_rollout(project)
    ended = rollout.then(RolloutStatus.ABORTED, reason)
    record(project.lake, ended)
    Registry(project).record_event(DecisionKind.CANARY_ABORTED, rollout.candidate, reason)
    _alert(project, "canary aborted", f"version {rollout.candidate}: {reason}", ended)
    return ended


def advance(project: Project, rollout: Rollout, numbers: dict[str, Any]) -> Rollout:
    """The next step of ``rollout`` (its arm earned it); past the last, the promotion gates."""
    if not rollout.last_step:
        step = rollout.step + 1
        reason = f"step {step + 1} of {len(rollout.steps)}: {rollout.steps[step]:g}% of traffic"
        moved = rollout.then(RolloutStatus.RUNNING, reason, step=step, **numbers)
        record(project.lake, moved)
        return moved
    return finish(project, rollout, numbers)


def finish(project: Project, rollout: Rollout, numbers: dict[str, Any] | None = None) -> Rollout:
    """Judge the candidate by the promotion gates: promoted, refused, or still running while the
    gates wait for the labels of the days it is to be judged on."""
    registry = Registry(project)
    decisions = registry.promote(rollout.candidate)
    if not decisions:
        waiting = registry.awaiting(rollout.candidate)
        reason = f"past its last step, waiting for the gates: {waiting}" if waiting else "waiting for the gates"
        moved = rollout.then(RolloutStatus.RUNNING, reason, **(numbers or {}))
        record(project.lake, moved)
        return moved
    final = decisions[-1]
    status = RolloutStatus.PROMOTED if final.kind is DecisionKind.CHAMPION else RolloutStatus.REFUSED
    ended = rollout.then(status, final.reason, **(numbers or {}))
    record(project.lake, ended)
    _alert(project, f"canary {status}", f"version {rollout.candidate}: {final.reason}", ended)
    return ended


def running_rollout(project: Project) -> Rollout:
    """The rollout running now; a RegistryError when there is none."""
    rollout = current(project.lake, project.model_name)
    if rollout is None or not rollout.running:
        raise RegistryError(
            f"no rollout of {project.model_name!r} is running (`driftloop rollout status` shows the last)"
        )
    return rollout


def _alert(project: Project, kind: str, message: str, rollout: Rollout) -> None:
    loop = project.settings.loop
    details = {"rollout": rollout.rollout_id, "candidate": rollout.candidate, "champion": rollout.champion,
               "percent": rollout.percent, **rollout.details}  # fmt: skip
    alert(kind, message, details, url=loop.webhook_url, attempts=loop.webhook_attempts,
          timeout=loop.webhook_timeout_seconds)  # fmt: skip


__all__ = ["abort", "advance", "finish", "roll_back", "running_rollout", "start_canary"]
