"""A rollout's life. A canary: started on a version that passed the qa gates, stepped up as its
arm earns it, rolled back by a guard, aborted by hand, and past its last step judged by the
promotion gates like any challenger. An A/B test: the champion and one or more versions on
fixed shares until the sequential test on the decisive metric finds the best (:func:`decide`).

Every change is a row of the lake's ``rollouts`` (what every server routes by), the start and
the ends are events of the registry's timeline, and each is an alert.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from driftloop.alerts import alert
from driftloop.errors import RegistryError
from driftloop.project import Project
from driftloop.registry import Registry
from driftloop.registry.decisions import Alias, DecisionKind, Stage
from driftloop.rollout.sequential import Pairs, facing
from driftloop.rollout.state import Rollout, RolloutKind, RolloutStatus, current, in_words, record


def start_canary(project: Project, version: str | None = None, percent: float | None = None) -> Rollout:
    """Put ``version`` (default: the challenger) in front of ``percent`` of traffic (default: the
    first of ``[rollout] steps``), then the later steps. A dev version goes through the qa gates
    first; a RegistryError when it fails them, when there is no champion to compare with, or
    when a rollout is already running."""
    registry, champion = _ready(project)
    candidate = _candidate(registry, champion, version)
    steps = project.settings.rollout.steps
    if percent is not None:
        steps = [_share(percent), *(s for s in steps if s > percent)]
    reason = f"version {candidate} takes {steps[0]:g}% of traffic beside champion {champion} (steps {steps})"
    return _begin(project, registry, Rollout.start(RolloutKind.CANARY, registry.name, [candidate], champion, steps,
                                                   reason), DecisionKind.CANARY)  # fmt: skip


def start_ab(project: Project, versions: Sequence[str] = (), percent: float | None = None) -> Rollout:
    """An A/B test: each of ``versions`` (default: the challenger) answers ``percent`` of traffic
    (default: an equal share for every version and the champion) and the champion the rest, until
    the sequential test on the decisive metric finds the best of them (or it is aborted). The
    guards of service (errors, latency) still end it; the answers may differ."""
    registry, champion = _ready(project)
    chosen = list(versions) or [_candidate(registry, champion, None)]
    if len(set(chosen)) < len(chosen):
        raise RegistryError(f"an a/b test takes each version once, not {', '.join(chosen)}")
    candidates = [_candidate(registry, champion, version) for version in chosen]
    share = _share(100 / (len(candidates) + 1) if percent is None else percent)
    if share * len(candidates) >= 100:
        raise RegistryError(f"{len(candidates)} versions on {share:g}% each leave the champion no traffic: "
                            f"take less than {100 / len(candidates):g}% each")  # fmt: skip
    rollout = Rollout.start(RolloutKind.AB, registry.name, candidates, champion, [share], "")
    reason = (
        f"a/b test: {rollout.named} on {rollout.traffic}, champion {champion} on {100 - share * len(candidates):g}%"
    )
    return _begin(project, registry, replace(rollout, reason=reason), DecisionKind.AB_TEST)


def decide(project: Project, rollout: Rollout, best: str, pairs: Pairs, numbers: dict[str, Any]) -> Rollout:
    """End an A/B test with the verdict of the sequential test: ``best`` is better than every other
    version on the decisive metric, with the confidence and numbers of each comparison
    (``pairs``), recorded as an event and an alert."""
    alpha = project.settings.rollout.metric_alpha
    faced = facing(pairs, best)
    mine = next(iter(faced.values()))
    against = "; ".join(f"{r.mean_second:.3g} on {r.n_second} (version {other}, always-valid p = {r.p_value:.2g})"
                        for other, r in faced.items())  # fmt: skip
    reason = (
        f"version {best} is better than {in_words(list(faced))} with {1 - alpha:.0%} confidence: mean loss "
        f"{mine.mean_first:.3g} on {mine.n_first} labelled rows, against {against}"
    )
    ended = rollout.then(RolloutStatus.DECIDED, reason, best=best, **numbers)
    record(project.lake, ended)
    Registry(project).record_event(DecisionKind.AB_RESULT, best, reason)
    _alert(project, "a/b result", reason, ended)
    return ended


def _ready(project: Project) -> tuple[Registry, str]:
    """The registry and the champion, when a rollout may start; a RegistryError naming what stands
    in the way (an image model, no champion, a rollout running)."""
    if project.settings.images is not None:
        raise RegistryError("rollouts serve table models so far: promote an image model with `driftloop promote`")
    registry = Registry(project)
    champion = registry.aliases().get(Alias.CHAMPION)
    if champion is None:
        raise RegistryError(f"model {registry.name!r} has no champion for a version to be compared with: promote one")
    running = current(project.lake, registry.name)
    if running is not None and running.running:
        raise RegistryError(f"{running.named} in a {running.kind} rollout already: "
                            "`driftloop rollout abort` first")  # fmt: skip
    return registry, champion


def _candidate(registry: Registry, champion: str, version: str | None) -> str:
    """The version to roll out (default: the challenger), qualified at qa if it was in dev; a
    RegistryError naming what stands in the way."""
    candidate = version or registry.aliases().get(Alias.CHALLENGER)
    if candidate is None:
        raise RegistryError("no version to roll out: name one, or train one (the challenger in qa is the default)")
    if candidate == champion:
        raise RegistryError(f"version {candidate} is the champion already")
    if registry.stage(candidate) is Stage.DEV:
        qualified = registry.qualify(candidate)
        if not qualified.accepted:
            raise RegistryError(f"version {candidate} failed the qa gates: {qualified.reason}")
    return candidate


def _share(percent: float) -> float:
    if not 0 < percent < 100 or math.isnan(percent):
        raise RegistryError(f"a version takes between 0 and 100 percent of traffic, not {percent}")
    return percent


def _begin(project: Project, registry: Registry, rollout: Rollout, event: DecisionKind) -> Rollout:
    record(project.lake, rollout)
    _events(registry, event, rollout, rollout.reason)
    _alert(project, str(rollout.kind), rollout.reason, rollout)
    return rollout


def roll_back(project: Project, rollout: Rollout, reason: str, numbers: dict[str, Any]) -> Rollout:
    """End ``rollout``: every request goes to the champion again, with the guard's reason."""
    ended = rollout.then(RolloutStatus.ROLLED_BACK, reason, **numbers)
    record(project.lake, ended)
    _events(Registry(project), DecisionKind.CANARY_ROLLED_BACK, rollout, reason)
    _alert(project, f"{_called(rollout)} rolled back", f"{rollout.named}: {reason}", ended)
    return ended


