"""A rollout's life. A canary: started on a version that passed the qa gates, stepped up as its
arm earns it, rolled back by a guard, aborted by hand, and past its last step judged by the
promotion gates like any challenger. An A/B test: two versions on fixed shares until the
sequential test on the decisive metric tells them apart (:func:`decide`).

Every change is a row of the lake's ``rollouts`` (what every server routes by), the start and
the ends are events of the registry's timeline, and each is an alert.
"""

from __future__ import annotations

import math
from typing import Any

from driftloop.alerts import alert
from driftloop.errors import RegistryError
from driftloop.project import Project
from driftloop.registry import Registry
from driftloop.registry.decisions import Alias, DecisionKind, Stage
from driftloop.rollout.sequential import SequentialResult
from driftloop.rollout.state import Rollout, RolloutKind, RolloutStatus, current, record


def start_canary(project: Project, version: str | None = None, percent: float | None = None) -> Rollout:
    """Put ``version`` (default: the challenger) in front of ``percent`` of traffic (default: the
    first of ``[rollout] steps``), then the later steps. A dev version goes through the qa gates
    first; a RegistryError when it fails them, when there is no champion to compare with, or
    when a rollout is already running."""
    registry, candidate, champion = _candidate(project, version)
    steps = project.settings.rollout.steps
    if percent is not None:
        steps = [_share(percent), *(s for s in steps if s > percent)]
    reason = f"version {candidate} takes {steps[0]:g}% of traffic beside champion {champion} (steps {steps})"
    return _begin(project, registry, Rollout.start(RolloutKind.CANARY, registry.name, candidate, champion, steps,
                                                   reason), DecisionKind.CANARY)  # fmt: skip


def start_ab(project: Project, version: str | None = None, percent: float = 50.0) -> Rollout:
    """An A/B test: ``version`` (default: the challenger) answers ``percent`` of traffic and the
    champion the rest, until the sequential test on the decisive metric tells them apart (or it
    is aborted). The guards of service (errors, latency) still end it; the answers may differ."""
    registry, candidate, champion = _candidate(project, version)
    share = _share(percent)
    reason = f"a/b test: version {candidate} on {share:g}% of traffic, champion {champion} on {100 - share:g}%"
    return _begin(project, registry, Rollout.start(RolloutKind.AB, registry.name, candidate, champion, [share],
                                                   reason), DecisionKind.AB_TEST)  # fmt: skip


def decide(project: Project, rollout: Rollout, result: SequentialResult, numbers: dict[str, Any]) -> Rollout:
    """End an A/B test with the verdict of the sequential test: which version's decisive metric is
    better, with what confidence, recorded as an event and an alert."""
    loss = {rollout.champion: result.mean_first, rollout.candidate: result.mean_second}
    rows = {rollout.champion: result.n_first, rollout.candidate: result.n_second}
    better, worse = sorted(loss, key=loss.__getitem__)  # the lower loss is the better version
    alpha = project.settings.rollout.metric_alpha
    reason = (
        f"version {better} is better than version {worse} with {1 - alpha:.0%} confidence: mean loss "
        f"{loss[better]:.3g} against {loss[worse]:.3g}, on {rows[better]} and {rows[worse]} labelled rows "
        f"(always-valid p = {result.p_value:.2g})"
    )
    ended = rollout.then(RolloutStatus.DECIDED, reason, **numbers)
    record(project.lake, ended)
    Registry(project).record_event(DecisionKind.AB_RESULT, rollout.candidate, reason)
    _alert(project, "a/b result", reason, ended)
    return ended


def _candidate(project: Project, version: str | None) -> tuple[Registry, str, str]:
    """The registry, the version to roll out (qualified at qa if it was in dev) and the champion;
    a RegistryError naming what stands in the way."""
    if project.settings.images is not None:
        raise RegistryError("rollouts serve table models so far: promote an image model with `driftloop promote`")
    registry = Registry(project)
    aliases = registry.aliases()
    champion = aliases.get(Alias.CHAMPION)
    if champion is None:
        raise RegistryError(f"model {registry.name!r} has no champion for a version to be compared with: promote one")
    candidate = version or aliases.get(Alias.CHALLENGER)
    if candidate is None:
        raise RegistryError("no version to roll out: name one, or train one (the challenger in qa is the default)")
    if candidate == champion:
        raise RegistryError(f"version {candidate} is the champion already")
    running = current(project.lake, registry.name)
    if running is not None and running.running:
        raise RegistryError(f"version {running.candidate} is in a {running.kind} rollout already: "
                            "`driftloop rollout abort` first")  # fmt: skip
    if registry.stage(candidate) is Stage.DEV:
        qualified = registry.qualify(candidate)
        if not qualified.accepted:
            raise RegistryError(f"version {candidate} failed the qa gates: {qualified.reason}")
    return registry, candidate, champion


def _share(percent: float) -> float:
    if not 0 < percent < 100 or math.isnan(percent):
        raise RegistryError(f"a version takes between 0 and 100 percent of traffic, not {percent}")
    return percent


def _begin(project: Project, registry: Registry, rollout: Rollout, event: DecisionKind) -> Rollout:
    record(project.lake, rollout)
    registry.record_event(event, rollout.candidate, rollout.reason)
    _alert(project, str(rollout.kind), rollout.reason, rollout)
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


__all__ = ["abort", "advance", "decide", "finish", "roll_back", "running_rollout", "start_ab", "start_canary"]