def abort(project: Project, reason: str = "aborted by hand") -> Rollout:
    """End the running rollout by hand; a RegistryError when none is running."""
    rollout = running_rollout(project)
    ended = rollout.then(RolloutStatus.ABORTED, reason)
    record(project.lake, ended)
    _events(Registry(project), DecisionKind.CANARY_ABORTED, rollout, reason)
    _alert(project, f"{_called(rollout)} aborted", f"{rollout.named}: {reason}", ended)
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
    gates wait for the labels of the days it is to be judged on. An A/B test ends by its verdict,
    not the gates: a RegistryError."""
    if rollout.kind is not RolloutKind.CANARY:
        raise RegistryError(f"an a/b test ends by its verdict or `driftloop rollout abort`; to crown one of "
                            f"{rollout.named} now, `driftloop promote VERSION`")  # fmt: skip
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


def _events(registry: Registry, kind: DecisionKind, rollout: Rollout, reason: str) -> None:
    """The event of a change, on each candidate's timeline."""
    for version in rollout.candidates:
        registry.record_event(kind, version, reason)


def _called(rollout: Rollout) -> str:
    return "canary" if rollout.kind is RolloutKind.CANARY else "a/b test"


def _alert(project: Project, kind: str, message: str, rollout: Rollout) -> None:
    loop = project.settings.loop
    details = {"rollout": rollout.rollout_id, "candidate": rollout.candidate, "candidates": list(rollout.candidates),
               "champion": rollout.champion, "percent": rollout.percent, **rollout.details}  # fmt: skip
    alert(kind, message, details, url=loop.webhook_url, attempts=loop.webhook_attempts,
          timeout=loop.webhook_timeout_seconds)  # fmt: skip


__all__ = ["abort", "advance", "decide", "finish", "roll_back", "running_rollout", "start_ab", "start_canary"]
